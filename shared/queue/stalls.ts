/**
 * Stall records: when a group's dependency fails, its drain stops and
 * records why and until when it backs off, in one hash per queue (field =
 * group), written in the same commit that leaves the chunk pending; the next
 * chunk that succeeds deletes it in its commit.
 *
 * @module
 */

import type { Redis } from "ioredis";

/** Why a group is stalled, as stored. */
export interface Stall {
  /** Dependency that failed, e.g. "sqlite", "postgresql" or "redis". */
  dependency: string;
  /** The dependency's error message. */
  error: string;
  /** When the stall began (ISO 8601). */
  since: string;
  /** Stalled drains in a row. */
  failures: number;
  /** When the next attempt may take the entries (ISO 8601). */
  retryAt: string;
}

function parseStall(text: string): Stall | undefined {
  try {
    return JSON.parse(text) as Stall;
  } catch {
    // A foreign or truncated value says nothing about the group.
    return undefined;
  }
}

/**
 * Every stalled group of the stall hash `key`, by group.
 *
 * @example
 * ```ts
 * const stalls = await readStalls(redis, queueKeys("stock_quotes").stalled);
 * stalls.get("quote-store")?.dependency; // "postgresql"
 * ```
 */
export async function readStalls(redis: Redis, key: string): Promise<Map<string, Stall>> {
  const raw = await redis.hgetall(key);
  const stalls = new Map<string, Stall>();
  for (const [group, text] of Object.entries(raw)) {
    const stall = parseStall(text);
    if (stall !== undefined) stalls.set(group, stall);
  }
  return stalls;
}

/**
 * The stall of `group` in the stall hash `key`, or undefined when it is not stalled.
 *
 * @example
 * ```ts
 * await readStall(redis, { key: queueKeys("stock_quotes").stalled, group: "quote-store" });
 * ```
 */
export async function readStall(
  redis: Redis,
  where: { key: string; group: string },
): Promise<Stall | undefined> {
  const text = await redis.hget(where.key, where.group);
  return text === null ? undefined : parseStall(text);
}
