/**
 * Partitions: with STREAM_PARTITIONS=N the logical quote stream is N
 * physical streams, and a symbol lives in one of them, chosen by a stable
 * hash, so each symbol's quotes stay in order. Everything one commit touches
 * for a partition (its stream, each group's state, lease and fence, dead
 * letters, alerts, latest quotes, simulator state, idempotency records)
 * carries the partition's hash tag `{p<k>}`, so on Redis Cluster it all lives
 * in one slot.
 *
 * @module
 */

import type { Config } from "./config.ts";

/**
 * The partition of `symbol` among `count`: FNV-1a (32 bit) of its UTF-16
 * code units, mixed by murmur3's 32-bit finalizer (FNV's low bits alone
 * spread short tickers badly), modulo `count`. Stable across processes,
 * runs and platforms.
 *
 * @example
 * ```ts
 * partitionOf("AAPL", 4); // always the same number from 0 to 3
 * ```
 */
export function partitionOf(symbol: string, count: number): number {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(
      `Cannot pick a partition as 'count' must be an integer >= 1: current value is ${count}`,
    );
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < symbol.length; i++) {
    hash ^= symbol.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return (hash >>> 0) % count;
}

/** Every partition index of `config`: 0 to STREAM_PARTITIONS - 1. */
export function partitionIndexes(config: Pick<Config, "streamPartitions">): number[] {
  return Array.from({ length: config.streamPartitions }, (_, i) => i);
}

/**
 * True when keys carry a partition's hash tag: with more than one partition,
 * and on Redis Cluster always; one partition on one Redis keeps the plain names.
 */
export function tagsKeys(config: Pick<Config, "streamPartitions" | "redisClusterNodes">): boolean {
  return config.streamPartitions > 1 || config.redisClusterNodes !== undefined;
}

/** Groups `items` by the partition of their symbol, in partition order, leaving out empty ones. */
export function byPartition<T>(
  config: Pick<Config, "streamPartitions">,
  items: readonly T[],
  symbolOf: (item: T) => string,
): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const index of partitionIndexes(config)) out.set(index, []);
  for (const item of items) {
    out.get(partitionOf(symbolOf(item), config.streamPartitions))!.push(item);
  }
  for (const [index, list] of out) if (list.length === 0) out.delete(index);
  return out;
}
