/**
 * A lease per consumer group with a fencing token: one invocation at a time
 * processes a group, and a holder that lost its lease (it was slow, or
 * paused) cannot commit, because every commit checks the token.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { lua, runScript } from "./_lua.ts";

/** A held lease. */
export interface Lease {
  /** Redis key of the lease. */
  key: string;
  /** Fencing token: increases with every acquisition, checked at commit. */
  token: string;
}

// allow-oom: a full Redis must still let a drain take its lease, since only
// drains (acks and trimming) can free memory.
const ACQUIRE_SCRIPT = lua(`#!lua flags=allow-oom
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
`);

const RENEW_SCRIPT = lua(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`);

const RELEASE_SCRIPT = lua(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`);

/** Key of the lease of `group` on `stream`. */
export function leaseKey(stream: string, group: string): string {
  return `${stream}:lease:${group}`;
}

/** Options of {@linkcode acquireLease} and {@linkcode renewLease}. */
export interface LeaseOptions {
  /**
   * How long the lease holds without a renewal, in ms (rounded up to a whole ms).
   * @default {30000}
   */
  ttlMs?: number;
}

function ttlOf(action: string, options: LeaseOptions): number {
  const { ttlMs = 30000 } = options;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(
      `Cannot ${action} as 'ttlMs' must be a number > 0: current value is ${ttlMs}`,
    );
  }
  return Math.ceil(ttlMs);
}

/**
 * Tries to take the lease for `ttlMs`; returns null when another holder has it.
 *
 * @example
 * ```ts
 * const lease = await acquireLease(redis, leaseKey("stock_quotes", "price-alerts"), {
 *   ttlMs: 30000,
 * });
 * if (lease) await releaseLease(redis, lease);
 * ```
 */
export async function acquireLease(
  redis: Redis,
  key: string,
  options: LeaseOptions = {},
): Promise<Lease | null> {
  const ttlMs = ttlOf("acquire the lease", options);
  const token = await runScript(redis, ACQUIRE_SCRIPT, {
    keys: [key, `${key}:fence`],
    args: [ttlMs],
  });
  return token ? { key, token: String(token) } : null;
}

/**
 * Extends a held lease to `ttlMs` from now; false when it was lost.
 *
 * @example
 * ```ts
 * if (!(await renewLease(redis, lease, { ttlMs: 30000 }))) return; // lost it
 * ```
 */
export async function renewLease(
  redis: Redis,
  lease: Lease,
  options: LeaseOptions = {},
): Promise<boolean> {
  const ttlMs = ttlOf("renew the lease", options);
  return Number(
    await runScript(redis, RENEW_SCRIPT, { keys: [lease.key], args: [lease.token, ttlMs] }),
  ) === 1;
}

/**
 * Gives a held lease back so the next invocation need not wait for it to expire.
 *
 * @example
 * ```ts
 * await releaseLease(redis, lease); // false when it had been lost already
 * ```
 */
export async function releaseLease(redis: Redis, lease: Lease): Promise<boolean> {
  return Number(
    await runScript(redis, RELEASE_SCRIPT, { keys: [lease.key], args: [lease.token] }),
  ) === 1;
}
