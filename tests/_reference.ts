/**
 * Test helper: the serial reference the drain engine must match. It runs each
 * analysis's pure `step` over the whole quote stream, once, in stream order,
 * and compares the result with what the engine left in Redis: the alerts of
 * every group (without duplicates) and every per-symbol state. Sink groups
 * keep their effect outside Redis, so for them only "caught up" is checked.
 *
 * @module
 */

import type { StockGroup } from "../shared/groups/group.ts";
import { withShortBudget } from "./_env.ts";
import { AssertionError } from "node:assert";
import type { Redis } from "ioredis";
import { analysisSettings } from "../shared/market/settings.ts";
import type { Analysis, AnalysisSettings } from "../shared/market/analysis.ts";
import type { Config } from "../shared/config.ts";
import type { Deps } from "../shared/http.ts";
import { createRandom } from "../shared/market/simulator.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { decodeQuote, fieldsToRecord, QuoteDecodeError } from "../shared/market/quotes.ts";
import { compareIds, openStream, type StreamEntry } from "../shared/queue/mod.ts";
import { allStockKeys } from "../shared/stock_queue.ts";

/** One alert, reduced to what a serial pass determines (no message text or wall time). */
export interface AlertRecord {
  /** Consumer group that wrote it. */
  group: string;
  /** Id of the quote that produced it. */
  sourceId: string;
  /** Alert type. */
  type: string;
  /** Symbol. */
  symbol: string;
  /** Value as the engine stores it: rounded to 6 decimals, then printed. */
  value: string;
}

/** Alerts and final per-symbol states of one group. */
export interface GroupOutcome {
  /** Alerts in the order they were produced (reference) or written (actual). */
  alerts: AlertRecord[];
  /** Final state per symbol, as JSON would round-trip it. */
  states: Record<string, unknown>;
}

/** Outcome per group name. */
export type Outcome = Record<string, GroupOutcome>;

/** Where an outcome is read: a client, and the settings that name the keys. */
export interface Target {
  /** Client the reads go to. */
  redis: Redis;
  /** Settings naming the streams and hashes. */
  config: Config;
}

/** Value of an alert as the engine writes it to the alerts stream. */
export function storedValue(value: number): string {
  return String(Number(value.toFixed(6)));
}

/** Settings the engine passes to every step, read from `config`. */
export function settingsOf(config: Config): AnalysisSettings {
  return analysisSettings(config);
}

/** True for a group whose effect lives outside Redis. */
export function isSinkProcessor(processor: StockGroup): boolean {
  return "write" in processor;
}

/** Every entry of a stream, oldest first, read in pages. */
export async function readAllEntries(redis: Redis, key: string): Promise<StreamEntry[]> {
  const stream = openStream(redis, key);
  const out: StreamEntry[] = [];
  let start = "-";
  for (;;) {
    const page = await stream.range({ start, count: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    start = `(${page[page.length - 1].id}`;
  }
}

/** What {@linkcode referencePass} runs over the entries. */
export interface PassInput {
  /** Analyses to run, each on its own. */
  analyses: readonly Analysis[];
  /** Settings every step gets. */
  settings: AnalysisSettings;
}

/**
 * One serial, in-order pass of every analysis over `entries`: per symbol,
 * each quote's step gets the state the previous quote of that symbol left.
 * Entries that cannot be decoded have no effect (the engine dead-letters them).
 */
export function referencePass(entries: readonly StreamEntry[], input: PassInput): Outcome {
  const { analyses, settings } = input;
  const outcome: Outcome = {};
  for (const analysis of analyses) {
    const states = new Map<string, unknown>();
    const alerts: AlertRecord[] = [];
    for (const entry of entries) {
      let quote;
      try {
        quote = decodeQuote(entry.fields);
      } catch (error) {
        if (error instanceof QuoteDecodeError) continue;
        throw error;
      }
      const result = analysis.step(states.get(quote.symbol), { quote, settings });
      states.set(quote.symbol, result.state);
      for (const alert of result.alerts) {
        alerts.push({
          group: analysis.group,
          sourceId: entry.id,
          type: alert.type,
          symbol: alert.symbol,
          value: storedValue(alert.value),
        });
      }
    }
    // The engine stores state as JSON, so compare what JSON keeps.
    const plain: Record<string, unknown> = {};
    for (const [symbol, state] of states) plain[symbol] = JSON.parse(JSON.stringify(state));
    outcome[analysis.group] = { alerts, states: plain };
  }
  return outcome;
}

/** The reference outcome of the analysis groups among `processors`, from the stream in Redis. */
export async function referenceOutcome(
  target: Target,
  processors: readonly StockGroup[],
): Promise<Outcome> {
  const entries = await readAllQuotes(target);
  const analyses = processors.filter((p) => !isSinkProcessor(p)) as Analysis[];
  return referencePass(entries, { analyses, settings: settingsOf(target.config) });
}

/**
 * Every quote of every partition, each partition in stream order. A symbol
 * lives in one partition and the analyses keep state per symbol, so one
 * pass over this list equals one pass over the quotes in emit order.
 */
export async function readAllQuotes(target: Target): Promise<StreamEntry[]> {
  const parts = await Promise.all(
    allStockKeys(target.config).map((keys) => readAllEntries(target.redis, keys.stream)),
  );
  return parts.flat();
}

/** What the engine left in Redis for each of `groups`: its alerts and its state hash. */
export async function actualOutcome(
  target: Target,
  groups: readonly string[],
): Promise<Outcome> {
  const { redis, config } = target;
  const outcome: Outcome = {};
  for (const group of groups) outcome[group] = { alerts: [], states: {} };
  const alerts = await Promise.all(
    allStockKeys(config).map((keys) => readAllEntries(redis, keys.alerts)),
  );
  for (const entry of alerts.flat()) {
    const r = fieldsToRecord(entry.fields);
    const target = outcome[r.group ?? ""];
    if (target === undefined) continue;
    target.alerts.push({
      group: r.group,
      sourceId: r.source_id ?? "",
      type: r.type ?? "",
      symbol: r.symbol ?? "",
      value: r.value ?? "",
    });
  }
  for (const group of groups) {
    for (const keys of allStockKeys(config)) {
      const raw = await redis.hgetall(keys.state(group));
      for (const [symbol, json] of Object.entries(raw)) {
        outcome[group].states[symbol] = JSON.parse(json);
      }
    }
  }
  return outcome;
}

function alertKey(a: AlertRecord): string {
  // Ids are per partition, and a symbol lives in one: the symbol makes the key unique.
  return `${a.group} ${a.symbol} ${a.sourceId} ${a.type}`;
}

function describe(a: AlertRecord): string {
  return `${a.group} ${a.sourceId} ${a.type} ${a.symbol} value=${a.value}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  // Key order may differ between a fresh object and a parsed one.
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>).sort().map((
          k,
        ) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Differences between the reference and the engine's outcome. */
export interface OutcomeDiff {
  /** Reference alerts the engine did not write. */
  lost: AlertRecord[];
  /** Alerts written more than once for the same (source_id, type, group), one per extra copy. */
  duplicated: AlertRecord[];
  /** Alerts the engine wrote that the reference does not have, or with another symbol or value. */
  unexpected: AlertRecord[];
  /** Groups and symbols whose alerts were written out of stream order. */
  outOfOrder: string[];
  /** Symbols whose final state differs, with both states. */
  states: { group: string; symbol: string; expected: unknown; actual: unknown }[];
}

/** Compares the engine's outcome with the reference, group by group. */
export function diffOutcomes(expected: Outcome, actual: Outcome): OutcomeDiff {
  const diff: OutcomeDiff = {
    lost: [],
    duplicated: [],
    unexpected: [],
    outOfOrder: [],
    states: [],
  };
  for (const [group, want] of Object.entries(expected)) {
    const got = actual[group] ?? { alerts: [], states: {} };
    const wanted = new Map(want.alerts.map((a) => [alertKey(a), a]));
    const seen = new Set<string>();
    const lastBySymbol = new Map<string, string>();
    for (const a of got.alerts) {
      const key = alertKey(a);
      if (seen.has(key)) {
        diff.duplicated.push(a);
        continue;
      }
      seen.add(key);
      const ref = wanted.get(key);
      if (ref === undefined || ref.symbol !== a.symbol || ref.value !== a.value) {
        diff.unexpected.push(a);
      }
      const last = lastBySymbol.get(a.symbol);
      if (last !== undefined && compareIds(a.sourceId, last) < 0) {
        diff.outOfOrder.push(`${group} ${a.symbol}: ${a.sourceId} written after ${last}`);
      }
      lastBySymbol.set(a.symbol, a.sourceId);
    }
    for (const [key, a] of wanted) if (!seen.has(key)) diff.lost.push(a);
    const symbols = new Set([...Object.keys(want.states), ...Object.keys(got.states)]);
    for (const symbol of [...symbols].sort()) {
      if (!sameJson(want.states[symbol], got.states[symbol])) {
        diff.states.push({
          group,
          symbol,
          expected: want.states[symbol],
          actual: got.states[symbol],
        });
      }
    }
  }
  return diff;
}

/** True when the diff holds no difference at all. */
export function isEmptyDiff(diff: OutcomeDiff): boolean {
  return diff.lost.length + diff.duplicated.length + diff.unexpected.length +
      diff.outOfOrder.length + diff.states.length === 0;
}

/** Options of {@linkcode formatDiff}. */
export interface FormatDiffOptions {
  /**
   * Most lines listed per kind of difference.
   * @default {10}
   */
  limit?: number;
}

/** A readable report of a diff, at most `limit` lines per kind. */
export function formatDiff(diff: OutcomeDiff, options: FormatDiffOptions = {}): string {
  const { limit = 10 } = options;
  const lines: string[] = [];
  function section(title: string, items: string[]): void {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`);
    for (const item of items.slice(0, limit)) lines.push(`  ${item}`);
    if (items.length > limit) lines.push(`  ... and ${items.length - limit} more`);
  }
  section("lost alerts", diff.lost.map(describe));
  section("duplicated alerts", diff.duplicated.map(describe));
  section("unexpected alerts", diff.unexpected.map(describe));
  section("alerts out of stream order", diff.outOfOrder);
  section(
    "states that differ",
    diff.states.map((s) =>
      `${s.group} ${s.symbol}\n    expected ${JSON.stringify(s.expected)}\n    actual   ${
        JSON.stringify(s.actual)
      }`
    ),
  );
  return lines.join("\n");
}

/**
 * Groups among `groups` that are not caught up (lag 0 and nothing pending),
 * each described as "group: lag=L pending=P"; empty when all are.
 */
export async function groupsBehind(
  target: Target,
  groups: readonly string[],
): Promise<string[]> {
  const behind: string[] = [];
  const many = target.config.streamPartitions > 1;
  for (const keys of allStockKeys(target.config)) {
    const quotes = openStream(target.redis, keys.stream);
    const info = await quotes.groups();
    const stream = await quotes.info();
    for (const group of groups) {
      const g = info.find((i) => i.name === group);
      // Redis reports lag null when it cannot count; the last delivered id still tells.
      const delivered = g !== undefined && stream !== null &&
        (g.lag === 0 ||
          (g.lag === null && compareIds(g.lastDeliveredId, stream.lastGeneratedId) >= 0));
      if (g === undefined || !delivered || g.pending !== 0) {
        const where = many ? ` (partition ${keys.partition})` : "";
        behind.push(
          `${group}${where}: lag=${g?.lag ?? "no group"} pending=${g?.pending ?? "no group"}`,
        );
      }
    }
  }
  return behind;
}

/** What {@linkcode assertMatchesReference} found, for summaries. */
export interface ReferenceCheck {
  /** Entries in the quote stream. */
  entries: number;
  /** Alerts the reference expects, over every analysis group. */
  alerts: number;
  /** The diff (empty when the assertion passed). */
  diff: OutcomeDiff;
}

/**
 * Asserts that every analysis group's alerts and states in Redis equal one
 * serial pass over the stream, with no duplicate (source_id, type, group),
 * and that every group, sinks included, has lag 0 and nothing pending.
 */
export async function assertMatchesReference(
  target: Target,
  processors: readonly StockGroup[],
): Promise<ReferenceCheck> {
  const { config } = target;
  const behind = await groupsBehind(target, processors.map((p) => p.group));
  if (behind.length > 0) {
    throw new AssertionError({ message: `groups not caught up:\n  ${behind.join("\n  ")}` });
  }
  const entries = await readAllQuotes(target);
  const analyses = processors.filter((p) => !isSinkProcessor(p)) as Analysis[];
  const expected = referencePass(entries, { analyses, settings: settingsOf(config) });
  const actual = await actualOutcome(target, analyses.map((a) => a.group));
  const diff = diffOutcomes(expected, actual);
  if (!isEmptyDiff(diff)) {
    throw new AssertionError({
      message: `the engine's outcome differs from one serial pass over ${entries.length} ` +
        `entries:\n${formatDiff(diff)}`,
    });
  }
  const alerts = Object.values(expected).reduce((n, g) => n + g.alerts.length, 0);
  return { entries: entries.length, alerts, diff };
}

/**
 * Settings every reference test runs with, written out in full so that a
 * child process given them as its environment and the test that loads them
 * with `loadConfig` agree, whatever the outer environment holds.
 */
export function referenceEnv(
  server: { url: string; dir: string },
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: server.url,
    STREAM_KEY: "stock_quotes",
    ALERTS_KEY: "stock_alerts",
    DEAD_LETTER_KEY: "stock_quotes:dead",
    SYMBOLS: "AAPL,GOOGL,MSFT,AMZN,TSLA,META,NVDA,NFLX",
    CRON_ENABLED: "false",
    PRICE_ALERT_PERCENT: "2",
    VOLUME_SPIKE_FACTOR: "3",
    STREAM_MAXLEN: "1000000",
    // The check reads every alert back, so none may be trimmed.
    ALERTS_MAXLEN: "1000000",
    MAX_DELIVERIES: "5",
    MAX_LAG: "1000000",
    // The quote-store sink writes SQLite inside the test server's data directory.
    DATABASE_URL: "",
    DATABASE_PATH: `${server.dir}/quotes.db`,
    FUNCTIONS_TOKEN: "",
    DENO_DEPLOYMENT_ID: "",
    ...withShortBudget(overrides),
  };
}

/** Dependencies for in-process tests: `clients` taken in turn, real clock. */
export function referenceDeps(config: Config, clients: readonly Redis[]): Deps {
  let next = 0;
  return {
    config,
    redis() {
      next = (next + 1) % clients.length;
      return clients[next];
    },
    now: Date.now,
    random: Math.random,
  };
}

/** A seeded quote source: each call of `emit` continues one reproducible walk. */
export interface QuoteFeed {
  /** Emits `ticks` quotes per symbol; returns how many entries were added. */
  emit(ticks: number): Promise<number>;
  /** Entries emitted so far. */
  readonly emitted: number;
}

/** Options of {@linkcode quoteFeed}. */
export interface QuoteFeedOptions {
  /**
   * How far the quote clock moves per call, in ms.
   * @default {90 * 60_000}
   */
  stepMs?: number;
}

/**
 * Emits through `emitQuotes` with a seeded random and a quote clock that
 * starts on 2 Jan 2024 at 20:00 UTC and moves `stepMs` per call (90 minutes
 * by default), so sessions change and jumps and volume spikes fire alerts.
 */
export function quoteFeed(deps: Deps, seed: number, options: QuoteFeedOptions = {}): QuoteFeed {
  const { stepMs = 90 * 60_000 } = options;
  let clock = Date.UTC(2024, 0, 2, 20);
  let emitted = 0;
  const feedDeps: Deps = { ...deps, now: () => clock, random: createRandom(seed) };
  return {
    async emit(ticks: number): Promise<number> {
      const result = await emitQuotes(feedDeps, { ticks });
      clock += stepMs;
      emitted += result.emitted;
      return result.emitted;
    },
    get emitted() {
      return emitted;
    },
  };
}
