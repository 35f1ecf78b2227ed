/**
 * The drain engine: processes one consumer group in bounded chunks within a
 * time budget, so an invocation ends on time; commits each chunk's effects
 * together with its acks, so a killed invocation leaves nothing half-done;
 * and holds a fenced lease per group, so overlapping invocations apply each
 * symbol's quotes in stream order.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Config } from "./config.ts";
import { decodeQuote, fieldsToRecord, type Quote, QuoteDecodeError } from "./quotes.ts";
import type { AlertDraft, Analysis } from "./analysis/types.ts";
import { asDependencyError, type DependencyError, messageOf } from "./dependency.ts";
import { analysisSettings } from "./analysis/settings.ts";
import { acquireLease, type Lease, leaseKey, releaseLease, renewLease } from "./lease.ts";
import { readStall, type Stall, stallKey } from "./stalls.ts";
import {
  type CommitResult,
  compareIds,
  openStream,
  type RetryMark,
  type Stream,
  type StreamEntry,
  TRIM_STEP,
} from "./stream.ts";

/**
 * What the drain engine needs from the outside world: a function's `Deps`
 * (shared/http.ts) has all of it, and tests pass their own.
 */
export interface DrainDeps {
  /** Validated settings. */
  config: Config;
  /** Returns the Redis client; a drain or replay calls it once and uses that client throughout. */
  redis(): Redis;
  /** Clock in ms since the epoch. */
  now(): number;
}

/** A decoded entry handed to a sink. */
export interface SinkEntry {
  /** Stream entry id. */
  id: string;
  /** The decoded quote. */
  quote: Quote;
}

/**
 * A group whose effect lives outside Redis (a database). `write` must be
 * idempotent per entry id; the engine acks the chunk only after it resolved.
 */
export interface SinkGroup {
  /** Consumer group name. */
  group: string;
  /** Writes a chunk in one transaction; throws to leave the whole chunk pending. */
  write(entries: SinkEntry[]): Promise<void>;
}

/** A group the engine can drain: a pure analysis or a sink. */
export type Processor = Analysis | SinkGroup;

function isSink(processor: Processor): processor is SinkGroup {
  return "write" in processor;
}

/** Options of {@linkcode drainGroup}. */
export interface DrainOptions {
  /**
   * Most entries per chunk.
   * @default {100}
   */
  count?: number;
  /**
   * Time budget in ms: no chunk starts when it might not finish in time.
   * @default {config.drainBudgetMs}
   */
  budgetMs?: number;
  /**
   * Most chunks to process; 1 for a single-chunk HTTP drain.
   * @default {Infinity}
   */
  maxChunks?: number;
  /**
   * Stops the drain before its next chunk (the current one still commits),
   * so a process that is shutting down answers its callers and frees the lease.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Consumer name; by default this process's name for the trigger "drain".
   * @default {consumerName("drain", { deploymentId: config.deploymentId })}
   */
  consumer?: string;
}

/** What one drain did. */
export interface DrainResult {
  /** Group drained. */
  group: string;
  /** Consumer name used. */
  consumer: string;
  /** Entries read or reclaimed. */
  read: number;
  /** Entries acknowledged (processed, or dead-lettered). */
  acked: number;
  /** Entries whose handler failed; they stay pending. */
  failed: number;
  /** Entries left pending because an earlier entry of their symbol failed. */
  deferred: number;
  /** Entries taken over from dead consumers. */
  claimed: number;
  /** Entries moved to the dead-letter stream. */
  deadLettered: number;
  /** Alerts written. */
  alerts: number;
  /** Entries not yet delivered to the group, or null when unknown. */
  lag: number | null;
  /** True while the group has lag or entries waiting to be retried. */
  more: boolean;
  /** Budget this drain had. */
  budgetMs: number;
  /** Wall time spent. */
  durationMs: number;
  /** True when another invocation held the group's lease, so nothing was done. */
  busy: boolean;
  /** Set when a dependency failed: the chunk stays pending, no delivery counted. */
  stalled: StalledDrain | null;
}

/** Why a drain stopped on a failing dependency, and when to try again. */
export interface StalledDrain {
  /** Dependency that failed, e.g. "sqlite", "postgresql" or "redis". */
  dependency: string;
  /** The dependency's error message. */
  error: string;
  /** Back-off before the next attempt, in ms. */
  retryAfterMs: number;
}

/** Hash of per-symbol state of a group. */
export function stateKey(config: Config, group: string): string {
  return `${config.streamKey}:state:${group}`;
}

/** Hash of dead-letter counts per group. */
export function deadCountKey(config: Config): string {
  return `${config.deadLetterKey}:count`;
}

/** Options of {@linkcode consumerName}. */
export interface ConsumerNameOptions {
  /**
   * Deno Deploy deployment id (config.deploymentId), named instead of the host.
   * @default {undefined}
   */
  deploymentId?: string;
}

/**
 * The consumer name of this process for `trigger` ("http", "cron"), the same
 * on every call: `trigger@host:pid`, so a group keeps a handful of consumers.
 * Invocations that share it are still serialized by the group's fenced lease.
 */
export function consumerName(trigger: string, options: ConsumerNameOptions = {}): string {
  const deployment = options.deploymentId;
  let host = "local";
  try {
    host = deployment ? `deploy-${deployment}` : Deno.hostname();
  } catch {
    // Hosts without the sys permission keep "local".
  }
  return `${trigger}@${host}:${Deno.pid}`;
}

const readyGroups = new Set<string>();

/** Options of {@linkcode ensureGroups}. */
export interface EnsureGroupsOptions {
  /**
   * Ask Redis even for groups this isolate already created (Redis may have lost them).
   * @default {false}
   */
  force?: boolean;
}
const recoveriesLogged = new Set<string>();

/** True when `error` says a consumer group (or its stream) is gone: Redis lost it. */
export function isMissingGroupError(error: unknown): boolean {
  return error instanceof Error && /NOGROUP/.test(error.message);
}

/** The group that was lost, and the error that showed it. */
export interface LostGroup {
  /** Group name. */
  group: string;
  /**
   * The NOGROUP error that showed it, if any.
   * @default {undefined}
   */
  error?: unknown;
}

/**
 * Recreates a group Redis lost, at `0` of the stream as it now stands (the
 * entries there are new to it), and logs it once per group and process.
 */
export async function recoverGroup(
  deps: Pick<DrainDeps, "config"> & { redis: Redis },
  lost: LostGroup,
): Promise<void> {
  const { config, redis } = deps;
  const { group } = lost;
  readyGroups.delete(`${config.redisUrl}|${config.streamKey}|${group}`);
  const stream = openStream(redis, config.streamKey);
  const existed = (await stream.info()) !== null;
  await ensureGroups({ config, redis: () => redis }, [group], { force: true });
  const tag = `${config.streamKey}|${group}`;
  if (recoveriesLogged.has(tag)) return;
  recoveriesLogged.add(tag);
  const reason = existed
    ? "the stream exists without the group (XGROUP DESTROY, lost data, or a stream another producer created before any group)"
    : "the stream was gone too (FLUSHALL, a restart without persistence, or a failover to an empty replica)";
  console.warn(
    `Recreated consumer group "${group}" on "${config.streamKey}" at 0: ${reason}; its analysis state restarts from what Redis still holds`,
  );
}

/**
 * Creates every group once per isolate and stream (idempotent); asks `deps`
 * for a client only when some group is not known to exist yet.
 *
 * @example
 * ```ts
 * await ensureGroups(deps, ["price-alerts", "quote-store"]);
 * ```
 */
export async function ensureGroups(
  deps: Pick<DrainDeps, "config" | "redis">,
  groups: readonly string[],
  options: EnsureGroupsOptions = {},
): Promise<void> {
  const { config } = deps;
  const { force = false } = options;
  let stream: Stream | undefined;
  for (const group of groups) {
    const tag = `${config.redisUrl}|${config.streamKey}|${group}`;
    if (readyGroups.has(tag) && !force) continue;
    stream ??= openStream(deps.redis(), config.streamKey);
    await stream.group(group).ensure();
    readyGroups.add(tag);
  }
}

/** Forgets which groups exist, for tests that flush Redis. */
export function resetGroupCache(): void {
  readyGroups.clear();
  recoveriesLogged.clear();
}

interface Delivered {
  entry: StreamEntry;
  deliveries: number;
  /** Id of the quote in the main stream when `entry` is a dead letter being replayed. */
  sourceId?: string;
}

/** A delivered entry, decoded: the quote, or why it could not be decoded. */
interface Decoded {
  item: Delivered;
  quote?: Quote;
  error?: unknown;
}

interface ChunkOutcome {
  /** Set when a dependency failed; nothing but the retry marks was committed. */
  stalled?: StalledDrain;
  acked: number;
  failed: number;
  deferred: number;
  deadLettered: number;
  alerts: number;
  commit: CommitResult;
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Where an alert came from and when it is written. */
interface AlertOrigin {
  /** Id of the quote in the main stream. */
  sourceId: string;
  /** Group whose step produced it. */
  group: string;
  /** Time of writing, in ms since the epoch. */
  now: number;
  /** Market time of the quote, in Unix seconds. */
  quoteTimestamp: number;
}

function alertFields(alert: AlertDraft, origin: AlertOrigin): string[] {
  const { sourceId, group, now, quoteTimestamp } = origin;
  return [
    "type",
    alert.type,
    "symbol",
    alert.symbol,
    "message",
    alert.message,
    "value",
    String(Number(alert.value.toFixed(6))),
    "source_id",
    sourceId,
    "group",
    group,
    "datetime",
    new Date(now).toISOString(),
    "quote_timestamp",
    String(quoteTimestamp),
  ];
}

/** Why and when a group gave up on an entry. */
interface Failure {
  /** Group whose handler gave up. */
  group: string;
  /** Error text. */
  error: string;
  /** Time of writing, in ms since the epoch. */
  now: number;
}

function deadLetterFields(item: Delivered, failure: Failure): string[] {
  const { group, error, now } = failure;
  return [
    "group",
    group,
    "source_id",
    item.sourceId ?? item.entry.id,
    "fields",
    JSON.stringify(fieldsToRecord(item.entry.fields)),
    "deliveries",
    String(item.deliveries),
    "error",
    error.slice(0, 2000),
    "datetime",
    new Date(now).toISOString(),
  ];
}

/** What the private steps of one drain or replay share. */
interface ChunkContext {
  /** Validated settings. */
  config: Config;
  /** The quote stream, on the one client of this drain or replay. */
  stream: Stream;
  /** The group's processor. */
  processor: Processor;
  /** Clock in ms since the epoch. */
  now: () => number;
  /** Lease held for the group, checked by every read, claim and commit. */
  lease: Lease;
  /**
   * How a processed chunk is committed: undefined acks pending entries; for a
   * replay, the dead-letter stream the ids come from (deleted instead of acked).
   */
  deadSource?: string;
}

/**
 * Idle time that makes a failed entry claimable when its retry is due: after
 * RETRY_DELAY_MS x 2^(deliveries - 1), at most CLAIM_IDLE_MS.
 */
function retryIdleMs(config: Config, deliveries: number): number {
  const delay = Math.min(
    config.claimIdleMs,
    config.retryDelayMs * 2 ** Math.max(0, Math.min(deliveries - 1, 30)),
  );
  return config.claimIdleMs - delay;
}

/**
 * Runs one chunk through a processor and commits it atomically. Entries that
 * cannot be decoded, or that failed `maxDeliveries` times, go to the dead
 * letters in the same commit; other failures stay pending, and so do later
 * entries of the same symbol, so per-symbol order holds on retry.
 */
async function processChunk(ctx: ChunkContext, chunk: Delivered[]): Promise<ChunkOutcome> {
  const { config, stream, processor, now, lease, deadSource } = ctx;
  const group = processor.group;
  const ackIds: string[] = [];
  const alerts: string[][] = [];
  const deadLetters: string[][] = [];
  // Symbol -> idle time given to its failed entry: later entries of the symbol
  // wait for the same retry, so they stay behind it.
  const blocked = new Map<string, number>();
  const retry: RetryMark[] = [];
  let failed = 0;
  let deferred = 0;
  let deadLettered = 0;
  let alertCount = 0;
  const decoded: Decoded[] = chunk.map((item) => {
    try {
      return { item, quote: decodeQuote(item.entry.fields) };
    } catch (error) {
      return { item, error };
    }
  });
  /** Dead-letters `d` when it cannot succeed on a retry, else leaves it (and its symbol) pending. */
  function fail(d: Decoded, error: unknown): void {
    const { item } = d;
    const exhausted = error instanceof QuoteDecodeError ||
      item.deliveries >= config.maxDeliveries || deadSource !== undefined;
    if (exhausted) {
      deadLetters.push(
        deadLetterFields(item, { group, error: errorText(error), now: now() }),
      );
      ackIds.push(item.entry.id);
      deadLettered += 1;
    } else {
      failed += 1;
      const idleMs = retryIdleMs(config, item.deliveries);
      retry.push({ id: item.entry.id, idleMs, attempted: true });
      if (d.quote !== undefined && !blocked.has(d.quote.symbol)) {
        blocked.set(d.quote.symbol, idleMs);
      }
    }
  }
  const hashWrites: [string, string, string][] = [];
  if (isSink(processor)) {
    const good = decoded.filter((d) => d.quote !== undefined);
    for (const d of decoded) if (d.quote === undefined) fail(d, d.error);
    try {
      if (good.length > 0) {
        await processor.write(good.map((d) => ({ id: d.item.entry.id, quote: d.quote! })));
      }
      for (const d of good) ackIds.push(d.item.entry.id);
    } catch (error) {
      const dependency = asDependencyError(error);
      if (dependency !== undefined) return await stallChunk(ctx, { chunk, error: dependency });
      for (const d of good) fail(d, error);
    }
  } else {
    const key = stateKey(config, group);
    const symbols = [...new Set(decoded.flatMap((d) => d.quote ? [d.quote.symbol] : []))];
    const stored = symbols.length > 0 ? await stream.redis.hmget(key, ...symbols) : [];
    const states = new Map<string, unknown>();
    symbols.forEach((symbol, i) => {
      const raw = stored[i];
      states.set(symbol, raw ? JSON.parse(raw) : undefined);
    });
    const touched = new Set<string>();
    const settings = analysisSettings(config);
    for (const d of decoded) {
      if (d.quote === undefined) {
        fail(d, d.error);
        continue;
      }
      const symbol = d.quote.symbol;
      const blockedIdle = blocked.get(symbol);
      if (blockedIdle !== undefined) {
        deferred += 1;
        retry.push({ id: d.item.entry.id, idleMs: blockedIdle, attempted: false });
        continue;
      }
      try {
        const result = processor.step(states.get(symbol), { quote: d.quote, settings });
        states.set(symbol, result.state);
        touched.add(symbol);
        for (const alert of result.alerts) {
          alerts.push(
            alertFields(alert, {
              sourceId: d.item.sourceId ?? d.item.entry.id,
              group,
              now: now(),
              quoteTimestamp: d.quote.timestamp,
            }),
          );
        }
        alertCount += result.alerts.length;
        ackIds.push(d.item.entry.id);
      } catch (error) {
        fail(d, error);
      }
    }
    for (const symbol of touched) {
      hashWrites.push([key, symbol, JSON.stringify(states.get(symbol))]);
    }
  }
  const counters: [string, string, number][] = [];
  let commitIds = ackIds;
  if (deadSource) {
    // A replay deletes every attempted dead letter; those that failed again
    // are re-added below with their new error, the rest leave for good.
    const succeeded = ackIds.length - deadLettered;
    commitIds = chunk.map((item) => item.entry.id);
    if (succeeded > 0) counters.push([deadCountKey(config), group, -succeeded]);
  } else if (deadLettered > 0) {
    counters.push([deadCountKey(config), group, deadLettered]);
  }
  const commit = await stream.group(group).commit(commitIds, {
    alertsKey: config.alertsKey,
    alertsMaxLen: config.alertsMaxlen,
    alerts,
    hashWrites,
    // Entries stored again end the group's stall, in the same atomic step.
    hashDeletes: ackIds.length > deadLettered ? [[stallKey(config.streamKey), group]] : [],
    deadLetters,
    deadKey: config.deadLetterKey,
    counters,
    retry,
    fence: { key: lease.key, token: lease.token },
    deadSource,
  });
  return { acked: ackIds.length, failed, deferred, deadLettered, alerts: alertCount, commit };
}

/** A chunk whose dependency failed, and that failure. */
interface StalledChunk {
  /** Entries of the chunk, all left pending. */
  chunk: Delivered[];
  /** What failed. */
  error: DependencyError;
}

/** Longest back-off after a failing dependency, in ms. */
const MAX_STALL_BACKOFF_MS = 60000;

/**
 * Leaves a chunk whose dependency failed pending, with its delivery given
 * back (a broken sink is not the entries' fault), claimable again after a
 * back-off that doubles with each stalled drain in a row; records the stall
 * in the same commit so /report and /health show it.
 */
async function stallChunk(ctx: ChunkContext, stalled: StalledChunk): Promise<ChunkOutcome> {
  const { config, stream, processor, now, lease, deadSource } = ctx;
  const { chunk, error } = stalled;
  const group = processor.group;
  const redis = stream.redis;
  const previous = await readStall(redis, { streamKey: config.streamKey, group }).catch(
    () => undefined,
  );
  const failures = (previous?.failures ?? 0) + 1;
  const backoff = Math.min(
    MAX_STALL_BACKOFF_MS,
    config.claimIdleMs,
    Math.max(1000, config.retryDelayMs) * 2 ** Math.min(failures - 1, 10),
  );
  const at = now();
  const stall: Stall = {
    dependency: error.dependency,
    error: messageOf(error).slice(0, 500),
    since: previous?.since ?? new Date(at).toISOString(),
    failures,
    retryAt: new Date(at + backoff).toISOString(),
  };
  const outcome: ChunkOutcome = {
    stalled: { dependency: error.dependency, error: stall.error, retryAfterMs: backoff },
    acked: 0,
    failed: 0,
    deferred: chunk.length,
    deadLettered: 0,
    alerts: 0,
    commit: { status: "ok" },
  };
  // A replayed dead letter stays where it is; there is no delivery to give back.
  const retry = deadSource !== undefined ? [] : chunk.map((item) => ({
    id: item.entry.id,
    idleMs: config.claimIdleMs - backoff,
    attempted: false,
  }));
  // Best effort: when Redis itself is what failed, the entries stay pending
  // as they are and come back after CLAIM_IDLE_MS.
  outcome.commit = await stream.group(group).commit([], {
    hashWrites: [[stallKey(config.streamKey), group, JSON.stringify(stall)]],
    retry,
    fence: { key: lease.key, token: lease.token },
  }).catch(() => ({ status: "ok" as const }));
  return outcome;
}

function emptyResult(start: Pick<DrainResult, "group" | "consumer" | "budgetMs">): DrainResult {
  const { group, consumer, budgetMs } = start;
  return {
    group,
    consumer,
    read: 0,
    acked: 0,
    failed: 0,
    deferred: 0,
    claimed: 0,
    deadLettered: 0,
    alerts: 0,
    lag: null,
    more: false,
    budgetMs,
    durationMs: 0,
    busy: false,
    stalled: null,
  };
}

/** Waits `ms`, or less when `signal` aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Lease time: renewed every chunk, and gone before a dead holder's entries become claimable. */
export function leaseTtlMs(config: Config): number {
  return Math.max(500, Math.min(30000, config.claimIdleMs));
}

/**
 * Drains one group: under the group's lease, first takes over entries that
 * dead invocations left pending longer than CLAIM_IDLE_MS (oldest first, and
 * only while the oldest pending entry is claimable, so order holds), then
 * reads new ones, chunk by chunk, until the group is caught up, an entry
 * must wait for its retry, the budget is spent, or `maxChunks` is reached.
 *
 * @example
 * ```ts
 * const result = await drainGroup(deps, priceAlerts, { budgetMs: 5000 });
 * result.acked;
 * ```
 */
export async function drainGroup(
  deps: DrainDeps,
  processor: Processor,
  options: DrainOptions = {},
): Promise<DrainResult> {
  const { config, now } = deps;
  const {
    count = 100,
    budgetMs = config.drainBudgetMs,
    maxChunks = Infinity,
    consumer = consumerName("drain", { deploymentId: config.deploymentId }),
    signal,
  } = options;
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw new RangeError(
      `Cannot drain as 'count' must be an integer from 1 to 1000: current value is ${count}`,
    );
  }
  if (!Number.isFinite(budgetMs) || budgetMs < 0 || budgetMs > 55000) {
    throw new RangeError(
      `Cannot drain as 'budgetMs' must be from 0 to 55000: current value is ${budgetMs}`,
    );
  }
  if (maxChunks !== Infinity && (!Number.isInteger(maxChunks) || maxChunks < 1)) {
    throw new RangeError(
      `Cannot drain as 'maxChunks' must be an integer >= 1 or Infinity: current value is ${maxChunks}`,
    );
  }
  const started = now();
  const redis = deps.redis();
  const run: DrainSettings = {
    redis,
    processor,
    started,
    count,
    budgetMs,
    maxChunks,
    consumer,
    signal,
  };
  try {
    return await drainLeased(deps, run);
  } catch (error) {
    if (!isMissingGroupError(error)) throw error;
    // Redis lost the group (FLUSHALL, a restart without persistence, a
    // failover to an empty replica, XGROUP DESTROY): recreate it and retry
    // once, within the same budget.
    await recoverGroup({ config, redis }, { group: processor.group, error });
    return await drainLeased(deps, run);
  }
}

/** One drain's fixed inputs, shared by its first attempt and the retry after a lost group. */
interface DrainSettings {
  /** The one client of this drain. */
  redis: Redis;
  /** The group's processor. */
  processor: Processor;
  /** When the drain started, in ms since the epoch. */
  started: number;
  /** Most entries per chunk. */
  count: number;
  /** Time budget in ms. */
  budgetMs: number;
  /** Most chunks to process. */
  maxChunks: number;
  /** Consumer name. */
  consumer: string;
  /** Stops the drain before its next chunk. */
  signal: AbortSignal | undefined;
}

/** Drains under the group's lease: the body of {@linkcode drainGroup}. */
async function drainLeased(deps: DrainDeps, run: DrainSettings): Promise<DrainResult> {
  const { config, now } = deps;
  const { redis, processor, started, count, budgetMs, maxChunks, consumer, signal } = run;
  const group = processor.group;
  const result = emptyResult({ group, consumer, budgetMs });
  const stream = openStream(redis, config.streamKey);
  await ensureGroups({ config, redis: () => redis }, [group]);
  const ttlMs = leaseTtlMs(config);
  const lease = await acquireLease(redis, leaseKey(config.streamKey, group), { ttlMs });
  if (lease === null) {
    result.busy = true;
    await finish({ stream, now, started }, result);
    return result;
  }
  const ctx: ChunkContext = { config, stream, processor, now, lease };
  let waiting = false;
  try {
    let chunks = 0;
    let slowestChunk = 0;
    let first = true;
    while (chunks < maxChunks) {
      if (signal?.aborted) break;
      const elapsed = now() - started;
      if (chunks > 0 && elapsed + slowestChunk > budgetMs) break;
      const chunkStart = now();
      if (!first && !(await renewLease(redis, lease, { ttlMs }))) break;
      first = false;
      const chunk = await nextChunk(ctx, { consumer, count });
      waiting = chunk.waiting;
      if (chunk.items.length === 0) {
        // The oldest pending entry is due for its retry (or claimable from a
        // dead consumer) soon: wait for it while the budget allows, since
        // newer entries must not overtake it.
        const wait = chunk.retryInMs;
        if (wait === undefined || now() - started + wait + slowestChunk > budgetMs) break;
        await sleep(Math.min(wait, ttlMs / 2) + 1, signal);
        continue;
      }
      result.read += chunk.items.length;
      result.claimed += chunk.claimed;
      const outcome = await processChunk(ctx, chunk.items);
      if (outcome.stalled !== undefined) {
        result.stalled = outcome.stalled;
        result.deferred += outcome.deferred;
        waiting = true;
        break;
      }
      if (outcome.commit.status !== "ok") {
        // Lost the lease (fenced) or raced a commit: nothing of this chunk was
        // written, the entries stay pending and the next holder retries them.
        result.failed += chunk.items.length;
        waiting = true;
        break;
      }
      result.acked += outcome.acked;
      result.failed += outcome.failed;
      result.deferred += outcome.deferred;
      result.deadLettered += outcome.deadLettered;
      result.alerts += outcome.alerts;
      chunks += 1;
      slowestChunk = Math.max(slowestChunk, now() - chunkStart);
      waiting = outcome.failed > 0 || outcome.deferred > 0;
    }
    await stream.group(group).deleteIdleConsumers(config.consumerIdleMs, { keep: consumer });
    // Trim in bounded steps and only while the budget lasts (one step always
    // runs); emits and later drains trim the rest.
    let toTrim = Math.max(1000, result.acked * 2);
    do {
      const step = Math.min(TRIM_STEP, toTrim);
      const removed = await stream.trim(config.streamMaxlen, { limit: step });
      toTrim -= step;
      if (removed < step) break;
    } while (toTrim > 0 && now() - started < budgetMs);
  } finally {
    await releaseLease(redis, lease).catch(() => false);
  }
  await finish({ stream, now, started }, result);
  result.more = result.more || waiting;
  return result;
}

/** What the last step of a drain needs. */
interface DrainRun {
  /** The quote stream, on the drain's client. */
  stream: Stream;
  /** Clock in ms since the epoch. */
  now: () => number;
  /** When the drain started. */
  started: number;
}

/** Fills in the group's lag, whether more is waiting, and the time spent. */
async function finish(run: DrainRun, result: DrainResult): Promise<void> {
  const info = (await run.stream.groups()).find((g) => g.name === result.group);
  result.lag = info?.lag ?? null;
  let behind = (info?.lag ?? 0) > 0;
  if (info !== undefined && info.lag === null) {
    // Redis cannot tell the lag (an entry was deleted): compare positions instead.
    const last = (await run.stream.info())?.lastGeneratedId ?? "0-0";
    behind = compareIds(info.lastDeliveredId, last) < 0;
  }
  result.more = behind || (info?.pending ?? 0) > 0;
  result.durationMs = run.now() - run.started;
}

/** Who reads the next chunk, and at most how many entries. */
interface ChunkRequest {
  /** Consumer that reads or claims. */
  consumer: string;
  /** Most entries in the chunk. */
  count: number;
}

/**
 * Picks the next chunk: pending entries first, in id order, as long as the
 * oldest is claimable (idle >= CLAIM_IDLE_MS); new entries only when nothing
 * is pending, since reading past a pending entry would break symbol order.
 */
/** What {@linkcode nextChunk} found. */
interface NextChunk {
  /** Entries to process, in id order. */
  items: Delivered[];
  /** How many of them were taken over from other consumers. */
  claimed: number;
  /** True when pending entries wait for their retry (or the lease was lost). */
  waiting: boolean;
  /** When the oldest pending entry is not claimable yet: ms until it is. */
  retryInMs?: number;
}

async function nextChunk(
  ctx: ChunkContext,
  request: ChunkRequest,
): Promise<NextChunk> {
  const { config, stream, processor, lease } = ctx;
  const { consumer, count } = request;
  const group = stream.group(processor.group);
  // Reads and claims are fenced like commits: a holder whose lease expired
  // between two commands must not take entries ahead of the new holder.
  const fence = { key: lease.key, token: lease.token };
  const pending = await group.pendingEntries({ count });
  if (pending.length > 0) {
    let claimable = 0;
    while (claimable < pending.length && pending[claimable].idleMs >= config.claimIdleMs) {
      claimable += 1;
    }
    if (claimable === 0) {
      return {
        items: [],
        claimed: 0,
        waiting: true,
        retryInMs: config.claimIdleMs - pending[0].idleMs,
      };
    }
    const deliveries = new Map(pending.map((p) => [p.id, p.deliveries + 1]));
    const claimed = await group.readFenced(consumer, fence, {
      count: claimable,
      claim: { minIdleMs: config.claimIdleMs, start: pending[0].id },
    });
    if (claimed.status === "fenced") return { items: [], claimed: 0, waiting: true };
    const items = claimed.entries.map((entry) => ({
      entry,
      deliveries: deliveries.get(entry.id) ?? config.maxDeliveries,
    }));
    return { items, claimed: items.length, waiting: claimed.entries.length < pending.length };
  }
  const read = await group.readFenced(consumer, fence, { count });
  if (read.status === "fenced") return { items: [], claimed: 0, waiting: true };
  const items = read.entries.map((entry) => ({ entry, deliveries: 1 }));
  return { items, claimed: 0, waiting: false };
}

/** Result of {@linkcode replayDeadLetters}. */
export interface ReplayResult {
  /** Group replayed. */
  group: string;
  /** Dead letters attempted. */
  attempted: number;
  /** Dead letters whose handler succeeded; they left the dead-letter stream. */
  succeeded: number;
  /** Dead letters that failed again; they stay with their new error. */
  failed: number;
  /** True when another invocation held the group's lease, so nothing was done. */
  busy: boolean;
  /** Set when a dependency failed: the remaining dead letters were left as they are. */
  stalled: StalledDrain | null;
}

/** A dead letter as listed by the API. */
export interface DeadLetter {
  /** Id of the dead-letter entry. */
  id: string;
  /** Group whose handler gave up on it. */
  group: string;
  /** Id of the original entry in the quote stream. */
  sourceId: string;
  /** Original fields. */
  fields: Record<string, string>;
  /** Deliveries before it was dead-lettered. */
  deliveries: number;
  /** Last error. */
  error: string;
  /** When it was dead-lettered. */
  datetime: string;
}

/** Most dead letters one replay handles. */
export const MAX_REPLAY = 1000;

/** Parses a dead-letter stream entry. */
export function parseDeadLetter(entry: StreamEntry): DeadLetter {
  const r = fieldsToRecord(entry.fields);
  let fields: Record<string, string> = {};
  try {
    fields = JSON.parse(r.fields ?? "{}");
  } catch {
    fields = {};
  }
  return {
    id: entry.id,
    group: r.group ?? "",
    sourceId: r.source_id ?? "",
    fields,
    deliveries: Number(r.deliveries ?? 0),
    error: r.error ?? "",
    datetime: r.datetime ?? "",
  };
}

const DEAD_LETTER_PAGE = 500;

/** Options of {@linkcode findDeadLetters}. */
export interface FindDeadLettersOptions {
  /**
   * Only the dead letters of this group; undefined finds every group's.
   * @default {undefined}
   */
  group?: string;
  /**
   * Most dead letters to return.
   * @default {100}
   */
  limit?: number;
  /**
   * Newest first instead of oldest first.
   * @default {false}
   */
  newestFirst?: boolean;
}

/**
 * Reads entries of the dead-letter stream `deadLetters`, page by page, keeping
 * those of the given group, until `limit` are found or the stream ends.
 *
 * @example
 * ```ts
 * const entries = await findDeadLetters(openStream(redis, config.deadLetterKey), {
 *   group: "price-alerts",
 *   limit: 10,
 * });
 * entries.map(parseDeadLetter);
 * ```
 */
export async function findDeadLetters(
  deadLetters: Stream,
  options: FindDeadLettersOptions = {},
): Promise<StreamEntry[]> {
  const { group, limit = 100, newestFirst = false } = options;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(
      `Cannot find dead letters as 'limit' must be an integer >= 1: current value is ${limit}`,
    );
  }
  const found: StreamEntry[] = [];
  let cursor: string | undefined;
  while (found.length < limit) {
    const page = await deadLetters.range({
      reverse: newestFirst,
      count: DEAD_LETTER_PAGE,
      ...(cursor === undefined
        ? {}
        : newestFirst
        ? { end: `(${cursor}` }
        : { start: `(${cursor}` }),
    });
    for (const entry of page) {
      if (group === undefined || parseDeadLetter(entry).group === group) found.push(entry);
      if (found.length >= limit) break;
    }
    if (page.length < DEAD_LETTER_PAGE) break;
    cursor = page[page.length - 1].id;
  }
  return found;
}

/** Options of {@linkcode replayDeadLetters}. */
export interface ReplayOptions {
  /**
   * Dead letters to replay, as entries of the dead-letter stream.
   * @default {the group's dead letters, oldest first, at most MAX_REPLAY}
   */
  entries?: StreamEntry[];
}

/**
 * Runs a group's handler again on its dead letters (all, or the given
 * entries) with the same atomic commit as a drain: a success leaves the
 * dead-letter stream, a failure stays with its new error. The quote is not
 * re-added to the main stream, since the other groups already processed it.
 *
 * @example
 * ```ts
 * const result = await replayDeadLetters(deps, priceAlerts, { entries });
 * ```
 */
export async function replayDeadLetters(
  deps: DrainDeps,
  processor: Processor,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const { config, now } = deps;
  const group = processor.group;
  const redis = deps.redis();
  const entries = options.entries ??
    await findDeadLetters(openStream(redis, config.deadLetterKey), {
      group,
      limit: MAX_REPLAY,
    });
  const result: ReplayResult = {
    group,
    attempted: 0,
    succeeded: 0,
    failed: 0,
    busy: false,
    stalled: null,
  };
  const lease = await acquireLease(redis, leaseKey(config.streamKey, group), {
    ttlMs: leaseTtlMs(config),
  });
  if (lease === null) return { ...result, busy: true };
  const ctx: ChunkContext = {
    config,
    stream: openStream(redis, config.streamKey),
    processor,
    now,
    lease,
    deadSource: config.deadLetterKey,
  };
  try {
    for (let i = 0; i < entries.length; i += 100) {
      const slice = entries.slice(i, i + 100);
      // Each dead letter is replayed as its original quote, keyed by its
      // dead-letter id, which is what the commit deletes.
      const chunk: Delivered[] = slice.map((e) => {
        const letter = parseDeadLetter(e);
        const fields = Object.entries(letter.fields).flat();
        return {
          entry: { id: e.id, fields },
          deliveries: letter.deliveries + 1,
          sourceId: letter.sourceId,
        };
      });
      const outcome = await processChunk(ctx, chunk);
      if (outcome.stalled !== undefined) {
        result.stalled = outcome.stalled;
        break;
      }
      if (outcome.commit.status !== "ok") break;
      result.attempted += chunk.length;
      result.succeeded += outcome.acked - outcome.deadLettered;
      result.failed += outcome.deadLettered;
    }
  } finally {
    await releaseLease(redis, lease).catch(() => false);
  }
  return result;
}
