/**
 * Draining one group over its partitions: each partition has its own lease,
 * so concurrent invocations of one group take different partitions and drain
 * it N-wide, while each symbol (which lives in one partition) keeps its order
 * and its effects happen once. A drain takes the most lagging partitions first.
 *
 * @module
 */

import { handlerOf } from "./groups/context.ts";
import type { StockGroup } from "./groups/group.ts";
import type { Deps } from "./http.ts";
import { ensureLayout } from "./layout.ts";
import { partitionIndexes } from "./partitions.ts";
import { consumerName, drainGroup, type DrainResult, type StalledDrain } from "./queue/mod.ts";
import { stockQueue } from "./stock_queue.ts";

/** What one partition's drain did. */
export interface PartitionDrain extends DrainResult {
  /** Partition index. */
  partition: number;
}

/** One partition's line of a drain's answer. */
export interface PartitionSummary {
  /** Partition index. */
  partition: number;
  /** Entries read or reclaimed. */
  read: number;
  /** Entries acknowledged. */
  acked: number;
  /** Entries not yet delivered, or null when unknown. */
  lag: number | null;
  /** True when another invocation held this partition's lease. */
  busy: boolean;
}

/** What one drain of a group did, over the partitions it drained. */
export interface DrainResponse extends DrainResult {
  /** Alerts written (the engine's `outputs`). */
  alerts: number;
  /** Each partition drained, with STREAM_PARTITIONS > 1 only. */
  partitions?: PartitionSummary[];
}

/** Options of {@linkcode drainPartition} and {@linkcode drainPartitions}. */
export interface PartitionDrainOptions {
  /**
   * Most entries per chunk.
   * @default {100}
   */
  count?: number;
  /**
   * Time budget in ms; without it exactly one chunk is processed.
   * @default {undefined}
   */
  budgetMs?: number;
  /**
   * What triggered the drain, part of the consumer name.
   * @default {"http"}
   */
  trigger?: string;
  /**
   * Only this partition; undefined takes the most lagging ones first.
   * @default {undefined}
   */
  partition?: number;
}

/** Drains `group` in one partition. */
export async function drainPartition(
  deps: Deps,
  target: { group: StockGroup; partition: number } & PartitionDrainOptions,
): Promise<PartitionDrain> {
  const { group, partition, count = 100, budgetMs, trigger = "http" } = target;
  const queue = stockQueue(deps, partition);
  const result = await drainGroup(queue, handlerOf(deps, queue, group), {
    count,
    // Without a budget: exactly one chunk, and no waiting for a retry to come due.
    budgetMs: budgetMs ?? 0,
    maxChunks: budgetMs === undefined ? 1 : Infinity,
    consumer: consumerName(trigger, { deploymentId: deps.config.deploymentId }),
    signal: deps.signal,
  });
  return { ...result, partition };
}

/** The partitions of `group`, most lagging first (unknown lag counts as most). */
export async function partitionsByLag(deps: Deps, group: string): Promise<number[]> {
  const lags = await Promise.all(
    partitionIndexes(deps.config).map(async (partition) => {
      const info = (await stockQueue(deps, partition).stream.groups()).find((g) =>
        g.name === group
      );
      return { partition, lag: info === undefined ? Infinity : info.lag ?? Infinity };
    }),
  );
  return lags.sort((a, b) => b.lag - a.lag || a.partition - b.partition).map((l) => l.partition);
}

/** One answer for a group from the drains of its partitions. */
export function mergeDrains(
  config: Deps["config"],
  parts: PartitionDrain[],
  run: { group: string; budgetMs: number; durationMs: number },
): DrainResponse {
  if (config.streamPartitions === 1 && parts.length === 1) {
    const { partition: _partition, ...only } = parts[0];
    return { ...only, alerts: only.outputs };
  }
  const sum = (pick: (p: PartitionDrain) => number) => parts.reduce((n, p) => n + pick(p), 0);
  const stalled: StalledDrain | null = parts.find((p) => p.stalled !== null)?.stalled ?? null;
  const lags = parts.map((p) => p.lag);
  return {
    group: run.group,
    consumer: parts[0]?.consumer ?? "",
    read: sum((p) => p.read),
    acked: sum((p) => p.acked),
    failed: sum((p) => p.failed),
    deferred: sum((p) => p.deferred),
    claimed: sum((p) => p.claimed),
    deadLettered: sum((p) => p.deadLettered),
    outputs: sum((p) => p.outputs),
    alerts: sum((p) => p.outputs),
    lag: lags.some((l) => l === null) ? null : lags.reduce((n, l) => n! + l!, 0),
    more: parts.some((p) => p.more),
    budgetMs: run.budgetMs,
    durationMs: run.durationMs,
    busy: parts.length > 0 && parts.every((p) => p.busy),
    stalled,
    ...(parts.some((p) => p.unreplicated !== undefined)
      ? { unreplicated: sum((p) => p.unreplicated ?? 0) }
      : {}),
    partitions: parts
      .map(({ partition, read, acked, lag, busy }) => ({ partition, read, acked, lag, busy }))
      .sort((a, b) => a.partition - b.partition),
  };
}

/**
 * Drains `group` over the partitions it can lease within its budget, most
 * lagging first, or one partition when asked; without a budget, one chunk of
 * the first partition that has work and is free.
 *
 * @example
 * ```ts
 * import { priceAlerts } from "./groups/price_alerts.ts";
 * import type { Deps } from "./http.ts";
 * declare const deps: Deps;
 * const result = await drainPartitions(deps, priceAlerts, { budgetMs: 5000 });
 * result.partitions; // each partition drained, with STREAM_PARTITIONS > 1
 * ```
 */
export async function drainPartitions(
  deps: Deps,
  group: StockGroup,
  options: PartitionDrainOptions = {},
): Promise<DrainResponse> {
  const { budgetMs, partition } = options;
  const started = deps.now();
  await ensureLayout(deps);
  const order = partition !== undefined
    ? [partition]
    : deps.config.streamPartitions === 1
    ? [0]
    : await partitionsByLag(deps, group.group);
  const parts: PartitionDrain[] = [];
  for (const next of order) {
    const remaining = budgetMs === undefined ? undefined : budgetMs - (deps.now() - started);
    if (remaining !== undefined && remaining <= 0 && parts.length > 0) break;
    if (deps.signal?.aborted && parts.length > 0) break;
    const result = await drainPartition(deps, {
      ...options,
      group,
      partition: next,
      budgetMs: remaining === undefined ? undefined : Math.max(0, remaining),
    });
    parts.push(result);
    // One chunk without a budget: done once a free partition had something to drain.
    if (budgetMs === undefined && !result.busy && result.read > 0) break;
  }
  return mergeDrains(deps.config, parts, {
    group: group.group,
    budgetMs: budgetMs ?? 0,
    durationMs: deps.now() - started,
  });
}
