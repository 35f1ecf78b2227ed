/**
 * Leases with fencing tokens: one holder at a time works on what a lease
 * covers (a consumer group), and a holder that lost its lease (it was slow,
 * or paused) cannot read or commit, because every fenced call checks the token.
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** A held lease, and what a fenced call checks: nothing happens unless `key` still holds `token`. */
export interface Fence {
  /** Redis key of the lease. */
  key: string;
  /** Fencing token: increases with every acquisition. */
  token: string;
}

/** A held lease. */
export type Lease = Fence;

/** Where a lease lives: its key and the counter its tokens come from. */
export interface LeaseKeys {
  /** Redis key of the lease. */
  key: string;
  /** Counter the fencing tokens come from. */
  tokens: string;
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
 * import { queueKeys } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const lease = await acquireLease(redis, queueKeys("stock_quotes").lease("price-alerts"));
 * if (lease) await releaseLease(redis, lease);
 * ```
 */
export async function acquireLease(
  redis: RedisClient,
  keys: LeaseKeys,
  options: LeaseOptions = {},
): Promise<Lease | null> {
  const ttlMs = ttlOf("acquire the lease", options);
  const token = await runScript(redis, SCRIPTS.leaseAcquire, {
    keys: [keys.key, keys.tokens],
    args: [ttlMs],
  });
  return token ? { key: keys.key, token: String(token) } : null;
}

/**
 * Extends a held lease to `ttlMs` from now; false when it was lost.
 *
 * @example
 * ```ts
 * import type { Lease } from "./mod.ts";
 * declare const lease: Lease;
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const held = await renewLease(redis, lease, { ttlMs: 30000 }); // false: it was lost
 * ```
 */
export async function renewLease(
  redis: RedisClient,
  lease: Lease,
  options: LeaseOptions = {},
): Promise<boolean> {
  const ttlMs = ttlOf("renew the lease", options);
  const reply = await runScript(redis, SCRIPTS.leaseRenew, {
    keys: [lease.key],
    args: [lease.token, ttlMs],
  });
  return Number(reply) === 1;
}

/**
 * Gives a held lease back so the next holder need not wait for it to expire.
 *
 * @example
 * ```ts
 * import type { Lease } from "./mod.ts";
 * declare const lease: Lease;
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * await releaseLease(redis, lease); // false when it had been lost already
 * ```
 */
export async function releaseLease(redis: RedisClient, lease: Lease): Promise<boolean> {
  const reply = await runScript(redis, SCRIPTS.leaseRelease, {
    keys: [lease.key],
    args: [lease.token],
  });
  return Number(reply) === 1;
}
