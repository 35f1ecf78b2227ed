import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { loadConfig } from "../shared/config.ts";
import { drainAll, drainOne } from "../functions/drain.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { resetLayoutCache } from "../shared/layout.ts";
import { createRandom } from "../shared/market/simulator.ts";
import { partitionOf } from "../shared/partitions.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { allStockKeys, stockKeys } from "../shared/stock_queue.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { assertMatchesReference, readAllEntries, referenceEnv } from "./_reference.ts";
import { fixedQuotes, runQuotes } from "./_equivalence.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { parseExposition, promtool, samples, value } from "./_prometheus.ts";
import { scrapeMetrics } from "../functions/metrics.ts";

let server: TestRedis;

async function setup(env: Record<string, string> = {}): Promise<Deps> {
  server ??= await startRedis();
  await server.flush();
  resetGroupCache();
  resetLayoutCache();
  await closeQuoteStores();
  const config = loadConfig(referenceEnv(server, { STREAM_PARTITIONS: "4", ...env }));
  return {
    config,
    redis: () => server.client(),
    now: Date.now,
    random: createRandom(7),
  };
}

Deno.test("with four partitions each symbol's quotes go to one stream, picked by a stable hash", async () => {
  const deps = await setup();
  const result = await emitQuotes(deps, { ticks: 5 });
  assert.equal(result.emitted, 40);
  assert.equal(result.partitions?.reduce((n, p) => n + p.emitted, 0), 40);
  for (const keys of allStockKeys(deps.config)) {
    assert.match(keys.stream, new RegExp(`\\{p${keys.partition}\\}$`));
    for (const entry of await readAllEntries(server.client(), keys.stream)) {
      const symbol = entry.fields[entry.fields.indexOf("symbol") + 1];
      assert.equal(partitionOf(symbol, 4), keys.partition, `${symbol} in ${keys.stream}`);
    }
  }
  // The hash (FNV-1a, then murmur3's finalizer) is fixed for ever, whatever runs it.
  const symbols = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA", "NFLX"];
  assert.deepEqual(symbols.map((s) => partitionOf(s, 4)), [2, 1, 2, 0, 0, 0, 3, 1]);
  assert.deepEqual(symbols.map((s) => partitionOf(s, 2)), [0, 1, 0, 0, 0, 0, 1, 1]);
  assert.equal(partitionOf("AAPL", 1), 0);
});

Deno.test("alerts, states and stored quotes with four partitions equal a one-partition run of the same quotes", async () => {
  const quotes = fixedQuotes();
  server ??= await startRedis();
  const run = async (partitions: number) =>
    await runQuotes(
      await setup({
        STREAM_PARTITIONS: String(partitions),
        DATABASE_PATH: `${server.dir}/quotes-${partitions}.db`,
      }),
      quotes,
    );
  const one = await run(1);
  const four = await run(4);
  assert.ok(one.alerts.length > 20, `only ${one.alerts.length} alerts`);
  assert.deepEqual(four.alerts, one.alerts);
  assert.deepEqual(four.states, one.states);
  assert.equal(one.stored.length, quotes.length);
  assert.deepEqual(four.stored, one.stored);
});

Deno.test("four concurrent drains of one group take four different partitions", async () => {
  const deps = await setup();
  await emitQuotes(deps, { ticks: 50 });
  const results = await Promise.all(
    Array.from({ length: 4 }, () => drainOne(deps, "price-alerts", { count: 10, budgetMs: 3000 })),
  );
  const total = results.reduce((n, r) => n + r.acked, 0);
  assert.equal(total, 400);
  // Each drain took the partitions nobody else held; together they covered all four.
  const drained = results.flatMap((r) =>
    (r.partitions ?? []).filter((p) => !p.busy && p.acked > 0).map((p) => p.partition)
  );
  assert.deepEqual([...new Set(drained)].sort(), [0, 1, 2, 3]);
  // Only price-alerts drained: the reference is checked for it alone.
  await assertMatchesReference({ redis: server.client(), config: deps.config }, [
    GROUPS.find((g) => g.group === "price-alerts")!,
  ]);
});

Deno.test("a drain can target one partition, and a partition that does not exist is a 400", async () => {
  const deps = await setup();
  await emitQuotes(deps, { ticks: 3 });
  const one = await drainOne(deps, "volume-analysis", { partition: 2, budgetMs: 1000 });
  assert.deepEqual(one.partitions?.map((p) => p.partition), [2]);
  const app = createApp(deps);
  const bad = await app.request("/drain/volume-analysis", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ partition: 4 }),
  });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /partition/);
});

Deno.test("an Idempotency-Key covers every partition: a retry after a partial failure completes the rest and answers the same", async () => {
  const deps = await setup();
  const client = server.client();
  // Partition 2's simulator state is not a hash: its append fails after 0 and 1 are done.
  const broken = stockKeys(deps.config, 2).simulator;
  await client.set(broken, "not a hash");
  await assert.rejects(emitQuotes(deps, { ticks: 2, idempotencyKey: "k-1", fingerprint: "f" }));
  const lengths = async () =>
    await Promise.all(allStockKeys(deps.config).map((k) => client.xlen(k.stream)));
  const afterFailure = await lengths();
  assert.ok(afterFailure[0] > 0 && afterFailure[2] === 0, `lengths ${afterFailure}`);
  await client.del(broken);
  const first = await emitQuotes(deps, { ticks: 2, idempotencyKey: "k-1", fingerprint: "f" });
  const again = await emitQuotes(deps, { ticks: 2, idempotencyKey: "k-1", fingerprint: "f" });
  assert.deepEqual(again, first);
  assert.equal(first.emitted, 16);
  // Partitions done before the failure were not emitted twice.
  const final = await lengths();
  assert.equal(final[0], afterFailure[0]);
  assert.equal(final.reduce((n, l) => n + l, 0), 16);
});

Deno.test("changing STREAM_PARTITIONS is refused while the old layout owes entries, and allowed once it is drained", async () => {
  const one = await setup({ STREAM_PARTITIONS: "1" });
  await emitQuotes(one, { ticks: 2 });
  resetLayoutCache();
  const four = {
    ...one,
    config: loadConfig(referenceEnv(server, { STREAM_PARTITIONS: "4" })),
  };
  const app = createApp(four);
  const refused = await app.request("/emit-quotes", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(refused.status, 409);
  assert.match(
    (await refused.json()).error,
    /^Cannot use STREAM_PARTITIONS=4 as the queue is laid out in 1 partitions and its groups still owe \d+ entries there/,
  );
  resetLayoutCache();
  for (const result of await drainAll(one, { budgetMs: 5000 })) assert.ok(!("error" in result));
  resetLayoutCache();
  const switched = await app.request("/emit-quotes", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(switched.status, 200, await switched.clone().text());
  assert.equal(await server.client().get(stockKeys(four.config).layout), "4");
});

Deno.test("the report adds each partition up and shows every one", async () => {
  const deps = await setup();
  await emitQuotes(deps, { ticks: 3 });
  await drainOne(deps, "price-alerts", { partition: 0, budgetMs: 1000 });
  const report = await (await createApp(deps).request("/report")).json();
  assert.equal(report.stream.length, 24);
  assert.equal(report.stream.partitions.length, 4);
  const price = report.groups.find((g: { name: string }) => g.name === "price-alerts");
  assert.equal(price.partitions.length, 4);
  assert.equal(
    price.lag,
    price.partitions.reduce((n: number, p: { lag: number }) => n + p.lag, 0),
  );
  assert.equal(price.partitions.find((p: { partition: number }) => p.partition === 0).lag, 0);
  const queue = await (await createApp(deps).request("/api/queue")).json();
  assert.equal(
    queue.groups.find((g: { name: string }) => g.name === "price-alerts").lag,
    price.lag,
  );
  // The REST API finds each symbol in its own partition.
  const stock = await (await createApp(deps).request("/api/stocks/NVDA")).json();
  assert.equal(stock.quote.symbol, "NVDA");
  const all = await (await createApp(deps).request("/api/stocks")).json();
  assert.equal((Array.isArray(all) ? all : all.stocks).length, 8);
});

Deno.test("with REDIS_WAIT_REPLICAS and no replica, an emit and a drain say their writes reached none", async () => {
  const deps = await setup({ REDIS_WAIT_REPLICAS: "1", REDIS_WAIT_TIMEOUT_MS: "50" });
  const emitted = await emitQuotes(deps, { ticks: 1 });
  assert.equal(emitted.replicas, 0);
  assert.match(
    emitted.replicationWarning ?? "",
    /^Only 0 of REDIS_WAIT_REPLICAS=1 replicas acknowledged the emit within 50 ms/,
  );
  const drained = await drainOne(deps, "price-alerts", { budgetMs: 1000 });
  assert.ok(drained.acked > 0);
  assert.ok((drained.unreplicated ?? 0) > 0, JSON.stringify(drained));
});

Deno.test("with four partitions /metrics shows each partition's lag and pending, adding up to the group's, and promtool accepts it", async () => {
  const deps = await setup();
  await emitQuotes(deps, { ticks: 4 });
  await drainOne(deps, "price-alerts", { partition: 1, budgetMs: 1000 });
  const text = await scrapeMetrics(deps);
  const all = parseExposition(text);
  for (const group of GROUPS.map((g) => g.group)) {
    const parts = samples(all, "tickstream_partition_lag", { group });
    assert.equal(parts.length, 4, group);
    assert.equal(
      parts.reduce((n, p) => n + p.value, 0),
      value(all, "tickstream_group_lag", { group }),
      group,
    );
  }
  assert.equal(
    value(all, "tickstream_partition_lag", { group: "price-alerts", partition: "1" }),
    0,
  );
  assert.equal(value(all, "tickstream_emitted_total"), 32);
  const check = await promtool(["check", "metrics"], text);
  assert.equal(check.code, 0, check.output);
});

Deno.test("partition tests close their servers", async () => {
  await closeQuoteStores();
  await server?.stop();
});
