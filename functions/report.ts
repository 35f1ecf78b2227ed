/**
 * Function `GET /report`: the queue's health for operators: stream and group
 * figures, dead letters, consumers and warnings. Its cost does not grow with
 * the stream's length: no XINFO STREAM FULL and no scans.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { isMissingGroupError, readStalls, type Stall } from "../shared/queue/mod.ts";
import { stockKeys } from "../shared/stock_queue.ts";
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

/** Builds the report; remembers each group's lag to detect lag growing across reports. */
export async function buildReport(deps: Deps): Promise<Report> {
  const { config } = deps;
  const redis = deps.redis();
  const keys = stockKeys(config);
  const stream = openStream(redis, keys.stream);
  const [info, groups, alertsLength, deadLength, deadCounts, stalls] = await Promise.all([
    stream.info(),
    stream.groups(),
    openStream(redis, keys.alerts).length(),
    openStream(redis, keys.deadLetters).length(),
    redis.hgetall(keys.deadCount),
    readStalls(redis, keys.stalled),
  ]);
  const historyKey = keys.reportLag;
  const history = groups.length > 0
    ? await redis.hmget(historyKey, ...groups.map((g) => g.name))
    : [];
  const warnings: string[] = [];
  const stuckAfterMs = config.claimIdleMs * config.maxDeliveries;
  const reports = await Promise.all(groups.map(async function groupReport(g, i) {
    const group = stream.group(g.name);
    // A group destroyed between XINFO GROUPS and these reads is reported as it was.
    const [consumerDetails, oldest] = await Promise.all([
      group.consumers().catch(ignoreMissingGroup([])),
      g.pending > 0 ? group.pendingEntries({ count: 1 }).catch(ignoreMissingGroup([])) : [],
    ]);
    const stall = stalls.get(g.name) ?? null;
    if (stall !== null) {
      warnings.push(
        `Group "${g.name}" is stalled since ${stall.since}: its dependency ${stall.dependency} fails (${stall.error}); its entries stay pending and drains retry after ${stall.retryAt}`,
      );
    }
    const oldestPendingMs = oldest[0]?.idleMs ?? null;
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
    if (g.lag !== null && g.lag > config.maxLag) {
      warnings.push(
        `Backpressure: group "${g.name}" lags ${g.lag} entries, more than MAX_LAG ${config.maxLag}; emits answer 429`,
      );
    }
    return {
      report: {
        name: g.name,
        consumers: g.consumers,
        consumerDetails,
        pending: g.pending,
        lag: g.lag,
        lastDeliveredId: g.lastDeliveredId,
        deadLetters: Number(deadCounts[g.name] ?? 0),
        oldestPendingMs,
        status: stall === null ? "ok" as const : "stalled" as const,
        stall,
      },
      lags: recent,
    };
  }));
  if (reports.length > 0) {
    // Best effort: a full Redis refuses the write, and the report must still answer.
    await redis.hset(
      historyKey,
      Object.fromEntries(reports.map((r) => [r.report.name, JSON.stringify(r.lags)])),
    ).catch(() => 0);
  }
  const missingGroups = GROUP_NAMES.filter((name) => !groups.some((g) => g.name === name));
  for (const name of missingGroups) {
    warnings.push(
      info === null
        ? `Group "${name}" does not exist and neither does the stream "${config.streamKey}": a fresh Redis, or one that lost its data; the next emit or drain creates it at 0`
        : `Group "${name}" is missing from the stream "${config.streamKey}": Redis lost it (FLUSHALL, restart without persistence, failover to an empty replica) or it was destroyed; the next emit or drain recreates it at 0 and it processes the ${info.length} entries the stream holds`,
    );
  }
  return {
    stream: {
      key: config.streamKey,
      length: info?.length ?? 0,
      firstId: info?.firstId ?? null,
      lastId: info && info.lastGeneratedId !== "0-0" ? info.lastGeneratedId : null,
      entriesAdded: info?.entriesAdded ?? null,
    },
    groups: reports.map((r) => r.report),
    missingGroups,
    alerts: { key: keys.alerts, length: alertsLength },
    deadLetters: { key: keys.deadLetters, length: deadLength },
    backpressure: groups.some((g) => (g.lag ?? 0) > config.maxLag),
    warnings,
  };
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
