import assert from "node:assert/strict";
import type { Hono } from "hono";
import type { Redis } from "ioredis";
import { emitQuotes } from "../functions/emit_quotes.ts";
import type { Report } from "../functions/report.ts";
import { createApp } from "../shared/app.ts";
import type { Config } from "../shared/config.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { encodeQuote } from "../shared/market/quotes.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";
import { openStream } from "../shared/queue/mod.ts";
import { drainDeps, testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { drainStockGroup, ensureStockGroups } from "./_deps.ts";
import { findGroup } from "../shared/groups/registry.ts";

const server = await startRedis();

const MALFORMED = ["symbol", "AAPL", "price", "-1", "volume", "10", "timestamp", "1700000000"];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function fresh(env: Record<string, string> = {}): Promise<
  { deps: Deps; app: Hono; redis: Redis; config: Config }
> {
  await server.flush();
  resetGroupCache();
  let clock = Date.UTC(2024, 0, 2, 15);
  const deps = testDeps(server.url, server.client(), {
    now: () => (clock += 1000),
    env: { DATABASE_PATH: ":memory:", ...env },
  });
  return { deps, app: createApp(deps), redis: server.client(), config: deps.config };
}

async function report(app: Hono): Promise<Report> {
  const res = await app.request("/report");
  assert.equal(res.status, 200);
  return await res.json() as Report;
}

function groupOf(r: Report, name: string) {
  const group = r.groups.find((g) => g.name === name);
  assert.ok(group, `group ${name} is in the report`);
  return group;
}

async function drain(deps: Deps, group: string): Promise<void> {
  const result = await drainStockGroup(
    drainDeps(deps.config, deps.redis()),
    findGroup(group)!,
  );
  assert.equal(result.more, false);
}

Deno.test("the report lists the stream, each group's consumers, pending, lag and dead letters, and the alerts", async () => {
  const { deps, app, redis, config } = await fresh();
  await emitQuotes(deps, { ticks: 2 });
  const malformed = String(await redis.xadd(config.streamKey, "*", ...MALFORMED));
  const ids = (await redis.xrange(config.streamKey, "-", "+")).map(([id]) => id);
  assert.equal(ids.length, 17);
  await drain(deps, "price-alerts");
  await openStream(redis, config.streamKey).group("volume-analysis").read("reader", { count: 5 });
  await sleep(20);

  const r = await report(app);
  assert.deepEqual(r.stream, {
    key: "stock_quotes",
    length: 17,
    firstId: ids[0],
    lastId: malformed,
    entriesAdded: 17,
  });
  assert.deepEqual(r.groups.map((g) => g.name).sort(), [...GROUP_NAMES].sort());

  const price = groupOf(r, "price-alerts");
  assert.equal(price.consumers, 1);
  assert.equal(price.consumerDetails.length, 1);
  assert.match(price.consumerDetails[0].name, /^drain@/);
  assert.equal(price.consumerDetails[0].pending, 0);
  assert.equal(price.pending, 0);
  assert.equal(price.lag, 0);
  assert.equal(price.lastDeliveredId, malformed);
  assert.equal(price.deadLetters, 1);
  assert.equal(price.oldestPendingMs, null);

  const volume = groupOf(r, "volume-analysis");
  assert.equal(volume.consumers, 1);
  assert.equal(volume.consumerDetails[0].name, "reader");
  assert.equal(volume.consumerDetails[0].pending, 5);
  assert.ok(volume.consumerDetails[0].idleMs >= 20);
  assert.equal(volume.pending, 5);
  assert.equal(volume.lag, 12);
  assert.equal(volume.lastDeliveredId, ids[4]);
  assert.equal(volume.deadLetters, 0);
  assert.ok(volume.oldestPendingMs !== null && volume.oldestPendingMs >= 20);

  const technical = groupOf(r, "technical-analysis");
  assert.deepEqual(technical, {
    name: "technical-analysis",
    consumers: 0,
    consumerDetails: [],
    pending: 0,
    lag: 17,
    lastDeliveredId: "0-0",
    deadLetters: 0,
    oldestPendingMs: null,
    status: "ok",
    stall: null,
  });

  assert.deepEqual(r.alerts, { key: "stock_alerts", length: await redis.xlen("stock_alerts") });
  assert.deepEqual(r.deadLetters, { key: "stock_quotes:dead", length: 1 });
  assert.equal(r.backpressure, false);
  assert.deepEqual(r.warnings, []);
});

Deno.test("the report of an empty Redis warns that the groups do not exist yet", async () => {
  const { app } = await fresh();
  const r = await report(app);
  assert.deepEqual(r.stream, {
    key: "stock_quotes",
    length: 0,
    firstId: null,
    lastId: null,
    entriesAdded: null,
  });
  assert.deepEqual(r.groups, []);
  assert.deepEqual(r.missingGroups, [...GROUP_NAMES]);
  assert.deepEqual(
    r.warnings,
    GROUP_NAMES.map((name) =>
      `Group "${name}" does not exist and neither does the stream "stock_quotes": a fresh Redis, or one that lost its data; the next emit or drain creates it at 0`
    ),
  );
});

Deno.test("the report warns above PENDING_WARN and when the oldest pending entry waited past CLAIM_IDLE_MS x MAX_DELIVERIES", async () => {
  const { deps, app, redis, config } = await fresh({
    PENDING_WARN: "3",
    CLAIM_IDLE_MS: "200",
    MAX_DELIVERIES: "2",
  });
  await emitQuotes(deps, { ticks: 2 });
  await openStream(redis, config.streamKey).group("volume-analysis").read("slow", { count: 5 });
  // Exactly PENDING_WARN is not above it.
  await openStream(redis, config.streamKey).group("market-events").read("slow", { count: 3 });

  const first = await report(app);
  assert.deepEqual(first.warnings, [
    'Group "volume-analysis" has 5 pending entries: more than PENDING_WARN 3',
  ]);

  await sleep(450);
  const later = await report(app);
  const stuck = later.warnings.filter((w) => w.includes("oldest pending entry"));
  assert.equal(stuck.length, 2, JSON.stringify(later.warnings));
  for (const group of ["volume-analysis", "market-events"]) {
    const waited = groupOf(later, group).oldestPendingMs!;
    assert.ok(waited > 400, `${group} waited ${waited} ms`);
    assert.ok(
      stuck.includes(
        `Group "${group}" looks stuck: its oldest pending entry has waited ${waited} ms, more than CLAIM_IDLE_MS x MAX_DELIVERIES = 400 ms`,
      ),
      JSON.stringify(stuck),
    );
  }
  assert.ok(later.warnings.includes(first.warnings[0]));

  // Once the entries are processed the warnings go.
  await drain(deps, "volume-analysis");
  await drain(deps, "market-events");
  const cleared = await report(app);
  assert.deepEqual(cleared.warnings.filter((w) => /volume-analysis|market-events/.test(w)), []);
});

Deno.test("the report warns when a group's lag grew across the last 3 reports, and not before", async () => {
  const { deps, app } = await fresh();
  const stuckGroup = "market-events";
  const lagWarnings = (r: Report) => r.warnings.filter((w) => w.includes("lag grew"));
  const lags: number[] = [];
  for (let i = 1; i <= 3; i++) {
    await emitQuotes(deps, { ticks: 2 });
    for (const group of GROUP_NAMES) if (group !== stuckGroup) await drain(deps, group);
    const r = await report(app);
    lags.push(groupOf(r, stuckGroup).lag!);
    if (i < 3) assert.deepEqual(lagWarnings(r), [], `report ${i}`);
    else {
      assert.deepEqual(lagWarnings(r), [
        `Group "${stuckGroup}" looks stuck: its lag grew across the last 3 reports (16 -> 32 -> 48)`,
      ]);
    }
  }
  assert.deepEqual(lags, [16, 32, 48]);
  // A steady lag is not growth.
  assert.deepEqual(lagWarnings(await report(app)), []);
  await drain(deps, stuckGroup);
  assert.deepEqual(lagWarnings(await report(app)), []);
  assert.equal(groupOf(await report(app), stuckGroup).lag, 0);
});

Deno.test("the report shows backpressure while a group lags more than MAX_LAG", async () => {
  const { deps, app } = await fresh({ MAX_LAG: "10" });
  await emitQuotes(deps, { ticks: 1 });
  const calm = await report(app);
  assert.equal(calm.backpressure, false);
  assert.deepEqual(calm.warnings.filter((w) => w.startsWith("Backpressure")), []);

  await emitQuotes(deps, { ticks: 1 });
  for (const group of GROUP_NAMES) if (group !== "technical-analysis") await drain(deps, group);
  const r = await report(app);
  assert.equal(r.backpressure, true);
  assert.deepEqual(r.warnings.filter((w) => w.startsWith("Backpressure")), [
    'Backpressure: group "technical-analysis" lags 16 entries, more than MAX_LAG 10; emits answer 429',
  ]);
  const refused = await app.request("/emit-quotes", {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  assert.equal(refused.status, 429);
  await refused.body?.cancel();
  await drain(deps, "technical-analysis");
  assert.equal((await report(app)).backpressure, false);
});

/** Streams `length` quotes with the same group layout: one group with 3 pending, the rest lagging. */
async function seedStream(deps: Deps, length: number): Promise<void> {
  await server.flush();
  resetGroupCache();
  const redis = deps.redis();
  await ensureStockGroups(drainDeps(deps.config, redis), GROUP_NAMES);
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "MSFT", "TSLA", "NVDA"],
    ticks: length / 4,
    now: Date.UTC(2024, 0, 2, 15),
    random: createRandom(7),
  });
  await openStream(redis, deps.config.streamKey).append(quotes.map(encodeQuote));
  await openStream(redis, deps.config.streamKey).group("price-alerts").read("reader", { count: 3 });
  assert.equal(await redis.xlen(deps.config.streamKey), length);
}

function commandCalls(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) calls[match[1]] = Number(match[2]);
  }
  return calls;
}

/** Runs one report and returns the commands it sent (from MONITOR) and the server's command counts. */
async function measureReport(
  app: Hono,
  redis: Redis,
  monitor: Redis,
): Promise<{ commands: string[][]; calls: Record<string, number> }> {
  const seen: string[][] = [];
  const marker = `end-of-report-${crypto.randomUUID()}`;
  let sawMarker: () => void = () => {};
  const done = new Promise<void>((resolve) => (sawMarker = resolve));
  function onCommand(_time: string, args: string[]) {
    if (args[0]?.toLowerCase() === "echo" && args[1] === marker) sawMarker();
    else seen.push(args);
  }
  await redis.config("RESETSTAT");
  monitor.on("monitor", onCommand);
  try {
    await report(app);
    await redis.echo(marker);
    await done;
  } finally {
    monitor.off("monitor", onCommand);
  }
  const calls = commandCalls(await redis.info("commandstats"));
  return { commands: seen, calls };
}

Deno.test("the report's Redis commands do not depend on the stream's length and never include XINFO STREAM FULL", async () => {
  const { deps, app, redis } = await fresh();
  const watcher = createRedis(server.url, { commandTimeoutMs: 0 });
  const monitor = await watcher.monitor();
  try {
    await seedStream(deps, 100);
    const small = await measureReport(app, redis, monitor);
    await seedStream(deps, 5000);
    const large = await measureReport(app, redis, monitor);

    assert.deepEqual(large.calls, small.calls);
    const shape = (commands: string[][]) =>
      commands.map((c) => c.slice(0, 2).join(" ").toLowerCase()).sort();
    assert.deepEqual(shape(large.commands), shape(small.commands));
    for (const { commands, calls } of [small, large]) {
      const streamInfo = commands.filter((c) =>
        c[0].toLowerCase() === "xinfo" && c[1].toUpperCase() === "STREAM"
      );
      assert.equal(streamInfo.length, 1);
      assert.deepEqual(streamInfo[0].slice(2), ["stock_quotes"], "XINFO STREAM without FULL");
      assert.ok(!commands.some((c) => c.some((arg) => arg.toUpperCase() === "FULL")));
      for (const scan of ["xrange", "xrevrange", "xread", "scan", "keys", "xreadgroup"]) {
        assert.equal(calls[scan], undefined, `${scan} was called`);
      }
      assert.equal(calls["xinfo|stream"], 1);
      assert.equal(calls["xinfo|groups"], 1);
      assert.equal(calls["xinfo|consumers"], GROUP_NAMES.length);
      assert.equal(calls["xpending"], 1, "one XPENDING, for the one group with pending entries");
    }
  } finally {
    monitor.disconnect();
    await closeRedis(watcher);
  }
});

Deno.test("report tests close their redis-server", async () => {
  await closeQuoteStores();
  await server.stop();
});
