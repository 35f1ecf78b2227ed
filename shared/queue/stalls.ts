/**
 * Stall records: when a group's dependency fails, its drain stops and
 * records why and until when it backs off, in one hash per queue (field =
 * group), written in the same commit that leaves the chunk pending; the next
 * chunk that succeeds deletes it in its commit.
 *
 * @module
 */

import { command, type RedisClient } from "./client.ts";

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
 * import { queueKeys } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const stalls = await readStalls(redis, queueKeys("stock_quotes").stalled);
 * stalls.get("quote-store")?.dependency; // "postgresql"
 * ```
 */
export async function readStalls(redis: RedisClient, key: string): Promise<Map<string, Stall>> {
  const flat = await command(redis, "HGETALL", key) as string[];
  const stalls = new Map<string, Stall>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [group, text] = [flat[i], flat[i + 1]];
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
 * import { queueKeys } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * await readStall(redis, { key: queueKeys("stock_quotes").stalled, group: "quote-store" });
 * ```
 */
export async function readStall(
  redis: RedisClient,
  where: { key: string; group: string },
): Promise<Stall | undefined> {
  const text = await command(redis, "HGET", where.key, where.group) as string | null;
  return text === null ? undefined : parseStall(text);
}
