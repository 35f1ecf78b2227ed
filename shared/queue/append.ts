/**
 * Idempotent, guarded append: a batch of entries added in one atomic script
 * together with what must change with them (a guarded state hash, a
 * latest-entry index, a counter, an idempotency record), then trimmed safely.
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import { checkInteger } from "./_replies.ts";
import type { WaitReplicas } from "./client.ts";
import { KeyList, runScript, runScriptAndWait, SCRIPTS } from "./scripts.ts";

/** Most entries one trim script removes: it reads them, so this bounds its run time. */
export const TRIM_STEP = 10000;

/** Options of {@linkcode appendEntries}. */
export interface AppendOptions {
  /**
   * Entries every consumer group is done with that the stream keeps; older
   * ones are trimmed, never one a group still needs. Undefined keeps all.
   * @default {undefined}
   */
  maxLen?: number;
  /**
   * Most entries one append may trim, so its cost stays bounded.
   * @default {min(TRIM_STEP, max(1000, 2 x batch size))}
   */
  trimLimit?: number;
  /**
   * Optimistic guard on a hash with a `version` field: the append happens only
   * while the version equals `expected`, and then writes `state` and `next`.
   * @default {undefined}
   */
  guard?: { key: string; expected: string; next: string; state: string };
  /**
   * Idempotency record: the append happens only while `key` still holds
   * `token`, and replaces it with the response for `ttlMs`.
   * @default {undefined}
   */
  idempotency?: { key: string; token: string; fingerprint: string; ttlMs: number };
  /**
   * Latest-entry index: for each item, HSET key field to the JSON object whose
   * members after "id" are `rest` (a JSON object text without its leading brace).
   * `index` is the 0-based position of the entry in the batch.
   * @default {undefined}
   */
  latest?: { key: string; items: { index: number; field: string; rest: string }[] };
  /**
   * Hash field incremented by the number of entries, e.g. the queue's `emitted` counter.
   * @default {undefined}
   */
  counter?: { key: string; field: string };
  /**
   * Replicas the append must reach: WAIT in the same round trip; `replicas` says how many did.
   * @default {undefined}
   */
  waitReplicas?: WaitReplicas;
}

/** Result of {@linkcode appendEntries}. */
export interface AppendResult {
  /** "ok", or why nothing was written: "conflict" (guard) or "lost" (idempotency token). */
  status: "ok" | "conflict" | "lost";
  /** Stream key. */
  stream?: string;
  /** Entries added. */
  emitted?: number;
  /** Id of the first entry added. */
  firstId?: string;
  /** Id of the last entry added. */
  lastId?: string;
  /** Entries trimmed. */
  trimmed?: number;
  /** Replicas that acknowledged the append, with `waitReplicas` only. */
  replicas?: number;
}

/**
 * Appends a batch to the stream `key` in one round trip and one atomic step.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const result = await appendEntries(redis, "stock_quotes", [["symbol", "AAPL"]], {
 *   maxLen: 100000,
 * });
 * result.firstId; // "1700000000000-0"
 * ```
 */
export async function appendEntries(
  redis: RedisClient,
  key: string,
  entries: string[][],
  options: AppendOptions = {},
): Promise<AppendResult> {
  if (entries.length === 0) throw new RangeError("Cannot append an empty batch");
  const { maxLen, trimLimit = Math.min(TRIM_STEP, Math.max(1000, 2 * entries.length)) } = options;
  const action = "append entries";
  if (maxLen !== undefined) checkInteger(maxLen, { action, name: "maxLen", min: 0 });
  checkInteger(trimLimit, { action, name: "trimLimit", min: 1 });
  const { guard, idempotency, latest, counter } = options;
  if (idempotency) {
    checkInteger(idempotency.ttlMs, { action, name: "idempotency.ttlMs", min: 1 });
  }
  for (const item of latest?.items ?? []) {
    checkInteger(item.index, {
      action,
      name: "latest.items.index",
      min: 0,
      max: entries.length - 1,
    });
  }
  const keys = new KeyList([key]);
  const payload = {
    entries,
    maxlen: maxLen,
    trim_limit: trimLimit,
    guard: guard
      ? { k: keys.add(guard.key), expected: guard.expected, next: guard.next, state: guard.state }
      : undefined,
    idem: idempotency
      ? {
        k: keys.add(idempotency.key),
        token: idempotency.token,
        fp: idempotency.fingerprint,
        ttl: idempotency.ttlMs,
      }
      : undefined,
    latest: latest
      ? {
        k: keys.add(latest.key),
        items: latest.items.map((item) => [item.index + 1, item.field, item.rest]),
      }
      : undefined,
    count: counter ? { k: keys.add(counter.key), field: counter.field } : undefined,
  };
  const run = { keys: keys.keys, args: [JSON.stringify(payload)] };
  if (options.waitReplicas === undefined) {
    return JSON.parse(String(await runScript(redis, SCRIPTS.append, run))) as AppendResult;
  }
  const { reply, replicas } = await runScriptAndWait(
    redis,
    SCRIPTS.append,
    options.waitReplicas,
    run,
  );
  return { ...JSON.parse(String(reply)) as AppendResult, replicas };
}
