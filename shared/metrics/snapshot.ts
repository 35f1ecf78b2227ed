/**
 * What a scrape reads from Redis: every group's figures, the streams'
 * lengths and the counter hash, in one pipelined round trip, so a scrape
 * costs one network wait however many groups there are, and its cost does
 * not grow with the streams' lengths (no XINFO STREAM FULL, no scans).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { StockKeys } from "../stock_queue.ts";
import { GROUP_NAMES } from "../groups/registry.ts";
import { isRedisUnavailable } from "../redis.ts";
import { type Counters, mergeCounters, parseCounters } from "./counters.ts";

/** One registered group as a scrape sees it. */
export interface GroupSnapshot {
  /** Group name. */
  name: string;
  /** False when the group is missing from the stream (lost with Redis' data, or not created yet). */
  exists: boolean;
  /** Entries not yet delivered to the group, or null when Redis cannot tell. */
  lag: number | null;
  /** Entries delivered and not acknowledged. */
  pending: number;
  /** Consumers of the group. */
  consumers: number;
  /** Idle time of the oldest pending entry in ms, 0 when nothing is pending. */
  oldestPendingIdleMs: number;
  /** Dead letters of the group, from the dead-letter count hash. */
  deadLetters: number;
}

/** Everything one scrape shows from Redis. */
export interface QueueSnapshot {
  /** Every registered group, in drain order. */
  groups: GroupSnapshot[];
  /** Stream lengths by stream role. */
  streams: { quotes: number; alerts: number; dead_letters: number };
  /** The counter hash, parsed. */
  counters: Counters;
  /** Each partition's groups, with more than one partition only. */
  partitions?: PartitionSnapshot[];
}

/** One partition's groups in a snapshot. */
export interface PartitionSnapshot {
  /** Partition index. */
  partition: number;
  /** Its groups, in drain order. */
  groups: GroupSnapshot[];
}

/** Options of {@linkcode readQueueSnapshot}. */
export interface SnapshotOptions {
  /**
   * Groups to report.
   * @default {GROUP_NAMES}
   */
  groups?: readonly string[];
}

/** The keys a snapshot reads. */
export type SnapshotKeys = Pick<
  StockKeys,
  "stream" | "alerts" | "deadLetters" | "deadCount" | "counters"
>;

/** Raised when Redis refuses one of a scrape's reads; `cause` is Redis' error. */
export class SnapshotReadError extends Error {
  /** Creates the error; `cause` is the failed command's error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SnapshotReadError";
  }
}

function isMissingKey(error: Error): boolean {
  return /no such key|NOGROUP/i.test(error.message);
}

function flatToRecord(flat: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

function numberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * Reads the snapshot in one pipelined round trip: XINFO GROUPS, three XLENs,
 * the dead-letter count hash, the counter hash and one `XPENDING - + 1` per
 * group. A missing stream or group reads as empty; a Redis problem (down,
 * NOAUTH, busy) is rethrown as is, so the shared error handler answers 503;
 * any other refusal (WRONGTYPE on a key) is a {@linkcode SnapshotReadError}.
 *
 * @example
 * ```ts
 * import type { Redis } from "ioredis";
 * import { loadConfig } from "../config.ts";
 * import { stockKeys } from "../stock_queue.ts";
 * declare const redis: Redis;
 * const snapshot = await readQueueSnapshot(redis, stockKeys(loadConfig()));
 * snapshot.groups.map((g) => [g.name, g.lag]);
 * ```
 */
export async function readQueueSnapshot(
  redis: Redis,
  keys: SnapshotKeys,
  options: SnapshotOptions = {},
): Promise<QueueSnapshot> {
  const { groups = GROUP_NAMES } = options;
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string" || g === "")) {
    throw new RangeError(
      `Cannot read the queue snapshot as 'groups' must be non-empty names: current value is ${
        JSON.stringify(groups)
      }`,
    );
  }
  const pipeline = redis.pipeline()
    .xinfo("GROUPS", keys.stream)
    .xlen(keys.stream)
    .xlen(keys.alerts)
    .xlen(keys.deadLetters)
    .hgetall(keys.deadCount)
    .hgetall(keys.counters);
  for (const group of groups) pipeline.xpending(keys.stream, group, "-", "+", 1);
  const replies = await pipeline.exec();
  if (replies === null) throw new SnapshotReadError("Cannot read the queue snapshot: no reply");
  const values = replies.map(function valueOf([error, value], i) {
    if (error === null) return value;
    if (isMissingKey(error)) return undefined;
    // Kept as is, so the shared error handler names the problem and answers 503.
    if (isRedisUnavailable(error)) throw error;
    throw new SnapshotReadError(
      `Cannot read the queue snapshot as command ${i + 1} of the scrape failed: ${error.message}`,
      { cause: error },
    );
  });
  const [groupsReply, quotes, alerts, dead, deadCounts, counters] = values;
  const pendings = values.slice(6);
  const infos = new Map<string, Record<string, unknown>>();
  for (const flat of Array.isArray(groupsReply) ? groupsReply : []) {
    const record = flatToRecord(flat);
    infos.set(String(record.name), record);
  }
  const deadByGroup = (deadCounts ?? {}) as Record<string, string>;
  return {
    groups: groups.map(function groupSnapshot(name, i) {
      const info = infos.get(name);
      const oldest = pendings[i];
      const first = Array.isArray(oldest) && Array.isArray(oldest[0]) ? oldest[0] : undefined;
      return {
        name,
        exists: info !== undefined,
        lag: info === undefined ? null : numberOrNull(info.lag),
        pending: Number(info?.pending ?? 0),
        consumers: Number(info?.consumers ?? 0),
        oldestPendingIdleMs: first === undefined ? 0 : Number(first[2]),
        deadLetters: Number(deadByGroup[name] ?? 0),
      };
    }),
    streams: {
      quotes: Number(quotes ?? 0),
      alerts: Number(alerts ?? 0),
      dead_letters: Number(dead ?? 0),
    },
    counters: parseCounters((counters ?? {}) as Record<string, string>),
  };
}

/**
 * The snapshot of every partition, read in one pipeline each (each
 * partition's keys share one slot, so this works on Redis Cluster), merged:
 * sums per group, the oldest pending entry and the most consumers of any.
 *
 * @example
 * ```ts
 * import type { Redis } from "ioredis";
 * import { loadConfig } from "../config.ts";
 * import { allStockKeys } from "../stock_queue.ts";
 * declare const redis: Redis;
 * const snapshot = await readPartitionedSnapshot(redis, allStockKeys(loadConfig()));
 * ```
 */
export async function readPartitionedSnapshot(
  redis: Redis,
  keys: readonly SnapshotKeys[],
  options: SnapshotOptions = {},
): Promise<QueueSnapshot> {
  const all = await Promise.all(keys.map((k) => readQueueSnapshot(redis, k, options)));
  if (all.length === 1) return all[0];
  const sum = (pick: (s: QueueSnapshot) => number) => all.reduce((n, s) => n + pick(s), 0);
  return {
    groups: all[0].groups.map(function mergeGroup(first, i) {
      const parts = all.map((s) => s.groups[i]);
      const lags = parts.map((g) => g.lag);
      return {
        name: first.name,
        exists: parts.every((g) => g.exists),
        lag: lags.some((l) => l === null) ? null : lags.reduce((n, l) => n! + l!, 0),
        pending: parts.reduce((n, g) => n + g.pending, 0),
        consumers: Math.max(...parts.map((g) => g.consumers)),
        oldestPendingIdleMs: Math.max(...parts.map((g) => g.oldestPendingIdleMs)),
        deadLetters: parts.reduce((n, g) => n + g.deadLetters, 0),
      };
    }),
    streams: {
      quotes: sum((s) => s.streams.quotes),
      alerts: sum((s) => s.streams.alerts),
      dead_letters: sum((s) => s.streams.dead_letters),
    },
    counters: mergeCounters(all.map((s) => s.counters)),
    partitions: all.map((s, partition) => ({ partition, groups: s.groups })),
  };
}
