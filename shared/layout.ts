/**
 * The partition count the data is laid out in, kept in Redis, so that
 * changing STREAM_PARTITIONS cannot strand entries: while the stored count
 * differs from the setting and any group of the old layout has lag or
 * pending entries, emits and drains are refused with a clear error. Once the
 * old layout is drained to 0, the first emit or drain switches the stored
 * count (docs/scaling.md gives the procedure).
 *
 * @module
 */

import { PartitionLayoutError } from "./errors.ts";
import type { Deps } from "./http.ts";
import { openStream } from "./queue/mod.ts";
import { allStockKeys, stockKeys } from "./stock_queue.ts";

let checked = new WeakMap<object, Set<string>>();

/** Entries the groups of a layout of `count` partitions still owe: lag plus pending. */
async function owedIn(deps: Pick<Deps, "config" | "redis">, count: number): Promise<number> {
  const config = { ...deps.config, streamPartitions: count };
  const owed = await Promise.all(
    allStockKeys(config).map(async (keys) => {
      const stream = openStream(deps.redis(), keys.stream);
      const groups = await stream.groups();
      // Unknown lag (an entry was deleted): the stream's length bounds it.
      const unknown = groups.some((g) => g.lag === null) ? await stream.length() : 0;
      return groups.reduce((n, g) => n + (g.lag ?? 0) + g.pending, 0) + unknown;
    }),
  );
  return owed.reduce((n, o) => n + o, 0);
}

/**
 * Checks, once per client and stream, that the data is laid out in
 * STREAM_PARTITIONS partitions, recording it on a fresh Redis and switching
 * it when the old layout owes nothing.
 *
 * @example
 * ```ts
 * import type { Deps } from "./http.ts";
 * declare const deps: Deps;
 * await ensureLayout(deps); // throws PartitionLayoutError while the old layout owes entries
 * ```
 * @throws {PartitionLayoutError} When the stored count differs and entries wait in it.
 */
export async function ensureLayout(deps: Pick<Deps, "config" | "redis">): Promise<void> {
  const { config } = deps;
  const redis = deps.redis();
  const key = stockKeys(config).layout;
  const seen = checked.get(redis) ?? new Set<string>();
  checked.set(redis, seen);
  const tag = `${key}|${config.streamPartitions}`;
  if (seen.has(tag)) return;
  const wanted = String(config.streamPartitions);
  const stored = await redis.get(key);
  if (stored !== null && stored !== wanted) {
    const old = Number(stored);
    const owed = Number.isInteger(old) && old >= 1 ? await owedIn(deps, old) : 0;
    if (owed > 0) {
      throw new PartitionLayoutError(
        `Cannot use STREAM_PARTITIONS=${wanted} as the queue is laid out in ${stored} partitions and its groups still owe ${owed} entries there: stop emits, drain every group to 0 with STREAM_PARTITIONS=${stored}, then switch`,
      );
    }
  }
  if (stored !== wanted) await redis.set(key, wanted);
  seen.add(tag);
}

/** Forgets which layouts were checked, for tests that flush Redis. */
export function resetLayoutCache(): void {
  checked = new WeakMap();
}
