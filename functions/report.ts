/**
 * Function `GET /report`: the queue's health for operators: stream and group
 * figures, dead letters, consumers and warnings. Its cost does not grow with
 * the stream's length: no XINFO STREAM FULL and no scans.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import {
  compareIds,
  type GroupInfo,
  isMissingGroupError,
  readStalls,
  type Stall,
  type StreamInfo,
} from "../shared/queue/mod.ts";
import { partitionIndexes } from "../shared/partitions.ts";
import { type StockKeys, stockKeys } from "../shared/stock_queue.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { defaultDeps, type Deps, installErrorHandling, requireToken } from "../shared/http.ts";
import { type ConsumerInfo, openStream } from "../shared/queue/mod.ts";

/** One group in the report. */
export interface GroupReport {
  /** Group name. */
  name: string;
  /** Number of consumers. */
  consumers: number;
  /** Consumers with their pending counts and idle times. */
  consumerDetails: ConsumerInfo[];
  /** Entries delivered and not acknowledged. */
  pending: number;
  /** Entries not yet delivered, or null when Redis cannot tell. */
  lag: number | null;
  /** Last id delivered to the group. */
  lastDeliveredId: string;
  /** Entries of this group in the dead-letter stream. */
  deadLetters: number;
  /** Idle time of the oldest pending entry, or null when nothing is pending. */
  oldestPendingMs: number | null;
  /** "ok", or "stalled" while a dependency of the group fails. */
  status: "ok" | "stalled";
  /** Why the group is stalled, or null. */
  stall: Stall | null;
  /** Each partition of the group, with STREAM_PARTITIONS > 1 only. */
  partitions?: {
    partition: number;
    consumers: number;
    pending: number;
    lag: number | null;
    lastDeliveredId: string;
    deadLetters: number;
    oldestPendingMs: number | null;
    status: "ok" | "stalled";
  }[];
}

/** The whole report. */
export interface Report {
  /** Quote stream figures. */
  stream: {
    key: string;
    length: number;
    firstId: string | null;
    lastId: string | null;
    entriesAdded: number | null;
    partitions?: { partition: number; key: string; length: number; lastId: string | null }[];
  };
  /** Every group on the stream. */
  groups: GroupReport[];
  /** Registered groups that do not exist in Redis (lost with its data, or never created). */
  missingGroups: string[];
  /** Alerts stream figures. */
  alerts: { key: string; length: number };
  /** Dead-letter stream figures. */
  deadLetters: { key: string; length: number };
  /** True while emits are refused because a group lags more than MAX_LAG. */
  backpressure: boolean;
  /** Human-readable warnings. */
  warnings: string[];
}

/** A catch handler that turns NOGROUP into `fallback` and rethrows anything else. */
function ignoreMissingGroup<T>(fallback: T): (error: unknown) => T {
  return function missingGroupFallback(error: unknown): T {
    if (isMissingGroupError(error)) return fallback;
    throw error;
  };
}

/** Readings of lag kept per group to tell a stuck group. */
const LAG_HISTORY = 3;

/** What one partition holds of the queue, read at once. */
interface PartitionReading {
  partition: number;
  keys: StockKeys;
  info: StreamInfo | null;
  groups: GroupInfo[];
  alertsLength: number;
  deadLength: number;
  deadCounts: Record<string, string>;
  stalls: Map<string, Stall>;
  consumers: Map<string, ConsumerInfo[]>;
  oldest: Map<string, number | null>;
}

async function readPartition(deps: Deps, partition: number): Promise<PartitionReading> {
  const redis = deps.redis();
  const keys = stockKeys(deps.config, partition);
  const stream = openStream(redis, keys.stream);
  const [info, groups, alertsLength, deadLength, deadCounts, stalls] = await Promise.all([
    stream.info(),
    stream.groups(),
    openStream(redis, keys.alerts).length(),
    openStream(redis, keys.deadLetters).length(),
    redis.hgetall(keys.deadCount),
    readStalls(redis, keys.stalled),
  ]);
  const consumers = new Map<string, ConsumerInfo[]>();
  const oldest = new Map<string, number | null>();
  await Promise.all(groups.map(async function groupDetails(g) {
    const group = stream.group(g.name);
    // A group destroyed between XINFO GROUPS and these reads is reported as it was.
    const [details, first] = await Promise.all([
      group.consumers().catch(ignoreMissingGroup([])),
      g.pending > 0 ? group.pendingEntries({ count: 1 }).catch(ignoreMissingGroup([])) : [],
    ]);
    consumers.set(g.name, details);
    oldest.set(g.name, first[0]?.idleMs ?? null);
  }));
  return {
    partition,
    keys,
    info,
    groups,
    alertsLength,
    deadLength,
    deadCounts,
    stalls,
    consumers,
    oldest,
  };
}

/** A group over every partition that has it: sums, the worst oldest entry, the first stall. */
function mergeGroup(name: string, readings: PartitionReading[]): GroupReport {
  const parts = readings.flatMap((r) => {
    const g = r.groups.find((info) => info.name === name);
    return g === undefined ? [] : [{ r, g }];
  });
  const details = new Map<string, ConsumerInfo>();
  for (const { r } of parts) {
    for (const c of r.consumers.get(name) ?? []) {
      const seen = details.get(c.name);
      details.set(c.name, {
        name: c.name,
        pending: (seen?.pending ?? 0) + c.pending,
        idleMs: Math.min(seen?.idleMs ?? Infinity, c.idleMs),
      });
    }
  }
  const oldests = parts.map(({ r }) => r.oldest.get(name) ?? null).filter((o) => o !== null);
  const stall = parts.map(({ r }) => r.stalls.get(name)).find((st) => st !== undefined) ?? null;
  const lags = parts.map(({ g }) => g.lag);
  const report: GroupReport = {
    name,
    consumers: details.size,
    consumerDetails: [...details.values()],
    pending: parts.reduce((n, { g }) => n + g.pending, 0),
    lag: lags.some((l) => l === null) ? null : lags.reduce((n, l) => n! + l!, 0),
    lastDeliveredId: parts.map(({ g }) => g.lastDeliveredId).sort(compareIds).at(-1) ?? "0-0",
    deadLetters: parts.reduce((n, { r }) => n + Number(r.deadCounts[name] ?? 0), 0),
    oldestPendingMs: oldests.length === 0 ? null : Math.max(...(oldests as number[])),
    status: stall === null ? "ok" : "stalled",
    stall,
  };
  if (readings.length > 1) {
    report.partitions = parts.map(({ r, g }) => ({
      partition: r.partition,
      consumers: g.consumers,
      pending: g.pending,
      lag: g.lag,
      lastDeliveredId: g.lastDeliveredId,
      deadLetters: Number(r.deadCounts[name] ?? 0),
      oldestPendingMs: r.oldest.get(name) ?? null,
      status: r.stalls.has(name) ? "stalled" : "ok",
    }));
  }
  return report;
}

/** Builds the report over every partition; remembers each group's lag to detect it growing. */
export async function buildReport(deps: Deps): Promise<Report> {
  const { config } = deps;
  const redis = deps.redis();
  const readings = await Promise.all(partitionIndexes(config).map((p) => readPartition(deps, p)));
  const names = [...new Set(readings.flatMap((r) => r.groups.map((g) => g.name)))];
  const groups = names.map((name) => mergeGroup(name, readings));
  const historyKey = readings[0].keys.reportLag;
  const history = groups.length > 0 ? await redis.hmget(historyKey, ...names) : [];
  const warnings: string[] = [];
  const stuckAfterMs = config.claimIdleMs * config.maxDeliveries;
  const recentLags = groups.map(function warn(g, i) {
    const { stall, oldestPendingMs } = g;
    if (stall !== null) {
      warnings.push(
        `Group "${g.name}" is stalled since ${stall.since}: its dependency ${stall.dependency} fails (${stall.error}); its entries stay pending and drains retry after ${stall.retryAt}`,
      );
    }
    if (g.pending > config.pendingWarn) {
      warnings.push(
        `Group "${g.name}" has ${g.pending} pending entries: more than PENDING_WARN ${config.pendingWarn}`,
      );
    }
    if (oldestPendingMs !== null && oldestPendingMs > stuckAfterMs) {
      warnings.push(
        `Group "${g.name}" looks stuck: its oldest pending entry has waited ${oldestPendingMs} ms, more than CLAIM_IDLE_MS x MAX_DELIVERIES = ${stuckAfterMs} ms`,
      );
    }
    const lags: number[] = JSON.parse(history[i] ?? "[]");
    if (g.lag !== null) lags.push(g.lag);
    const recent = lags.slice(-LAG_HISTORY);
    if (
      recent.length === LAG_HISTORY && recent.every((lag, k) => k === 0 || lag > recent[k - 1])
    ) {
      warnings.push(
        `Group "${g.name}" looks stuck: its lag grew across the last ${LAG_HISTORY} reports (${
          recent.join(" -> ")
        })`,
      );
    }
    if (worstLag(g) > config.maxLag) {
      warnings.push(
        `Backpressure: group "${g.name}" lags ${
          worstLag(g)
        } entries, more than MAX_LAG ${config.maxLag}; emits answer 429`,
      );
    }
    return recent;
  });
  if (groups.length > 0) {
    // Best effort: a full Redis refuses the write, and the report must still answer.
    await redis.hset(
      historyKey,
      Object.fromEntries(groups.map((g, i) => [g.name, JSON.stringify(recentLags[i])])),
    ).catch(() => 0);
  }
  const infos = readings.map((r) => r.info).filter((info) => info !== null);
  const length = infos.reduce((n, info) => n + info.length, 0);
  const missingGroups = GROUP_NAMES.filter((name) =>
    readings.some((r) => !r.groups.some((g) => g.name === name))
  );
  for (const name of missingGroups) {
    warnings.push(
      infos.length === 0
        ? `Group "${name}" does not exist and neither does the stream "${config.streamKey}": a fresh Redis, or one that lost its data; the next emit or drain creates it at 0`
        : `Group "${name}" is missing from the stream "${config.streamKey}": Redis lost it (FLUSHALL, restart without persistence, failover to an empty replica) or it was destroyed; the next emit or drain recreates it at 0 and it processes the ${length} entries the stream holds`,
    );
  }
  const firstIds = infos.flatMap((i) => i.firstId === null ? [] : [i.firstId]).sort(compareIds);
  const lastIds = infos.map((i) => i.lastGeneratedId).filter((id) => id !== "0-0").sort(compareIds);
  const added = infos.map((i) => i.entriesAdded);
  const single = readings.length === 1;
  return {
    stream: {
      key: single ? readings[0].keys.stream : config.streamKey,
      length,
      firstId: firstIds[0] ?? null,
      lastId: lastIds.at(-1) ?? null,
      entriesAdded: infos.length === 0 || added.some((a) => a === null)
        ? null
        : added.reduce((n, a) => n! + a!, 0),
      ...(single ? {} : {
        partitions: readings.map((r) => ({
          partition: r.partition,
          key: r.keys.stream,
          length: r.info?.length ?? 0,
          lastId: r.info && r.info.lastGeneratedId !== "0-0" ? r.info.lastGeneratedId : null,
        })),
      }),
    },
    groups,
    missingGroups,
    alerts: {
      key: single ? readings[0].keys.alerts : config.alertsKey,
      length: readings.reduce((n, r) => n + r.alertsLength, 0),
    },
    deadLetters: {
      key: single ? readings[0].keys.deadLetters : config.deadLetterKey,
      length: readings.reduce((n, r) => n + r.deadLength, 0),
    },
    backpressure: groups.some((g) => worstLag(g) > config.maxLag),
    warnings,
  };
}

/** The lag of a group's most lagging partition: what backpressure compares with MAX_LAG. */
function worstLag(group: GroupReport): number {
  if (group.partitions === undefined) return group.lag ?? 0;
  return Math.max(0, ...group.partitions.map((p) => p.lag ?? 0));
}

/** Builds the report function's app. */
export function createReportApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.get("/report", requireToken(deps.config), async function report(c) {
    return c.json(await buildReport(deps));
  });
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createReportApp(defaultDeps(config)).fetch);
}
