import assert from "node:assert/strict";
import { analysisSettings } from "../shared/market/settings.ts";
import type { Redis } from "ioredis";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { priceAlerts } from "../shared/groups/price_alerts.ts";
import { ANALYSES } from "../shared/groups/registry.ts";
import type { Analysis } from "../shared/market/analysis.ts";
import { createApp } from "../shared/app.ts";
import type { Config } from "../shared/config.ts";
import { type DrainResult, parseDeadLetter, resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { decodeQuote, fieldsToRecord } from "../shared/market/quotes.ts";
import { compareIds, openStream } from "../shared/queue/mod.ts";
import { drainDeps, testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { drainStockGroup, replayStockGroup } from "./_deps.ts";
import { findGroup } from "../shared/groups/registry.ts";
import { stockKeys } from "../shared/stock_queue.ts";

const server = await startRedis();

const MAX_DELIVERIES = 3;
const CLAIM_IDLE_MS = 50;
const MALFORMED = ["symbol", "AAPL", "price", "not-a-number", "volume", "10", "timestamp", "1"];

/** A switchable fault: while `on`, the wrapped step throws for the quote of `symbol` at `datetime`. */
interface Fault {
  on: boolean;
  symbol: string;
  datetime: string;
  message: string;
  calls: number;
}

/** `base` with a step that throws for one chosen quote while the fault is on. */
function faulty(base: Analysis, fault: Fault): Analysis {
  return {
    group: base.group,
    step(state, { quote, settings }) {
      if (quote.symbol === fault.symbol && quote.datetime === fault.datetime) {
        fault.calls += 1;
        if (fault.on) throw new Error(fault.message);
      }
      return base.step(state, { quote, settings });
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function fresh(): Promise<{ deps: Deps; redis: Redis; config: Config }> {
  await server.flush();
  resetGroupCache();
  // A clock a second apart per call, so quote datetimes of separate emits never collide.
  let clock = Date.UTC(2024, 0, 2, 15);
  const deps = testDeps(server.url, server.client(), {
    now: () => (clock += 1000),
    env: {
      CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
      MAX_DELIVERIES: String(MAX_DELIVERIES),
      // Low, so the price group writes alerts the serial pass can be compared with.
      PRICE_ALERT_PERCENT: "0.05",
      // The quote-store group writes to an in-memory SQLite database.
      DATABASE_PATH: ":memory:",
    },
  });
  return { deps, redis: server.client(), config: deps.config };
}

/** Quote stream entries in id order. */
async function streamEntries(redis: Redis, key: string): Promise<[string, string[]][]> {
  return await redis.xrange(key, "-", "+") as [string, string[]][];
}

/** States and alerts a serial pass of `analysis` gives over the entries, skipping `skip` ids. */
function serialPass(
  analysis: Analysis,
  config: Config,
  entries: [string, string[]][],
  skip: Set<string>,
): { states: Record<string, unknown>; alerts: string[] } {
  const states = new Map<string, unknown>();
  const alerts: string[] = [];
  const settings = analysisSettings(config);
  for (const [id, fields] of entries) {
    if (skip.has(id)) continue;
    const quote = decodeQuote(fields);
    const result = analysis.step(states.get(quote.symbol), { quote, settings });
    states.set(quote.symbol, result.state);
    for (const a of result.alerts) {
      alerts.push(
        [analysis.group, id, a.type, a.symbol, a.message, String(Number(a.value.toFixed(6)))]
          .join("|"),
      );
    }
  }
  return { states: JSON.parse(JSON.stringify(Object.fromEntries(states))), alerts: alerts.sort() };
}

/** The group's alerts as written, in the serial pass's format. */
async function writtenAlerts(redis: Redis, config: Config, group: string): Promise<string[]> {
  const entries = await redis.xrange(config.alertsKey, "-", "+") as [string, string[]][];
  return entries.map(([, fields]) => fieldsToRecord(fields)).filter((r) => r.group === group)
    .map((r) => [r.group, r.source_id, r.type, r.symbol, r.message, r.value].join("|")).sort();
}

async function writtenStates(
  redis: Redis,
  config: Config,
  group: string,
): Promise<Record<string, unknown>> {
  const raw = await redis.hgetall(stockKeys(config).state(group));
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v)]));
}

interface Scenario {
  deps: Deps;
  redis: Redis;
  config: Config;
  fault: Fault;
  processor: Analysis;
  poisonId: string;
  malformedId: string;
  drains: DrainResult[];
  startedAt: number;
}

/**
 * Emits 3 batches of 2 ticks x 8 symbols with a malformed entry after the
 * first, makes price-alerts throw for one quote of the first batch, and
 * drains until that group has nothing pending; the other groups are drained
 * with their real handlers.
 */
async function poisonScenario(): Promise<Scenario> {
  const { deps, redis, config } = await fresh();
  const startedAt = Date.now();
  await emitQuotes(deps, { ticks: 2 });
  const malformedId = String(await redis.xadd(config.streamKey, "*", ...MALFORMED));
  await emitQuotes(deps, { ticks: 2 });
  await emitQuotes(deps, { ticks: 2 });
  const entries = await streamEntries(redis, config.streamKey);
  assert.equal(entries.length, 3 * 2 * 8 + 1);
  // The third quote of the stream: its symbol has 5 later quotes the engine must hold back.
  const [poisonId, poisonFields] = entries[2];
  const fault: Fault = {
    on: true,
    symbol: decodeQuote(poisonFields).symbol,
    datetime: decodeQuote(poisonFields).datetime,
    message: `handler cannot take ${poisonId}`,
    calls: 0,
  };
  const processor = faulty(priceAlerts, fault);
  const drains: DrainResult[] = [];
  for (let i = 0; i < 20; i++) {
    // One chunk per drain, so each drain is one delivery of the poison entry.
    const result = await drainStockGroup(drainDeps(config, redis), processor, { maxChunks: 1 });
    drains.push(result);
    if (!result.more) break;
    await sleep(CLAIM_IDLE_MS + 20);
  }
  for (const group of GROUP_NAMES) {
    if (group === priceAlerts.group) continue;
    const result = await drainStockGroup(drainDeps(config, redis), findGroup(group)!);
    assert.equal(result.more, false, `${group} caught up in one drain`);
    assert.equal(result.deadLettered, 1, `${group} dead-lettered only the malformed entry`);
  }
  return {
    deps,
    redis,
    config,
    fault,
    processor,
    poisonId,
    malformedId,
    drains,
    startedAt,
  };
}

async function deadLettersOf(redis: Redis, config: Config, group: string) {
  const entries = await redis.xrange(config.deadLetterKey, "-", "+") as [string, string[]][];
  return entries.map(([id, fields]) => parseDeadLetter({ id, fields }))
    .filter((d) => d.group === group);
}

Deno.test("a malformed entry and an always-throwing entry are dead-lettered while every other entry is processed", async () => {
  const { redis, config, fault, poisonId, malformedId, drains, startedAt } = await poisonScenario();
  const entries = await streamEntries(redis, config.streamKey);
  const symbol = decodeQuote(entries[2][1]).symbol;
  const later =
    entries.filter(([id, fields]) =>
      compareIds(id, poisonId) > 0 && id !== malformedId && decodeQuote(fields).symbol === symbol
    ).length;
  assert.equal(later, 5);

  // Delivery 1 fails and holds back the symbol's later quotes; the malformed entry goes at once.
  assert.equal(drains[0].read, entries.length);
  assert.equal(drains[0].failed, 1);
  assert.equal(drains[0].deferred, later);
  assert.equal(drains[0].deadLettered, 1);
  assert.equal(drains[0].acked, entries.length - 1 - later);
  // Deliveries 2 .. MAX_DELIVERIES-1 reclaim it with the held-back quotes and fail again.
  for (const retry of drains.slice(1, MAX_DELIVERIES - 1)) {
    assert.equal(retry.claimed, 1 + later);
    assert.equal(retry.failed, 1);
    assert.equal(retry.deadLettered, 0);
    assert.equal(retry.acked, 0);
  }
  // Delivery MAX_DELIVERIES dead-letters it and processes the quotes behind it.
  const last = drains[MAX_DELIVERIES - 1];
  assert.equal(drains.length, MAX_DELIVERIES);
  assert.equal(last.claimed, 1 + later);
  assert.equal(last.deadLettered, 1);
  assert.equal(last.acked, 1 + later);
  assert.equal(last.more, false);
  assert.equal(
    fault.calls,
    MAX_DELIVERIES,
    "the handler saw the poison entry MAX_DELIVERIES times",
  );

  const dead = await deadLettersOf(redis, config, "price-alerts");
  assert.equal(dead.length, 2);
  const [bad, poison] = dead;
  assert.equal(bad.sourceId, malformedId);
  assert.deepEqual(bad.fields, fieldsToRecord(MALFORMED));
  assert.equal(bad.deliveries, 1);
  assert.match(bad.error, /^QuoteDecodeError: .*price.*not a number/);
  assert.equal(poison.group, "price-alerts");
  assert.equal(poison.sourceId, poisonId);
  assert.deepEqual(poison.fields, fieldsToRecord(entries[2][1]));
  assert.equal(poison.deliveries, MAX_DELIVERIES);
  assert.equal(poison.error, `Error: ${fault.message}`);
  for (const d of dead) {
    const at = Date.parse(d.datetime);
    assert.equal(new Date(at).toISOString(), d.datetime);
    assert.ok(at >= startedAt - 5 && at <= Date.now(), `datetime ${d.datetime} is now`);
  }

  // Every other entry was processed exactly as a serial pass without the two would.
  const expected = serialPass(priceAlerts, config, entries, new Set([poisonId, malformedId]));
  assert.deepEqual(await writtenStates(redis, config, "price-alerts"), expected.states);
  assert.deepEqual(await writtenAlerts(redis, config, "price-alerts"), expected.alerts);
  assert.ok(expected.alerts.length > 0, "the comparison covers some alerts");
  for (const analysis of ANALYSES.slice(1)) {
    const serial = serialPass(analysis, config, entries, new Set([malformedId]));
    assert.deepEqual(await writtenStates(redis, config, analysis.group), serial.states);
    assert.deepEqual(await writtenAlerts(redis, config, analysis.group), serial.alerts);
  }
  const pending = await openStream(redis, config.streamKey).group("price-alerts").pendingEntries();
  assert.deepEqual(pending, []);
});

Deno.test("two always-failing entries of one symbol each get MAX_DELIVERIES handler attempts", async () => {
  const { deps, redis, config } = await fresh();
  await emitQuotes(deps, { ticks: 4, symbols: ["AAPL"] });
  const entries = await streamEntries(redis, config.streamKey);
  const failing = new Set([entries[0], entries[1]].map(([, f]) => decodeQuote(f).datetime));
  const calls = new Map<string, number>();
  const processor: Analysis = {
    group: priceAlerts.group,
    step(state, { quote, settings }) {
      if (failing.has(quote.datetime)) {
        calls.set(quote.datetime, (calls.get(quote.datetime) ?? 0) + 1);
        throw new Error(`cannot take ${quote.datetime}`);
      }
      return priceAlerts.step(state as never, { quote, settings });
    },
  };
  const first = await drainStockGroup(drainDeps(config, redis), processor, { maxChunks: 1 });
  assert.equal(first.failed, 1);
  assert.equal(first.deferred, 3);
  // The held-back entries were delivered but not attempted: their delivery does not count.
  const pending = await openStream(redis, config.streamKey).group(priceAlerts.group)
    .pendingEntries();
  assert.deepEqual(pending.map((p) => p.deliveries), [1, 0, 0, 0]);
  // ... and they keep their owner and idle time, so they are retried together with the first.
  for (const p of pending) {
    assert.equal(p.consumer, first.consumer);
    assert.ok(Math.abs(p.idleMs - pending[0].idleMs) <= 5, `idle ${p.idleMs}`);
  }
  for (let i = 0; i < 20; i++) {
    await sleep(CLAIM_IDLE_MS + 20);
    if (!(await drainStockGroup(drainDeps(config, redis), processor, { maxChunks: 1 })).more) break;
  }
  assert.deepEqual([...calls.values()], [MAX_DELIVERIES, MAX_DELIVERIES]);
  const dead = await deadLettersOf(redis, config, priceAlerts.group);
  assert.deepEqual(
    dead.map((d) => [d.sourceId, d.deliveries]),
    [[entries[0][0], MAX_DELIVERIES], [entries[1][0], MAX_DELIVERIES]],
  );
  const expected = serialPass(
    priceAlerts,
    config,
    entries,
    new Set([entries[0][0], entries[1][0]]),
  );
  assert.deepEqual(await writtenStates(redis, config, priceAlerts.group), expected.states);
  assert.deepEqual(
    await openStream(redis, config.streamKey).group(priceAlerts.group).pendingEntries(),
    [],
  );
});

Deno.test("dead letters show in /report per group and in GET /dead-letters by group and limit", async () => {
  const { deps, poisonId, malformedId } = await poisonScenario();
  const app = createApp(deps);
  const report = await (await app.request("/report")).json();
  const counts = Object.fromEntries(
    report.groups.map((g: { name: string; deadLetters: number }) => [g.name, g.deadLetters]),
  );
  // The malformed entry is dead-lettered by every group, the poison one by price-alerts too.
  assert.deepEqual(
    counts,
    Object.fromEntries(GROUP_NAMES.map((name) => [name, name === "price-alerts" ? 2 : 1])),
  );
  assert.equal(report.deadLetters.length, GROUP_NAMES.length + 1);

  const res = await app.request("/dead-letters?group=price-alerts&limit=10");
  assert.equal(res.status, 200);
  const listed = (await res.json()).deadLetters;
  // Newest first: the poison entry was dead-lettered after the malformed one.
  assert.deepEqual(listed.map((d: { sourceId: string }) => d.sourceId), [poisonId, malformedId]);
  assert.equal(listed[0].group, "price-alerts");
  assert.equal(listed[0].deliveries, MAX_DELIVERIES);
  assert.equal(typeof listed[0].fields.symbol, "string");
  assert.match(listed[0].id, /^\d+-\d+$/);
  assert.match(listed[0].error, /handler cannot take/);

  const one = (await (await app.request("/dead-letters?group=price-alerts&limit=1")).json())
    .deadLetters;
  assert.deepEqual(one, listed.slice(0, 1));
  const other = (await (await app.request("/dead-letters?group=market-events")).json())
    .deadLetters;
  assert.deepEqual(other.map((d: { sourceId: string }) => d.sourceId), [malformedId]);
  const all = (await (await app.request("/dead-letters")).json()).deadLetters;
  assert.equal(all.length, GROUP_NAMES.length + 1);

  assert.equal((await app.request("/dead-letters?group=nope")).status, 404);
  for (const limit of ["0", "1001", "abc", "-1"]) {
    const bad = await app.request(`/dead-letters?limit=${limit}`);
    assert.equal(bad.status, 400, `limit=${limit}`);
    assert.match((await bad.json()).error, /limit/);
  }
});

Deno.test("replay of a fixed entry succeeds, empties its dead-letter record and adds nothing to the quote stream", async () => {
  const { deps, redis, config, fault, poisonId } = await poisonScenario();
  const app = createApp(deps);
  const [, poison] = await deadLettersOf(redis, config, "price-alerts");
  const length = await redis.xlen(config.streamKey);
  const lastId = (await redis.xrevrange(config.streamKey, "+", "-", "COUNT", 1))[0][0];
  const alertsBefore = await redis.xlen(config.alertsKey);
  const entries = await streamEntries(redis, config.streamKey);
  const quote = decodeQuote(entries.find(([id]) => id === poisonId)![1]);
  const stateBefore = (await writtenStates(redis, config, "price-alerts"))[quote.symbol];

  // The handler is fixed: the route runs the real price-alerts step.
  fault.on = false;
  const res = await app.request("/dead-letters/price-alerts/replay", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ids: [poison.id] }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    group: "price-alerts",
    attempted: 1,
    succeeded: 1,
    failed: 0,
  });

  assert.deepEqual(await redis.xrange(config.deadLetterKey, poison.id, poison.id), []);
  const left = await deadLettersOf(redis, config, "price-alerts");
  assert.deepEqual(left.map((d) => d.sourceId).includes(poisonId), false);
  assert.equal(left.length, 1);
  assert.equal(await redis.hget(stockKeys(config).deadCount, "price-alerts"), "1");
  const report = await (await app.request("/report")).json();
  assert.equal(
    report.groups.find((g: { name: string }) => g.name === "price-alerts").deadLetters,
    1,
  );

  // Nothing was re-added to the quote stream; the other groups do not see it again.
  assert.equal(await redis.xlen(config.streamKey), length);
  assert.equal((await redis.xrevrange(config.streamKey, "+", "-", "COUNT", 1))[0][0], lastId);
  for (const g of report.groups) {
    assert.equal(g.lag, 0, `${g.name} lag`);
    assert.equal(g.pending, 0, `${g.name} pending`);
  }
  // The replay applied the step to the symbol's state, its alerts name the original entry.
  const expected = priceAlerts.step(stateBefore as never, {
    quote,
    settings: analysisSettings(config),
  });
  assert.deepEqual(
    (await writtenStates(redis, config, "price-alerts"))[quote.symbol],
    JSON.parse(JSON.stringify(expected.state)),
  );
  const alerts = await redis.xrange(config.alertsKey, "-", "+") as [string, string[]][];
  assert.equal(alerts.length, alertsBefore + expected.alerts.length);
  for (const [, fields] of alerts.slice(alertsBefore)) {
    assert.equal(fieldsToRecord(fields).source_id, poisonId);
  }
});

Deno.test("a replay that fails again keeps the dead letter with its new error and count", async () => {
  const { deps, redis, config, fault, processor, poisonId, malformedId } = await poisonScenario();
  const app = createApp(deps);
  const [, poison] = await deadLettersOf(redis, config, "price-alerts");
  const length = await redis.xlen(config.streamKey);
  const alertsBefore = await redis.xlen(config.alertsKey);
  const statesBefore = await writtenStates(redis, config, "price-alerts");

  fault.message = "still broken after the fix attempt";
  const raw = await redis.xrange(config.deadLetterKey, poison.id, poison.id) as [
    string,
    string[],
  ][];
  const result = await replayStockGroup(drainDeps(config, redis), processor, {
    entries: raw.map(([id, fields]) => ({ id, fields })),
  });
  assert.deepEqual(result, {
    group: "price-alerts",
    attempted: 1,
    succeeded: 0,
    failed: 1,
    busy: false,
    stalled: null,
  });
  assert.deepEqual(await redis.xrange(config.deadLetterKey, poison.id, poison.id), []);
  const [bad, again] = await deadLettersOf(redis, config, "price-alerts");
  assert.equal(bad.sourceId, malformedId);
  assert.equal(again.sourceId, poisonId);
  assert.equal(again.error, "Error: still broken after the fix attempt");
  assert.equal(again.deliveries, MAX_DELIVERIES + 1);
  assert.deepEqual(again.fields, poison.fields);
  assert.equal(await redis.hget(stockKeys(config).deadCount, "price-alerts"), "2");
  assert.deepEqual(await writtenStates(redis, config, "price-alerts"), statesBefore);
  assert.equal(await redis.xlen(config.alertsKey), alertsBefore);

  // Through the route, replaying every dead letter of the group: the malformed one fails again.
  fault.on = false;
  const res = await app.request("/dead-letters/volume-analysis/replay", {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    group: "volume-analysis",
    attempted: 1,
    succeeded: 0,
    failed: 1,
  });
  const [stillBad] = await deadLettersOf(redis, config, "volume-analysis");
  assert.equal(stillBad.sourceId, malformedId);
  assert.equal(stillBad.deliveries, 2);
  assert.match(stillBad.error, /^QuoteDecodeError/);
  assert.equal(await redis.hget(stockKeys(config).deadCount, "volume-analysis"), "1");
  assert.equal(await redis.xlen(config.streamKey), length);

  const missing = await app.request("/dead-letters/price-alerts/replay", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ids: [poison.id] }),
  });
  assert.equal(missing.status, 404, "the replaced dead letter id is gone");
});

Deno.test("poison tests close their redis-server", async () => {
  await closeQuoteStores();
  await server.stop();
});
