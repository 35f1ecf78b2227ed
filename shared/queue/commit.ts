/**
 * The atomic commit of a processed chunk: the acks (or, for a replay, the
 * removal of dead letters), the group's state, its outputs, new dead letters,
 * counters and retry marks, in one script that first checks the fence and
 * that every id is still pending. All or nothing, so an invocation killed at
 * any line leaves either no effect or the whole effect and the ack.
 *
 * @module
 */

import { checkInteger } from "./_replies.ts";
import type { StreamRef } from "./group.ts";
import { compareIds } from "./ids.ts";
import type { Fence } from "./lease.ts";
import type { WaitReplicas } from "./client.ts";
import { KeyList, runScript, runScriptAndWait, SCRIPTS } from "./scripts.ts";

/** A pending entry left for a retry, as {@linkcode commitChunk} marks it. */
export interface RetryMark {
  /** Entry id. */
  id: string;
  /** Idle time to give it: the claim idle time minus the delay until its retry. */
  idleMs: number;
  /** False for an entry delivered but not run, whose delivery is given back. */
  attempted: boolean;
}

/** Entries to add to an output stream in the commit. */
export interface OutputWrite {
  /** Stream key. */
  key: string;
  /** Approximate MAXLEN the stream is kept at. */
  maxLen: number;
  /** The entry, as a flat field/value list. */
  fields: string[];
}

/** What {@linkcode commitChunk} writes besides the acks, in the same atomic step. */
export interface CommitOptions {
  /**
   * Lease that must still hold its token, else nothing is written (fencing).
   * @default {undefined}
   */
  fence?: Fence;
  /**
   * Entries to append to output streams.
   * @default {[]}
   */
  outputs?: OutputWrite[];
  /**
   * Hash fields to set: [key, field, value].
   * @default {[]}
   */
  hashWrites?: [string, string, string][];
  /**
   * Hash fields to delete: [key, field].
   * @default {[]}
   */
  hashDeletes?: [string, string][];
  /**
   * Dead-letter entries to append to `deadKey`, as flat field/value lists.
   * @default {[]}
   */
  deadLetters?: string[][];
  /**
   * Dead-letter stream key.
   * @default {`${stream}:dead`}
   */
  deadKey?: string;
  /**
   * Hash counters to change: [key, field, delta].
   * @default {[]}
   */
  counters?: [string, string, number][];
  /**
   * Pending entries left for a retry: each gets idle time `idleMs`, so it is
   * claimable when its retry is due; one that was not `attempted` (held back
   * behind a failed entry of its key) also gets its delivery given back.
   * @default {[]}
   */
  retry?: RetryMark[];
  /**
   * The ids and retry ids are all of the group's pending entries, as after a
   * fenced read of new entries: the script then checks them with XPENDING's
   * summary (count, smallest, largest) instead of reading the range.
   * @default {false}
   */
  wholePending?: boolean;
  /**
   * With `wholePending`: entries read ahead of this chunk, pending too, all
   * newer than it: how many, and the last id.
   * @default {undefined}
   */
  readAhead?: { count: number; lastId: string };
  /**
   * With `wholePending`: the group's read-ahead record (`keys.readAhead`),
   * written by a read ahead of this chunk sent before this commit, whose
   * reply is not in yet; the script takes `readAhead` from it.
   * @default {undefined}
   */
  readAheadKey?: string;
  /**
   * The ids are in stream order, and so are the retry ids: the script's
   * XPENDING range is read off their ends instead of found by comparing
   * every id. Out of order, ids outside the range fail the commit as stale.
   * @default {false}
   */
  ordered?: boolean;
  /**
   * Commit a replay: the ids are entries of `deadKey`, deleted instead of acked.
   * @default {false}
   */
  replay?: boolean;
  /**
   * Replicas the commit must reach: WAIT in the same round trip; `replicas` says how many did.
   * @default {undefined}
   */
  waitReplicas?: WaitReplicas;
}

/** Result of {@linkcode commitChunk}. */
export interface CommitResult {
  /** "ok"; "fenced" when the lease was lost; "stale" when some ids were committed already. */
  status: "ok" | "fenced" | "stale";
  /** Entries acked (or deleted from the dead-letter stream). */
  done?: number;
  /** Ids no longer pending (or no longer dead-lettered); nothing was written. */
  stale?: string[];
  /** Replicas that acknowledged the commit, with `waitReplicas` only. */
  replicas?: number;
}

/**
 * Smallest and largest of `ids` and the retry ids, so the script reads one
 * XPENDING range; `ordered`: each list is in stream order, so its ends are
 * its smallest and largest.
 */
function idSpan(
  ids: string[],
  retry: RetryMark[],
  ordered: boolean,
): [string, string] | undefined {
  let low: string | undefined;
  let high: string | undefined;
  function see(id: string): void {
    if (low === undefined || high === undefined) low = high = id;
    else if (compareIds(id, high) > 0) high = id;
    else if (compareIds(id, low) < 0) low = id;
  }
  if (ordered) {
    if (ids.length > 0) {
      see(ids[0]);
      see(ids[ids.length - 1]);
    }
    if (retry.length > 0) {
      see(retry[0].id);
      see(retry[retry.length - 1].id);
    }
  } else {
    for (let i = 0; i < ids.length; i++) see(ids[i]);
    for (let i = 0; i < retry.length; i++) see(retry[i].id);
  }
  return low === undefined || high === undefined ? undefined : [low, high];
}

/**
 * Commits `ids` of the group `group.name` on `group.stream` atomically.
 *
 * @example
 * ```ts
 * import { openStream } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const result = await commitChunk(openStream(redis, "q").group("g"), ["1700000000000-0"], {
 *   outputs: [{ key: "q:out", maxLen: 10000, fields: ["type", "seen"] }],
 *   hashWrites: [["q:state:g", "AAPL", "{}"]],
 * });
 * result.status; // "ok"
 * ```
 */
export async function commitChunk(
  group: { stream: StreamRef; name: string },
  ids: string[],
  options: CommitOptions = {},
): Promise<CommitResult> {
  const { fence, deadKey = `${group.stream.key}:dead`, replay = false } = options;
  for (const output of options.outputs ?? []) {
    checkInteger(output.maxLen, { action: "commit entries", name: "outputs.maxLen", min: 1 });
  }
  // Without a fence KEYS[2] repeats the stream (never read), so every call has one layout.
  const keys = new KeyList([group.stream.key]);
  keys.keys.push(fence?.key ?? group.stream.key, deadKey);
  const retry = options.retry ?? [];
  const span = idSpan(ids, retry, options.ordered ?? false);
  const payload = {
    group: group.name,
    token: fence?.token,
    ids,
    low: span?.[0],
    high: span?.[1],
    whole: (options.wholePending && !replay) || undefined,
    ahead_n: options.readAhead?.count,
    ahead_high: options.readAhead?.lastId,
    ahead_key: options.readAheadKey === undefined ? undefined : keys.add(options.readAheadKey),
    replay: replay || undefined,
    streams: (options.outputs ?? []).map((o) => [keys.add(o.key), o.maxLen, o.fields]),
    hset: (options.hashWrites ?? []).map(([key, field, value]) => [keys.add(key), field, value]),
    hdel: (options.hashDeletes ?? []).map(([key, field]) => [keys.add(key), field]),
    dead: options.deadLetters ?? [],
    incr: (options.counters ?? []).map(([key, field, delta]) => [keys.add(key), field, delta]),
    retry: retry.map((r) => [
      r.id,
      Math.max(0, Math.round(r.idleMs)),
      r.attempted ? 1 : 0,
    ]),
  };
  // cjson turns an empty JSON array into an empty table either way.
  const run = { keys: keys.keys, args: [JSON.stringify(payload)] };
  if (options.waitReplicas === undefined) {
    return JSON.parse(String(await runScript(group.stream.redis, SCRIPTS.commit, run)));
  }
  const { reply, replicas } = await runScriptAndWait(
    group.stream.redis,
    SCRIPTS.commit,
    options.waitReplicas,
    run,
  );
  return { ...JSON.parse(String(reply)) as CommitResult, replicas };
}
