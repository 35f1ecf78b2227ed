/**
 * The stock app's queue: every key it uses, derived from the settings
 * through the engine's key module (so all of them can share one hash tag),
 * and the queue handle of a function's dependencies.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { partitionIndexes, tagsKeys } from "./partitions.ts";
import {
  openQueue,
  type Queue,
  type QueueKeys,
  queueKeys,
  type WaitReplicas,
} from "./queue/mod.ts";
import type { Deps } from "./http.ts";

/** The engine's keys plus the app's own, beside them. */
export interface StockKeys extends QueueKeys {
  /** Stream of alerts the analyses write. */
  readonly alerts: string;
  /** Hash symbol -> latest-quote record (shared/market/latest.ts). */
  readonly latest: string;
  /** Hash of the simulator's state and version. */
  readonly simulator: string;
  /** Sorted set of lag samples that /report's trend reads. */
  readonly reportLag: string;
  /** Key /health writes to prove Redis takes writes. */
  readonly health: string;
  /** Partition these keys belong to. */
  readonly partition: number;
  /** String holding the partition count the data is laid out in. */
  readonly layout: string;
}

/** A partition's queue, with the app's keys of that partition. */
export interface StockQueue extends Queue {
  /** Every key of the partition, the engine's and the app's. */
  readonly keys: StockKeys;
}

/** What the keys are derived from. */
export type KeyConfig = Pick<
  Config,
  "streamKey" | "deadLetterKey" | "alertsKey" | "streamPartitions" | "redisClusterNodes"
>;

/**
 * Every key of the stock app for `config`, in partition `partition`: the
 * plain names with one partition on one Redis, else each carrying `{p<k>}`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * stockKeys(loadConfig()).latest; // "stock_quotes:latest"
 * stockKeys(loadConfig({ STREAM_PARTITIONS: "4" }), 2).stream; // "stock_quotes{p2}"
 * ```
 */
export function stockKeys(config: KeyConfig, partition = 0): StockKeys {
  if (!Number.isInteger(partition) || partition < 0 || partition >= config.streamPartitions) {
    throw new RangeError(
      `Cannot derive the keys of partition ${partition} as STREAM_PARTITIONS is ${config.streamPartitions}`,
    );
  }
  const hashTag = tagsKeys(config) ? `p${partition}` : undefined;
  const keys = queueKeys(config.streamKey, { deadLetters: config.deadLetterKey, hashTag });
  return {
    ...keys,
    partition,
    alerts: keys.related(config.alertsKey),
    latest: keys.related(`${config.streamKey}:latest`),
    simulator: keys.related(`${config.streamKey}:sim`),
    reportLag: `${config.streamKey}:report:lag`,
    health: `${config.streamKey}:health`,
    layout: `${config.streamKey}:partitions`,
  };
}

/** The WAIT every emit and commit does (REDIS_WAIT_REPLICAS), or undefined for none. */
export function waitReplicasOf(
  config: Pick<Config, "redisWaitReplicas" | "redisWaitTimeoutMs">,
): WaitReplicas | undefined {
  return config.redisWaitReplicas === 0
    ? undefined
    : { count: config.redisWaitReplicas, timeoutMs: config.redisWaitTimeoutMs };
}

/** The keys of every partition of `config`, in partition order. */
export function allStockKeys(config: KeyConfig): StockKeys[] {
  return partitionIndexes(config).map((partition) => stockKeys(config, partition));
}

/**
 * The queue of partition `partition` of `deps`: its client, keys and the engine settings.
 *
 * @example
 * ```ts
 * import type { Deps } from "./http.ts";
 * declare const deps: Deps;
 * const queue = stockQueue(deps);
 * await queue.stream.length();
 * ```
 */
export function stockQueue(
  deps: Pick<Deps, "config" | "redis" | "now">,
  partition = 0,
): StockQueue {
  const { config } = deps;
  const keys = stockKeys(config, partition);
  const queue = openQueue(deps.redis(), keys, {
    claimIdleMs: config.claimIdleMs,
    retryDelayMs: config.retryDelayMs,
    maxDeliveries: config.maxDeliveries,
    consumerIdleMs: config.consumerIdleMs,
    maxLen: config.streamMaxlen,
    now: deps.now,
    waitReplicas: waitReplicasOf(config),
  });
  return { ...queue, keys };
}
