/**
 * Idempotent requests: a caller's key is claimed with a short "running"
 * record, the append script replaces it with the response in the same step
 * as the entries (see append.ts), and a repeat of the request gets that
 * response instead of a second append. A request that fails frees its claim
 * so a retry can proceed at once.
 *
 * @module
 */

import { command, type RedisClient } from "./client.ts";
import { releaseLease } from "./lease.ts";

/** What {@linkcode claimIdempotency} found. */
export type IdempotencyClaim<R> =
  /** The key is this caller's: append with `{ key, token }` as the append's idempotency record. */
  | { status: "claimed"; key: string; token: string }
  /** The request already succeeded: its response. */
  | { status: "done"; response: R }
  /** The same request is still running elsewhere. */
  | { status: "running" }
  /** The key was used for a different request (another fingerprint). */
  | { status: "mismatch" };

/** Options of {@linkcode claimIdempotency}. */
export interface ClaimIdempotencyOptions {
  /**
   * Fingerprint of the request; a repeat with another one is a mismatch.
   * @default {""}
   */
  fingerprint?: string;
  /**
   * How long a running claim holds before a retry may take over, in ms.
   * @default {30000}
   */
  runningTtlMs?: number;
  /**
   * Clock in ms since the epoch, recorded in the claim.
   * @default {Date.now}
   */
  now?: () => number;
}

interface StoredRecord<R> {
  state: "running" | "done";
  fp: string;
  response?: R;
}

/**
 * Claims the idempotency record `key` (from `queueKeys(...).idempotency(id)`).
 *
 * @example
 * ```ts
 * import { queueKeys, type RedisClient } from "./mod.ts";
 * declare const redis: RedisClient;
 * const claim = await claimIdempotency(redis, queueKeys("q").idempotency("req-1"), {
 *   fingerprint: "sha256-of-body",
 * });
 * claim.status; // "claimed", "done", "running" or "mismatch"
 * ```
 */
export async function claimIdempotency<R>(
  redis: RedisClient,
  key: string,
  options: ClaimIdempotencyOptions = {},
): Promise<IdempotencyClaim<R>> {
  const { fingerprint = "", runningTtlMs = 30000, now = Date.now } = options;
  if (!Number.isInteger(runningTtlMs) || runningTtlMs < 1) {
    throw new RangeError(
      `Cannot claim the idempotency key as 'runningTtlMs' must be an integer >= 1: current value is ${runningTtlMs}`,
    );
  }
  const token = JSON.stringify({ state: "running", fp: fingerprint, at: now() });
  // Twice at most: the running record may expire between the SET and the GET.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await command(redis, "SET", key, token, "PX", runningTtlMs, "NX") === "OK") {
      return { status: "claimed", key, token };
    }
    const raw = await command(redis, "GET", key) as string | null;
    if (raw === null) continue;
    const record = JSON.parse(raw) as StoredRecord<R>;
    if (record.fp !== fingerprint) return { status: "mismatch" };
    if (record.state === "done" && record.response !== undefined) {
      return { status: "done", response: record.response };
    }
    return { status: "running" };
  }
  return { status: "running" };
}

/**
 * Frees a claim whose request failed, unless the record moved on (it is
 * done, or another caller claimed it); true when freed.
 *
 * @example
 * ```ts
 * import type { RedisClient } from "./mod.ts";
 * declare const redis: RedisClient;
 * await releaseIdempotency(redis, { key: "q:idem:…", token: "…" });
 * ```
 */
export async function releaseIdempotency(
  redis: RedisClient,
  claim: { key: string; token: string },
): Promise<boolean> {
  // The same compare-and-delete as a lease's release.
  return await releaseLease(redis, claim);
}
