import assert from "node:assert/strict";
import { hooked } from "./_hooked.ts";
import { drainAll, drainOne } from "../functions/drain.ts";
import { buildReport } from "../functions/report.ts";
import { technicalAnalysis } from "../shared/groups/technical_analysis.ts";
import type { Analysis } from "../shared/market/analysis.ts";
import { loadConfig } from "../shared/config.ts";
import { consumerName, type DrainResult, resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { openStream } from "../shared/queue/mod.ts";
import { drainDeps } from "./_deps.ts";
import {
  assertMatchesReference,
  groupsBehind,
  quoteFeed,
  readAllEntries,
  referenceDeps,
  referenceEnv,
} from "./_reference.ts";
import { startRedis } from "./_redis_server.ts";
import { drainStockGroup } from "./_deps.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import { stockKeys } from "../shared/stock_queue.ts";

const server = await startRedis();
const clients = [createRedis(server.url), createRedis(server.url)];
const redis = clients[0];
const HTTP = consumerName("http");
const CRON = consumerName("cron");

async function setup(env: Record<string, string> = {}) {
  await server.flush();
  resetGroupCache();
  const config = loadConfig(referenceEnv(server, env));
  const deps = referenceDeps(config, clients);
  return { config, deps, feed: quoteFeed(deps, 21) };
}

Deno.test("consumer names are stable per process and trigger and include the deployment id", () => {
  assert.equal(consumerName("http"), HTTP);
  assert.notEqual(HTTP, CRON);
  assert.match(HTTP, new RegExp(`^http@[^:]+:${Deno.pid}$`));
  assert.match(CRON, new RegExp(`^cron@[^:]+:${Deno.pid}$`));
  assert.equal(consumerName("cron", { deploymentId: "d1" }), `cron@deploy-d1:${Deno.pid}`);
});

Deno.test("many HTTP and cron drains of one process leave every group with two consumers, as /report counts", async () => {
  const { config, deps, feed } = await setup();
  for (let round = 0; round < 10; round++) {
    await feed.emit(3);
    for (const group of GROUP_NAMES) await drainOne(deps, group, { count: 7 });
    const results = await drainAll(deps, { budgetMs: 500 });
    for (const r of results) assert.ok(!("error" in r), JSON.stringify(r));
  }
  const report = await buildReport({ ...deps, redis: () => redis });
  assert.equal(report.groups.length, GROUP_NAMES.length);
  for (const group of report.groups) {
    assert.equal(group.consumers, 2, `${group.name}: ${JSON.stringify(group.consumerDetails)}`);
    assert.deepEqual(group.consumerDetails.map((c) => c.name).sort(), [CRON, HTTP].sort());
  }
  assert.deepEqual(await groupsBehind({ redis, config }, GROUP_NAMES), []);
});

Deno.test("consumers of processes that are gone leave once idle and empty, so the group stays small", async () => {
  const { config, deps, feed } = await setup({ CONSUMER_IDLE_MS: "1000" });
  await feed.emit(2);
  const group = openStream(redis, config.streamKey).group("price-alerts");
  // Earlier processes of a dev session (file watcher restarts), each with its own pid.
  for (const pid of [101, 102, 103, 104]) {
    await redis.xgroup("CREATECONSUMER", config.streamKey, "price-alerts", `http@old:${pid}`);
  }
  assert.equal((await group.consumers()).length, 4);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await drainOne(deps, "price-alerts", { budgetMs: 1000 });
  assert.deepEqual((await group.consumers()).map((c) => c.name), [HTTP]);
});

Deno.test("concurrent drains of one process share its consumer name and still apply every entry once", async () => {
  const { config, deps, feed } = await setup({ CLAIM_IDLE_MS: "2000" });
  await feed.emit(40);
  const tallies = new Map<string, number>();
  for (let round = 0; round < 100; round++) {
    const work: Promise<DrainResult>[] = [];
    for (const group of GROUP_NAMES) {
      for (let i = 0; i < 6; i++) work.push(drainOne(deps, group, { count: 13 }));
    }
    for (const r of await Promise.all(work)) {
      assert.equal(r.consumer, HTTP);
      tallies.set(r.group, (tallies.get(r.group) ?? 0) + r.acked);
    }
    if ((await groupsBehind({ redis, config }, GROUP_NAMES)).length === 0) break;
  }
  const check = await assertMatchesReference({ redis, config }, GROUPS);
  assert.equal(check.entries, 320);
  // Each entry acknowledged exactly once over all the drains of its group.
  for (const group of GROUP_NAMES) assert.equal(tallies.get(group), 320, group);
});

Deno.test("a drain whose lease expired cannot commit, though the drain that took over has the same consumer name", async () => {
  // CLAIM_IDLE_MS 50: the lease lives 500 ms and entries are claimable after 50 ms.
  const { config } = await setup({ CLAIM_IDLE_MS: "50" });
  const feed = quoteFeed(referenceDeps(config, clients), 22);
  await feed.emit(5);
  const processor: Analysis = technicalAnalysis;
  let stepped = false;
  const wrapped: Analysis = {
    group: processor.group,
    step(state, input) {
      stepped = true;
      return processor.step(state, input);
    },
  };
  let second: DrainResult | undefined;
  // A has read and processed its chunk; before it commits, its lease expires and
  // B, the same process with the same consumer name, drains the whole group.
  const viewA = hooked(redis, async () => {
    if (!stepped || second !== undefined) return;
    await redis.del(stockKeys(config).lease(processor.group).key);
    second = await drainStockGroup(drainDeps(config, clients[1]), processor, {
      count: 100,
      budgetMs: 3000,
      consumer: HTTP,
    });
  });
  const first = await drainStockGroup(drainDeps(config, viewA), wrapped, {
    count: 10,
    budgetMs: 3000,
    consumer: HTTP,
  });
  assert.ok(second, "the second drain never ran");
  assert.equal(second.busy, false);
  // B took A's pending entries over (same name, but only once claimable: A's chunk and the
  // one A read ahead) and did all 40.
  assert.equal(second.acked, 40);
  assert.equal(second.claimed, 20);
  assert.equal(first.acked, 0, "the drain that lost its lease committed");
  assert.equal(first.failed, 10);
  const entries = await readAllEntries(redis, config.streamKey);
  assert.equal(entries.length, 40);
  await assertMatchesReference({ redis, config }, [processor]);
});

Deno.test({
  name: "consumer name tests close their redis-server",
  async fn() {
    await closeQuoteStores();
    for (const client of clients) await closeRedis(client);
    await server.stop();
  },
});
