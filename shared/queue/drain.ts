/**
 * The drain loop: processes one consumer group in bounded chunks within a
 * time budget, so an invocation ends on time; commits each chunk's effects
 * with its acks (see commit.ts), so a killed invocation leaves nothing
 * half-done; and holds a fenced lease per group, so overlapping invocations
 * apply each key's entries in stream order.
 *
 * @module
 */

import { type ChunkContext, processChunk, type StalledDrain } from "./_chunk.ts";
import { giveBack, type NextChunk, nextChunk, readAhead } from "./_next.ts";
import { TRIM_STEP } from "./append.ts";
import { consumerName } from "./consumer.ts";
import { ensureGroups, isMissingGroupError, recoverGroup } from "./ensure.ts";
import type { Handler } from "./handler.ts";
import { compareIds } from "./ids.ts";
import { acquireLease, releaseLease } from "./lease.ts";
import { leaseTtlMs, type Queue } from "./queue.ts";

export type { StalledDrain } from "./_chunk.ts";

/** Options of {@linkcode drainGroup}. */
export interface DrainOptions {
  /**
   * Most entries per chunk, 1 to 1000.
   * @default {100}
   */
  count?: number;
  /**
   * Time budget in ms, 0 to 55000: no chunk starts when it might not finish in time.
   * @default {20000}
   */
  budgetMs?: number;
  /**
   * Most chunks to process; 1 for a single-chunk drain.
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
   * Consumer name.
   * @default {consumerName("drain")}
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
  /** Entries left pending because an earlier entry of their key failed. */
  deferred: number;
  /** Entries taken over from dead consumers. */
  claimed: number;
  /** Entries moved to the dead-letter stream. */
  deadLettered: number;
  /** Outputs written. */
  outputs: number;
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
  /** Commits fewer replicas acknowledged than the queue's `waitReplicas`; absent without it. */
  unreplicated?: number;
}

/** One drain's fixed inputs, shared by its first attempt and the retry after a lost group. */
interface DrainRun {
  queue: Queue;
  handler: Handler;
  started: number;
  count: number;
  budgetMs: number;
  maxChunks: number;
  consumer: string;
  signal: AbortSignal | undefined;
}

function checkDrainOptions(count: number, budgetMs: number, maxChunks: number): void {
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
}

/**
 * Drains one group: under the group's lease, first takes over entries that
 * dead invocations left pending longer than claimIdleMs (oldest first, and
 * only while the oldest pending entry is claimable, so order holds), then
 * reads new ones, chunk by chunk, until the group is caught up, an entry
 * must wait for its retry, the budget is spent, or `maxChunks` is reached.
 * A group Redis lost is recreated and the drain retried once.
 *
 * @example
 * ```ts
 * import { openQueue } from "./mod.ts";
 * import { queueKeys } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * import type { Handler } from "./mod.ts";
 * declare const vwapDeviation: Handler;
 * const queue = openQueue(redis, queueKeys("stock_quotes"));
 * const result = await drainGroup(queue, vwapDeviation, { budgetMs: 5000 });
 * result.acked;
 * ```
 */
export async function drainGroup(
  queue: Queue,
  handler: Handler,
  options: DrainOptions = {},
): Promise<DrainResult> {
  const {
    count = 100,
    budgetMs = 20000,
    maxChunks = Infinity,
    consumer = consumerName("drain"),
    signal,
  } = options;
  checkDrainOptions(count, budgetMs, maxChunks);
  const run: DrainRun = {
    queue,
    handler,
    started: queue.now(),
    count,
    budgetMs,
    maxChunks,
    consumer,
    signal,
  };
  try {
    return await drainLeased(run);
  } catch (error) {
    if (!isMissingGroupError(error)) throw error;
    // Redis lost the group (FLUSHALL, a restart without persistence, a
    // failover to an empty replica, XGROUP DESTROY): recreate it and retry
    // once, within the same budget.
    await recoverGroup(queue, handler.name);
    return await drainLeased(run);
  }
}

function emptyResult(run: DrainRun): DrainResult {
  return {
    group: run.handler.name,
    consumer: run.consumer,
    read: 0,
    acked: 0,
    failed: 0,
    deferred: 0,
    claimed: 0,
    deadLettered: 0,
    outputs: 0,
    lag: null,
    more: false,
    budgetMs: run.budgetMs,
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

/** Drains under the group's lease: the body of {@linkcode drainGroup}. */
async function drainLeased(run: DrainRun): Promise<DrainResult> {
  const { queue, handler, started, count, budgetMs, maxChunks, consumer, signal } = run;
  const { redis, keys, now } = queue;
  const group = handler.name;
  const result = emptyResult(run);
  await ensureGroups(queue, [{ name: group, start: handler.start }]);
  const ttlMs = leaseTtlMs(queue);
  const lease = await acquireLease(redis, keys.lease(group), { ttlMs });
  if (lease === null) {
    result.busy = true;
    await finish(run, result);
    return result;
  }
  const ctx: ChunkContext = { queue, handler, lease, states: new Map() };
  let waiting = false;
  // The chunk after the one running, read while it runs, and the running chunk's last id.
  let ahead: Promise<NextChunk> | undefined;
  let aheadOf = "";
  try {
    let chunks = 0;
    let slowestChunk = 0;
    let first = true;
    while (chunks < maxChunks) {
      if (signal?.aborted) break;
      if (chunks > 0 && now() - started + slowestChunk > budgetMs) break;
      const chunkStart = now();
      let chunk = ahead === undefined ? undefined : await ahead;
      ahead = undefined;
      if (chunk === undefined || chunk.behind) {
        // The first read follows the acquisition; later ones renew the lease as they read.
        chunk = await nextChunk(ctx, { consumer, count, renewTtlMs: first ? undefined : ttlMs });
      }
      first = false;
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
      // Read ahead only when the drain means to go on: what it would not run is handed back.
      const estimate = Math.max(slowestChunk, now() - chunkStart);
      if (
        chunk.fresh && chunks + 1 < maxChunks && now() - started + 2 * estimate <= budgetMs
      ) {
        ahead = readAhead(ctx, { consumer, count, renewTtlMs: ttlMs, inFlight: chunk.items });
        aheadOf = chunk.items[chunk.items.length - 1].entry.id;
      }
      const outcome = await processChunk(ctx, chunk.items, {
        wholePending: chunk.fresh,
        readAheadSent: ahead !== undefined,
      });
      if (outcome.failed > 0 || outcome.deferred > 0 || outcome.commit.status !== "ok") {
        // Entries of this chunk wait for a retry (or nothing was committed): the chunk read
        // ahead must not overtake them.
        await handBack(ctx, ahead, aheadOf);
        ahead = undefined;
      }
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
      result.outputs += outcome.outputs;
      if (queue.waitReplicas !== undefined) {
        const short = (outcome.commit.replicas ?? 0) < queue.waitReplicas.count ? 1 : 0;
        result.unreplicated = (result.unreplicated ?? 0) + short;
      }
      chunks += 1;
      slowestChunk = Math.max(slowestChunk, now() - chunkStart);
      waiting = outcome.failed > 0 || outcome.deferred > 0;
    }
    await handBack(ctx, ahead, aheadOf);
    ahead = undefined;
    await queue.stream.group(group).deleteIdleConsumers(queue.consumerIdleMs, { keep: consumer });
    if (queue.maxLen !== undefined) await trimWithinBudget(run, result.acked);
  } finally {
    await handBack(ctx, ahead, aheadOf);
    await releaseLease(redis, lease).catch(() => false);
  }
  await finish(run, result);
  result.more = result.more || waiting;
  return result;
}

/**
 * Trims in bounded steps and only while the budget lasts (one step always
 * runs); emits and later drains trim the rest.
 */
async function trimWithinBudget(run: DrainRun, acked: number): Promise<void> {
  const { queue } = run;
  let toTrim = Math.max(1000, acked * 2);
  do {
    const step = Math.min(TRIM_STEP, toTrim);
    const removed = await queue.stream.trim(queue.maxLen!, { limit: step });
    toTrim -= step;
    if (removed < step) break;
  } while (toTrim > 0 && queue.now() - run.started < run.budgetMs);
}

/** Fills in the group's lag, whether more is waiting, and the time spent. */
async function finish(run: DrainRun, result: DrainResult): Promise<void> {
  const { stream, now } = run.queue;
  const info = (await stream.groups()).find((g) => g.name === result.group);
  result.lag = info?.lag ?? null;
  let behind = (info?.lag ?? 0) > 0;
  if (info !== undefined && info.lag === null) {
    // Redis cannot tell the lag (an entry was deleted): compare positions instead.
    const last = (await stream.info())?.lastGeneratedId ?? "0-0";
    behind = compareIds(info.lastDeliveredId, last) < 0;
  }
  result.more = behind || (info?.pending ?? 0) > 0;
  result.durationMs = now() - run.started;
}

/** Hands back what a read ahead after `before` took, once it is in; never rejects. */
async function handBack(
  ctx: ChunkContext,
  ahead: Promise<NextChunk> | undefined,
  before: string,
): Promise<void> {
  if (ahead === undefined) return;
  const chunk = await ahead;
  await giveBack(ctx, { items: chunk.items, before });
}
