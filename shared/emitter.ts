/**
 * Emitting simulated quotes into the partitioned quote stream: each
 * partition's quotes in one atomic append with that partition's simulator
 * state (guarded by its version, so concurrent emits continue one walk),
 * latest quotes, counter and idempotency record. An Idempotency-Key covers
 * the whole request: each partition keeps its own record, so a retry after a
 * partial failure completes the missing partitions and returns the same
 * answer for the others.
 *
 * @module
 */

import type { Config } from "./config.ts";
import {
  BackpressureError,
  ConflictError,
  UnavailableError,
  UnprocessableError,
} from "./errors.ts";
import { GROUPS } from "./groups/registry.ts";
import type { Deps } from "./http.ts";
import { ensureLayout } from "./layout.ts";
import { latestRest } from "./market/latest.ts";
import { encodeQuote } from "./market/quotes.ts";
import { initialSimulatorState, simulateTicks } from "./market/simulator.ts";
import { partitionIndexes, partitionOf } from "./partitions.ts";
import {
  claimIdempotency,
  compareIds,
  ensureGroups,
  recoverGroup,
  releaseIdempotency,
} from "./queue/mod.ts";
import { isRedisUnavailable } from "./redis.ts";
import { stockQueue, waitReplicasOf } from "./stock_queue.ts";

/** What one partition's append added. */
export interface PartitionEmit {
  /** Partition index. */
  partition: number;
  /** Its stream key. */
  stream: string;
  /** Quotes added. */
  emitted: number;
  /** Id of the first quote added. */
  firstId: string;
  /** Id of the last quote added. */
  lastId: string;
  /** Replicas that acknowledged the append, with REDIS_WAIT_REPLICAS only. */
  replicas?: number;
}

/** Response of an emit. */
export interface EmitResult {
  /** Stream key (the logical stream with more than one partition). */
  stream: string;
  /** Quotes added. */
  emitted: number;
  /** Id of the first quote added (the smallest over the partitions). */
  firstId: string;
  /** Id of the last quote added (the largest over the partitions). */
  lastId: string;
  /** Each partition's part, with STREAM_PARTITIONS > 1 only. */
  partitions?: PartitionEmit[];
  /** Fewest replicas any part reached, with REDIS_WAIT_REPLICAS only. */
  replicas?: number;
  /** Set when some part reached fewer replicas than REDIS_WAIT_REPLICAS within its timeout. */
  replicationWarning?: string;
}

/** Options of {@linkcode emitAcrossPartitions}. */
export interface EmitAcrossOptions {
  /**
   * Ticks to emit; each tick is one quote per symbol.
   * @default {1}
   */
  ticks?: number;
  /**
   * Symbols to emit.
   * @default {config.symbols}
   */
  symbols?: string[];
  /**
   * Idempotency key: a repeat within 24 hours returns the first response and adds nothing.
   * @default {undefined}
   */
  idempotencyKey?: string;
  /**
   * Fingerprint of the request the key belongs to; a different one with a used key is refused.
   * @default {""}
   */
  fingerprint?: string;
}

/** How long an idempotency key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** How long a running emit holds its key before a retry may take over. */
const RUNNING_TTL_MS = 30000;
const MAX_GUARD_RETRIES = 10;

/** Creates the groups a partition lacks: at their start on a fresh stream, else recovered at 0. */
async function ensurePartitionGroups(deps: Deps, partition: number): Promise<number> {
  const queue = stockQueue(deps, partition);
  const groups = await queue.stream.groups();
  const missing = GROUPS.filter((d) => !groups.some((g) => g.name === d.group));
  if (missing.length > 0) {
    const fresh = groups.length === 0 && (await queue.stream.info()) === null;
    for (const definition of missing) {
      if (fresh || (definition.start ?? "$") !== "0") {
        // No stream at all (a first start, or Redis lost everything), or a
        // group new to a running stream: it starts where it declares.
        const start = { name: definition.group, start: definition.start };
        await ensureGroups(queue, [start], { force: true });
      } else {
        // The stream is there without this group: Redis lost it, or it was
        // destroyed. Recreated at 0 so no entry it had not seen is missed.
        await recoverGroup(queue, definition.group);
      }
    }
  }
  let worst = groups.reduce((max, g) => Math.max(max, g.lag ?? 0), 0);
  // Redis reports no lag when it cannot tell (e.g. after XDEL by another
  // producer); the stream's length is then a safe upper bound.
  if (groups.some((g) => g.lag === null)) worst = Math.max(worst, await queue.stream.length());
  return worst;
}

/**
 * Answers 429 while the slowest group of the worst partition lags more than
 * MAX_LAG entries, and recreates groups Redis lost, so no entry of this emit
 * is missed by them.
 */
export async function checkBackpressure(deps: Deps): Promise<void> {
  await ensureLayout(deps);
  const lags = await Promise.all(
    partitionIndexes(deps.config).map((p) => ensurePartitionGroups(deps, p)),
  );
  const worst = Math.max(...lags);
  if (worst > deps.config.maxLag) {
    throw new BackpressureError(
      `Cannot emit while the slowest group lags ${worst} entries: MAX_LAG is ${deps.config.maxLag}`,
      30,
    );
  }
}

/** Emits `ticks` of `symbols` (all of one partition) into that partition. */
async function emitPartition(
  deps: Deps,
  request: { partition: number; symbols: string[]; ticks: number } & EmitAcrossOptions,
): Promise<PartitionEmit> {
  const { config } = deps;
  const { partition, symbols, ticks, idempotencyKey, fingerprint = "" } = request;
  const redis = deps.redis();
  const { stream, keys } = stockQueue(deps, partition);
  let idem: { key: string; token: string; fingerprint: string; ttlMs: number } | undefined;
  if (idempotencyKey !== undefined) {
    const claim = await claimIdempotency<PartitionEmit>(redis, keys.idempotency(idempotencyKey), {
      fingerprint,
      runningTtlMs: RUNNING_TTL_MS,
      now: deps.now,
    });
    if (claim.status === "mismatch") {
      throw new UnprocessableError(
        `Idempotency key was used for a different request: "${idempotencyKey}"`,
      );
    }
    if (claim.status === "done") {
      const { stream, emitted, firstId, lastId } = claim.response;
      return { partition, stream, emitted, firstId, lastId };
    }
    if (claim.status === "running") {
      throw new ConflictError(
        `A request with this idempotency key is still running: "${idempotencyKey}"`,
      );
    }
    idem = { key: claim.key, token: claim.token, fingerprint, ttlMs: IDEMPOTENCY_TTL_MS };
  }
  try {
    for (let attempt = 0; attempt < MAX_GUARD_RETRIES; attempt++) {
      const [version, stored] = await redis.hmget(keys.simulator, "version", "state");
      const state = stored ? JSON.parse(stored) : initialSimulatorState();
      const sim = simulateTicks(state, {
        symbols,
        ticks,
        now: deps.now(),
        intervalMs: config.tickIntervalMs,
        random: deps.random,
      });
      const lastIndex = new Map<string, number>();
      sim.quotes.forEach((q, i) => lastIndex.set(q.symbol, i));
      const result = await stream.append(sim.quotes.map(encodeQuote), {
        maxLen: config.streamMaxlen,
        guard: {
          key: keys.simulator,
          expected: version ?? "0",
          next: String(Number(version ?? "0") + 1),
          state: JSON.stringify(sim.state),
        },
        idempotency: idem,
        latest: {
          key: keys.latest,
          items: [...lastIndex].map(([field, index]) => ({
            index,
            field,
            rest: latestRest(sim.quotes[index]),
          })),
        },
        counter: { key: keys.counters, field: "emitted" },
        waitReplicas: waitReplicasOf(config),
      });
      if (result.status === "ok") {
        idem = undefined;
        return {
          partition,
          stream: result.stream!,
          emitted: result.emitted!,
          firstId: result.firstId!,
          lastId: result.lastId!,
          ...(result.replicas === undefined ? {} : { replicas: result.replicas }),
        };
      }
      if (result.status === "lost") {
        throw new ConflictError(
          `Idempotency key expired while the request was running: "${idempotencyKey}"`,
        );
      }
    }
    throw new UnavailableError("Cannot emit: the simulator state kept changing under contention");
  } catch (error) {
    // With Redis down the key cannot be freed now; it expires on its own.
    if (isRedisUnavailable(error)) idem = undefined;
    throw error;
  } finally {
    // A failed emit frees its key at once so the client's retry can proceed.
    if (idem !== undefined) await releaseIdempotency(redis, idem).catch(() => false);
  }
}

/** The answer of a whole emit from its partitions' parts. */
function combine(config: Config, parts: PartitionEmit[]): EmitResult {
  return { ...combineParts(config, parts), ...replication(config, parts) };
}

/** What the answer says of replication: nothing without REDIS_WAIT_REPLICAS. */
function replication(config: Config, parts: PartitionEmit[]): Partial<EmitResult> {
  if (config.redisWaitReplicas === 0) return {};
  const replicas = Math.min(...parts.map((p) => p.replicas ?? 0));
  if (replicas >= config.redisWaitReplicas) return { replicas };
  return {
    replicas,
    replicationWarning:
      `Only ${replicas} of REDIS_WAIT_REPLICAS=${config.redisWaitReplicas} replicas acknowledged the emit within ${config.redisWaitTimeoutMs} ms: a failover now could lose it`,
  };
}

function combineParts(config: Config, parts: PartitionEmit[]): EmitResult {
  if (config.streamPartitions === 1) {
    const { stream, emitted, firstId, lastId } = parts[0];
    return { stream, emitted, firstId, lastId };
  }
  const ids = parts.flatMap((p) => [p.firstId, p.lastId]).sort(compareIds);
  return {
    stream: config.streamKey,
    emitted: parts.reduce((n, p) => n + p.emitted, 0),
    firstId: ids[0],
    lastId: ids[ids.length - 1],
    partitions: parts,
  };
}

/**
 * Emits `ticks` x `symbols` quotes, each partition's in one atomic step.
 *
 * @example
 * ```ts
 * import type { Deps } from "./http.ts";
 * declare const deps: Deps;
 * const result = await emitAcrossPartitions(deps, { ticks: 10, idempotencyKey: "batch-7" });
 * result.emitted; // 10 x the symbols
 * ```
 */
export async function emitAcrossPartitions(
  deps: Deps,
  options: EmitAcrossOptions = {},
): Promise<EmitResult> {
  const { config } = deps;
  const { ticks = 1, symbols = config.symbols } = options;
  const groups = new Map<number, string[]>();
  for (const symbol of symbols) {
    const partition = partitionOf(symbol, config.streamPartitions);
    groups.set(partition, [...(groups.get(partition) ?? []), symbol]);
  }
  await checkBackpressure(deps);
  const parts: PartitionEmit[] = [];
  // One partition after the other: a retry with the same key redoes only those not done.
  for (const [partition, own] of [...groups].sort((a, b) => a[0] - b[0])) {
    parts.push(await emitPartition(deps, { ...options, partition, symbols: own, ticks }));
  }
  return combine(config, parts);
}
