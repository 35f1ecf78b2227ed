/**
 * A latest-entry index: a hash whose fields point at the newest entry of
 * each key (e.g. each symbol), written only forward, so entries that reach
 * it late or twice never replace a newer one.
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** One field of a latest-entry index. */
export interface LatestItem {
  /** Hash field, e.g. the symbol. */
  field: string;
  /** Stream entry id the value belongs to. */
  id: string;
  /** The JSON object's members after "id", without the leading brace. */
  rest: string;
}

/**
 * Sets each item's field of the hash `key` to `{"id": id, ...rest}` when `id`
 * is newer than the one stored there; returns how many fields changed.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * await updateLatest(redis, "stock_quotes:latest", [
 *   { field: "AAPL", id: "1700000000000-0", rest: '"symbol":"AAPL","price":190}' },
 * ]); // 1, or 0 when AAPL already holds a newer id
 * ```
 */
export async function updateLatest(
  redis: RedisClient,
  key: string,
  items: LatestItem[],
): Promise<number> {
  if (items.length === 0) return 0;
  const payload = JSON.stringify(items.map((item) => [item.field, item.id, item.rest]));
  return Number(await runScript(redis, SCRIPTS.updateLatest, { keys: [key], args: [payload] }));
}
