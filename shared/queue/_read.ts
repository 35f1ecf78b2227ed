/**
 * Private: a drain's read of new entries, as one MULTI/EXEC transaction:
 * read_guard.lua (fence, renewal, pending check), a plain XREADGROUP, and
 * read_unguard.lua. The guard parks the group at the stream's end when the
 * read must take nothing, so the read's reply never goes through Lua tables.
 *
 * @module
 */

import type { Lease } from "./lease.ts";
import type { Queue } from "./queue.ts";
import { toEntries } from "./_replies.ts";
import type { StreamEntry } from "./entry.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** What one read transaction is for. */
export interface ReadRequest {
  /** Group name. */
  group: string;
  /** Consumer that reads. */
  consumer: string;
  /** Most entries to read. */
  count: number;
  /** Lease the read is fenced by. */
  lease: Lease;
  /** Renews the lease to this TTL in the same step; undefined leaves it. */
  renewTtlMs: number | undefined;
  /**
   * Reads ahead of this chunk, still in flight: the read takes new entries
   * only when the chunk is all that is pending.
   * @default {undefined}
   */
  ahead?: InFlight;
}

/** A chunk read but not committed yet. */
export interface InFlight {
  /** Its entries. */
  count: number;
  /** Its first id. */
  firstId: string;
  /** Its last id. */
  lastId: string;
}

/**
 * What a read found: new entries, entries pending (nothing read), a lost
 * lease, or, for a read ahead, more pending than the chunk in flight.
 */
export type ReadOutcome =
  | { status: "ok"; entries: StreamEntry[] }
  | { status: "pending"; pending: unknown }
  | { status: "fenced" }
  | { status: "behind" };

/**
 * Reads new entries for `request.consumer` under the fence, or says what
 * stopped it. The transaction is the fast way; a full Redis refuses a
 * transaction with writes (EXECABORT), so then fenced_read.lua, which may run
 * under OOM, does the same in one script.
 */
export async function readNew(queue: Queue, request: ReadRequest): Promise<ReadOutcome> {
  let replies: [Error | null, unknown][];
  try {
    replies = await readTransaction(queue, request);
  } catch (error) {
    if (!(error instanceof Error) || !/^(OOM|EXECABORT)/.test(error.message)) throw error;
    // A full Redis gets no read ahead: the drain reads again after the commit.
    if (request.ahead !== undefined) return { status: "behind" };
    return await readByScript(queue, request);
  }
  const guard = replies[0][1] as [string, unknown];
  if (guard[0] === "fenced") return { status: "fenced" };
  if (guard[0] === "behind") return { status: "behind" };
  if (guard[0] === "pending") return { status: "pending", pending: guard[1] };
  const read = replies[1][1] as [string, unknown][] | null;
  return { status: "ok", entries: toEntries(read?.[0]?.[1]) };
}

async function readByScript(queue: Queue, request: ReadRequest): Promise<ReadOutcome> {
  const { group, consumer, count, lease, renewTtlMs } = request;
  const reply = await runScript(queue.redis, SCRIPTS.fencedRead, {
    keys: [queue.stream.key, lease.key, queue.stream.key],
    args: [lease.token, group, consumer, count, "", "", "", "1", renewTtlMs ?? ""],
  }) as [string, unknown];
  if (reply[0] === "fenced") return { status: "fenced" };
  if (reply[0] === "pending") return { status: "pending", pending: reply[1] };
  return { status: "ok", entries: toEntries(reply[1]) };
}

/** Runs the transaction; resolves to the replies of guard, read and unguard. */
async function readTransaction(
  queue: Queue,
  request: ReadRequest,
): Promise<[Error | null, unknown][]> {
  const { group, consumer, count, lease, renewTtlMs, ahead } = request;
  const stream = queue.stream.key;
  const hold = queue.keys.readHold(group);
  const { readGuard, readUnguard } = SCRIPTS;
  // EVAL, not EVALSHA: inside MULTI a NOSCRIPT would fail the guard alone and let the read run.
  const tx = queue.redis.multi();
  tx.call(
    "EVAL",
    readGuard.source,
    3,
    stream,
    lease.key,
    hold,
    lease.token,
    group,
    count,
    renewTtlMs ?? "",
    ...(ahead === undefined ? [] : [ahead.count, ahead.firstId, ahead.lastId, consumer]),
  );
  tx.call("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", stream, ">");
  const record = queue.keys.readAhead(group);
  const token = ahead === undefined ? "" : lease.token;
  tx.call("EVAL", readUnguard.source, 3, stream, hold, record, group, token);
  const replies = await tx.exec();
  if (replies === null) {
    throw new Error(`Cannot read group "${group}": the transaction was discarded`);
  }
  for (const [error] of replies) if (error !== null) throw error;
  return replies;
}
