import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { createApp } from "../shared/app.ts";
import type { Config } from "../shared/config.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { compareIds, openStream } from "../shared/queue/mod.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { encodeQuote } from "../shared/market/quotes.ts";
import { initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";
import { drainDeps, testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { drainStockGroup, ensureStockGroups } from "./_deps.ts";
import { findGroup } from "../shared/groups/registry.ts";

const server = await startRedis();

const STREAM_MAXLEN = 20;
const MAX_LAG = 60;
const ALERTS_MAXLEN = 10;
/** Entries per emit: 2 ticks of 4 symbols. */
const BATCH = 8;
/** Redis's default stream-node-max-entries: approximate trimming removes whole nodes. */
const NODE_ENTRIES = 100;
const SLOW = "market-events";
const FAST = GROUP_NAMES.filter((g) => g !== SLOW);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function fresh(): Promise<{ deps: Deps; redis: Redis; config: Config }> {
  await server.flush();
  resetGroupCache();
  let clock = Date.UTC(2024, 0, 2, 15);
  const deps = testDeps(server.url, server.client(), {
    now: () => (clock += 1000),
    env: {
      SYMBOLS: "AAPL,MSFT,TSLA,NVDA",
      STREAM_MAXLEN: String(STREAM_MAXLEN),
      MAX_LAG: String(MAX_LAG),
      ALERTS_MAXLEN: String(ALERTS_MAXLEN),
      CLAIM_IDLE_MS: "50",
      VOLUME_SPIKE_FACTOR: "1",
      VOLUME_SPIKE_GAP_TICKS: "0",
      PRICE_ALERT_PERCENT: "0.01",
      DATABASE_PATH: ":memory:",
    },
  });
  return { deps, redis: server.client(), config: deps.config };
}

function emitRequest(): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ticks: 2 }),
  };
}

async function streamIds(redis: Redis, key: string): Promise<string[]> {
  return (await redis.xrange(key, "-", "+")).map(([id]) => id);
}

async function drainFully(deps: Deps, group: string): Promise<number> {
  const { config } = deps;
  let alerts = 0;
  for (let i = 0; i < 100; i++) {
    const result = await drainStockGroup(drainDeps(config, deps.redis()), findGroup(group)!, {
      budgetMs: 5000,
    });
    alerts += result.alerts;
    if (!result.more) return alerts;
    await sleep(config.claimIdleMs + 10);
  }
  throw new Error(`${group} did not catch up`);
}

/**
 * Asserts that every entry the slow group has not acked (pending, or after
 * its last delivered id) is still in the stream, and that everything older
 * than what any group needs was trimmed down to STREAM_MAXLEN.
 */
async function assertTrimmedSafely(redis: Redis, config: Config, emitted: string[]) {
  const ids = await streamIds(redis, config.streamKey);
  const present = new Set(ids);
  const slow = (await openStream(redis, config.streamKey).groups()).find((g) => g.name === SLOW)!;
  const pending = new Set(
    (await openStream(redis, config.streamKey).group(SLOW).pendingEntries({ count: 1000 })).map((
      p,
    ) => p.id),
  );
  const unacked = emitted.filter((id) =>
    pending.has(id) || compareIds(id, slow.lastDeliveredId) > 0
  );
  assert.equal(unacked.length, slow.lag! + slow.pending);
  for (const id of unacked) assert.ok(present.has(id), `unacked entry ${id} was trimmed`);
  const needed = await openStream(redis, config.streamKey).oldestNeededId();
  const kept = ids.filter((id) => compareIds(id, needed!) >= 0).length;
  const expected = Math.max(Math.min(emitted.length, STREAM_MAXLEN), kept);
  assert.equal(ids.length, expected, "trimmed down to what is needed");
}

Deno.test("with a slow group no unacked entry is ever trimmed and emits answer 429 past MAX_LAG", async () => {
  const { deps, redis, config } = await fresh();
  const app = createApp(deps);
  await ensureStockGroups(drainDeps(config, redis), GROUP_NAMES);
  const emitted: string[] = [];
  let refused: Response | undefined;
  for (let i = 1; i <= 40 && refused === undefined; i++) {
    // The slow group reads a little, leaves some pending, and now and then catches a chunk.
    if (i % 3 === 0) {
      await openStream(redis, config.streamKey).group(SLOW).read("slow-reader", { count: 3 });
    }
    if (i % 4 === 0) {
      await sleep(config.claimIdleMs + 10);
      await drainStockGroup(drainDeps(config, redis), findGroup(SLOW)!, {
        count: 5,
        maxChunks: 1,
      });
    }
    const res = await app.request("/emit-quotes", emitRequest());
    if (res.status === 429) {
      refused = res;
      break;
    }
    assert.equal(res.status, 200);
    const body = await res.json();
    const batch = await redis.xrange(config.streamKey, body.firstId, body.lastId);
    assert.equal(batch.length, BATCH, "the new batch is whole");
    emitted.push(...batch.map(([id]) => id));
    for (const group of FAST) await drainFully(deps, group);
    await assertTrimmedSafely(redis, config, emitted);
  }

  assert.ok(refused, "emits were refused once the slow group lagged");
  assert.equal(refused.headers.get("Retry-After"), "30");
  const error = (await refused.json()).error;
  assert.match(error, new RegExp(`slowest group lags \\d+ entries: MAX_LAG is ${MAX_LAG}`));
  const slow = (await openStream(redis, config.streamKey).groups()).find((g) => g.name === SLOW)!;
  assert.ok(slow.lag! > MAX_LAG && slow.lag! <= MAX_LAG + BATCH, `lag ${slow.lag}`);
  const length = await redis.xlen(config.streamKey);
  // Memory is bounded by backpressure: what the slow group needs plus STREAM_MAXLEN at most.
  assert.ok(length <= STREAM_MAXLEN + MAX_LAG + BATCH + slow.pending, `length ${length}`);
  assert.ok(length > STREAM_MAXLEN, "the slow group holds entries beyond STREAM_MAXLEN");
  for (let i = 0; i < 3; i++) {
    assert.equal((await app.request("/emit-quotes", emitRequest())).status, 429);
  }
  assert.equal(await redis.xlen(config.streamKey), length, "a refused emit adds nothing");
  const report = await (await app.request("/report")).json();
  assert.equal(report.backpressure, true);
  assert.ok(
    report.warnings.some((w: string) =>
      w.startsWith(`Backpressure: group "${SLOW}" lags ${slow.lag} entries`)
    ),
    JSON.stringify(report.warnings),
  );

  // After the slow group catches up the stream shrinks to STREAM_MAXLEN and emits resume.
  await drainFully(deps, SLOW);
  await assertTrimmedSafely(redis, config, emitted);
  assert.equal(await redis.xlen(config.streamKey), STREAM_MAXLEN);
  const after = await (await app.request("/report")).json();
  assert.equal(after.backpressure, false);
  assert.ok(!after.warnings.some((w: string) => w.startsWith("Backpressure")));
  assert.equal((await app.request("/emit-quotes", emitRequest())).status, 200);
  for (const group of GROUP_NAMES) await drainFully(deps, group);
  assert.equal(await redis.xlen(config.streamKey), STREAM_MAXLEN);
});

Deno.test("a trim removes at most its limit per call, never past what a group needs", async () => {
  const { deps, redis, config } = await fresh();
  await ensureStockGroups(drainDeps(config, redis), GROUP_NAMES);
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: config.symbols,
    ticks: 50,
    now: deps.now(),
    random: deps.random,
  });
  const added = await openStream(redis, config.streamKey).append(quotes.map(encodeQuote));
  assert.equal(added.emitted, 200);
  // Only the first 100 entries are done for every group.
  const ids = await streamIds(redis, config.streamKey);
  for (const group of GROUP_NAMES) {
    await redis.xgroup("SETID", config.streamKey, group, ids[99]);
  }
  const lengths: number[] = [];
  for (let i = 0; i < 5; i++) {
    await openStream(redis, config.streamKey).trim(STREAM_MAXLEN, { limit: 30 });
    lengths.push(await redis.xlen(config.streamKey));
  }
  assert.deepEqual(lengths, [170, 140, 110, 100, 100]);
  assert.equal((await streamIds(redis, config.streamKey))[0], ids[100]);
  // Once everything is read and acked, further calls shrink it to STREAM_MAXLEN, 30 at a time.
  for (const group of GROUP_NAMES) await redis.xgroup("SETID", config.streamKey, group, "$");
  const trimmed: number[] = [];
  for (let i = 0; i < 5; i++) {
    trimmed.push(await openStream(redis, config.streamKey).trim(STREAM_MAXLEN, { limit: 30 }));
  }
  assert.deepEqual(trimmed, [30, 30, 20, 0, 0]);
  assert.equal(await redis.xlen(config.streamKey), STREAM_MAXLEN);
  assert.deepEqual(await streamIds(redis, config.streamKey), ids.slice(-STREAM_MAXLEN));
});

Deno.test("the alerts stream stays approximately bounded by ALERTS_MAXLEN", async () => {
  const { deps, redis, config } = await fresh();
  let written = 0;
  for (let i = 0; i < 5; i++) {
    await emitQuotes(deps, { ticks: 50 });
    for (const group of GROUP_NAMES) written += await drainFully(deps, group);
  }
  assert.ok(written > ALERTS_MAXLEN + 3 * NODE_ENTRIES, `only ${written} alerts written`);
  const length = await redis.xlen(config.alertsKey);
  assert.ok(length >= ALERTS_MAXLEN, `alerts length ${length}`);
  assert.ok(length <= ALERTS_MAXLEN + NODE_ENTRIES, `alerts length ${length}`);
  assert.equal(await redis.xlen(config.streamKey), STREAM_MAXLEN);
});

Deno.test("backpressure falls back to the stream length when Redis cannot tell a group's lag", async () => {
  const { deps, redis, config } = await fresh();
  const app = createApp(deps);
  // Emit past MAX_LAG while it still passes, draining nothing.
  while ((await openStream(redis, config.streamKey).length()) <= MAX_LAG) {
    await emitQuotes(deps, { ticks: 10 });
  }
  const groups = await openStream(redis, config.streamKey).groups();
  assert.ok(groups.every((g) => g.lag !== null && g.lag > MAX_LAG));
  // Another producer deletes an undelivered entry: Redis no longer knows the lag.
  const [newest] = await openStream(redis, config.streamKey).range({ reverse: true, count: 1 });
  await redis.xdel(config.streamKey, newest.id);
  const blind = await openStream(redis, config.streamKey).groups();
  assert.ok(blind.every((g) => g.lag === null), "XDEL past the groups hides their lag");
  const refused = await app.request("/emit-quotes", emitRequest());
  assert.equal(refused.status, 429);
  assert.match((await refused.json()).error, /lags \d+ entries: MAX_LAG is 60/);
  // A drain still knows there is more to do.
  const drained = await (await app.request(`/drain/${SLOW}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
  })).json();
  assert.equal(drained.lag, null);
  assert.equal(drained.more, true);
});

Deno.test("trim tests close their redis-server", async () => {
  await closeQuoteStores();
  await server.stop();
});
