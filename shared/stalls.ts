/**
 * Stall records: a group whose dependency fails is marked stalled in Redis,
 * so /report, /health and every process see it, and the mark is cleared by
 * the first commit that stores entries again.
 *
 * @module
 */

import type { Redis } from "ioredis";

/** Why a group is stalled, as /report and /health show it. */
export interface Stall {
  /** Dependency that failed, e.g. "sqlite" or "postgresql". */
  dependency: string;
  /** Last error, redacted and short. */
  error: string;
  /** When the group first stalled, ISO 8601. */
  since: string;
  /** Drains that stopped on this dependency in a row. */
  failures: number;
  /** When the next drain may try again, ISO 8601. */
  retryAt: string;
}

/** Hash of stall records per group of the stream `streamKey`. */
export function stallKey(streamKey: string): string {
  return `${streamKey}:stalled`;
}

/** Reads every group's stall record; a record that does not parse is ignored. */
export async function readStalls(redis: Redis, streamKey: string): Promise<Map<string, Stall>> {
  const raw = await redis.hgetall(stallKey(streamKey));
  const stalls = new Map<string, Stall>();
  for (const [group, text] of Object.entries(raw)) {
    try {
      stalls.set(group, JSON.parse(text) as Stall);
    } catch {
      // A foreign or truncated value says nothing about the group.
    }
  }
  return stalls;
}

/** Reads one group's stall record, or undefined when it is not stalled. */
export async function readStall(
  redis: Redis,
  key: { streamKey: string; group: string },
): Promise<Stall | undefined> {
  const text = await redis.hget(stallKey(key.streamKey), key.group);
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as Stall;
  } catch {
    return undefined;
  }
}
