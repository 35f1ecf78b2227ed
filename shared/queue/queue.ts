/**
 * A queue: one stream on one client, its keys and the settings every drain,
 * replay and emit of it shares. Opening one sends no command.
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import type { WaitReplicas } from "./client.ts";
import type { QueueKeys } from "./keys.ts";
import { openStream, type Stream } from "./stream.ts";

/** Options of {@linkcode openQueue}. */
export interface QueueOptions {
  /**
   * Idle time after which a pending entry is taken over from its consumer, in ms.
   * Must exceed the longest drain budget, or running drains lose their entries.
   * @default {60000}
   */
  claimIdleMs?: number;
  /**
   * First retry delay of a failed entry, in ms; doubles with each delivery, up to `claimIdleMs`.
   * @default {1000}
   */
  retryDelayMs?: number;
  /**
   * Deliveries after which a failing entry goes to the dead letters.
   * @default {5}
   */
  maxDeliveries?: number;
  /**
   * Idle time after which a consumer holding nothing is removed from its group, in ms.
   * @default {3600000}
   */
  consumerIdleMs?: number;
  /**
   * Entries the stream keeps once every group is done with them; undefined never trims.
   * @default {undefined}
   */
  maxLen?: number;
  /**
   * Clock in ms since the epoch; tests inject their own.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Replicas every commit must reach (WAIT, with its timeout); undefined does not wait.
   * @default {undefined}
   */
  waitReplicas?: WaitReplicas;
}

/** An open queue: the client, the keys and the validated settings. */
export interface Queue {
  /** Client every command of this queue goes to. */
  readonly redis: RedisClient;
  /** Every key of the queue. */
  readonly keys: QueueKeys;
  /** The stream handle. */
  readonly stream: Stream;
  /** Idle time after which a pending entry is taken over, in ms. */
  readonly claimIdleMs: number;
  /** First retry delay, in ms. */
  readonly retryDelayMs: number;
  /** Deliveries before the dead letters. */
  readonly maxDeliveries: number;
  /** Idle time after which an empty consumer is removed, in ms. */
  readonly consumerIdleMs: number;
  /** Entries kept once every group is done with them, or undefined. */
  readonly maxLen: number | undefined;
  /** Clock in ms since the epoch. */
  readonly now: () => number;
  /** Replicas every commit must reach, or undefined. */
  readonly waitReplicas: WaitReplicas | undefined;
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot open the queue as '${name}' must be an integer >= ${min}: current value is ${value}`,
    );
  }
  return value;
}

/**
 * Opens the queue whose keys are `keys` on `redis`; validates the options, sends nothing.
 *
 * @example
 * ```ts
 * import { drainGroup } from "./mod.ts";
 * import type { Handler } from "./mod.ts";
 * declare const myGroup: Handler;
 * import { queueKeys } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const queue = openQueue(redis, queueKeys("stock_quotes"), { claimIdleMs: 30000 });
 * const result = await drainGroup(queue, myGroup, { budgetMs: 5000 });
 * ```
 */
export function openQueue(redis: RedisClient, keys: QueueKeys, options: QueueOptions = {}): Queue {
  const {
    claimIdleMs = 60000,
    retryDelayMs = 1000,
    maxDeliveries = 5,
    consumerIdleMs = 3600000,
    maxLen,
    now = Date.now,
    waitReplicas,
  } = options;
  positiveInteger("claimIdleMs", claimIdleMs, 1);
  positiveInteger("retryDelayMs", retryDelayMs, 0);
  positiveInteger("maxDeliveries", maxDeliveries, 1);
  positiveInteger("consumerIdleMs", consumerIdleMs, 0);
  if (maxLen !== undefined) positiveInteger("maxLen", maxLen, 0);
  return {
    redis,
    keys,
    stream: openStream(redis, keys.stream),
    claimIdleMs,
    retryDelayMs,
    maxDeliveries,
    consumerIdleMs,
    maxLen,
    now,
    waitReplicas,
  };
}

/** Lease time: renewed every chunk, and gone before a dead holder's entries become claimable. */
export function leaseTtlMs(queue: Pick<Queue, "claimIdleMs">): number {
  return Math.max(500, Math.min(30000, queue.claimIdleMs));
}
