/**
 * Private: picks a drain's next chunk, and reads the one after it while a
 * chunk runs, so Redis reads while the handler works.
 *
 * @module
 */

import type { ChunkContext, Delivered } from "./_chunk.ts";
import { readNew, type ReadOutcome } from "./_read.ts";
import { parsePendingEntries } from "./pending.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** What {@linkcode nextChunk} found. */
export interface NextChunk {
  /** Entries to process, in id order. */
  items: Delivered[];
  /** How many of them were taken over from other consumers. */
  claimed: number;
  /** True when pending entries wait for their retry (or the lease was lost). */
  waiting: boolean;
  /** When the oldest pending entry is not claimable yet: ms until it is. */
  retryInMs?: number;
  /** True when the items are new entries read with nothing else pending. */
  fresh?: boolean;
  /** For a read ahead: it took nothing, since more than its chunk was pending; read again. */
  behind?: boolean;
}

/**
 * Picks the next chunk: pending entries first, in id order, as long as the
 * oldest is claimable (idle >= claimIdleMs); new entries only when nothing
 * is pending, since reading past a pending entry would break key order.
 */
export async function nextChunk(
  ctx: ChunkContext,
  request: { consumer: string; count: number; renewTtlMs: number | undefined },
): Promise<NextChunk> {
  const { queue, handler, lease } = ctx;
  const { consumer, count } = request;
  const group = queue.stream.group(handler.name);
  const read = await readNew(queue, {
    group: handler.name,
    consumer,
    count,
    lease,
    renewTtlMs: request.renewTtlMs,
  });
  if (read.status !== "pending") return fromRead(read);
  const pending = parsePendingEntries(read.pending);
  let claimable = 0;
  while (claimable < pending.length && pending[claimable].idleMs >= queue.claimIdleMs) {
    claimable += 1;
  }
  if (claimable === 0) {
    return {
      items: [],
      claimed: 0,
      waiting: true,
      retryInMs: queue.claimIdleMs - pending[0].idleMs,
    };
  }
  const deliveries = new Map(pending.map((p) => [p.id, p.deliveries + 1]));
  const claimed = await group.readFenced(consumer, lease, {
    count: claimable,
    claim: { minIdleMs: queue.claimIdleMs, start: pending[0].id },
    claimCounter: { key: queue.keys.counters, field: `claimed:${handler.name}` },
  });
  if (claimed.status === "fenced") return { items: [], claimed: 0, waiting: true };
  const items = claimed.entries.map((entry) => ({
    entry,
    deliveries: deliveries.get(entry.id) ?? queue.maxDeliveries,
  }));
  return { items, claimed: items.length, waiting: claimed.entries.length < pending.length };
}

function fromRead(read: Exclude<ReadOutcome, { status: "pending" }>): NextChunk {
  if (read.status === "fenced") return { items: [], claimed: 0, waiting: true };
  if (read.status === "behind") return { items: [], claimed: 0, waiting: false, behind: true };
  const items: Delivered[] = new Array(read.entries.length);
  for (let i = 0; i < read.entries.length; i++) {
    items[i] = { entry: read.entries[i], deliveries: 1 };
  }
  return { items, claimed: 0, waiting: false, fresh: true };
}

/**
 * Starts reading the chunk after `inFlight` (new entries the drain is about to
 * run) without waiting for its commit. The guard lets it take entries only
 * while `inFlight` is all that is pending, so nothing overtakes a pending
 * entry; the caller runs what it took only after `inFlight` committed with
 * nothing left failed, and hands it back otherwise. Never rejects: a failed
 * read ahead is a read to do again.
 */
export function readAhead(
  ctx: ChunkContext,
  request: { consumer: string; count: number; renewTtlMs: number; inFlight: Delivered[] },
): Promise<NextChunk> {
  const { inFlight } = request;
  return readNew(ctx.queue, {
    group: ctx.handler.name,
    consumer: request.consumer,
    count: request.count,
    lease: ctx.lease,
    renewTtlMs: request.renewTtlMs,
    ahead: {
      count: inFlight.length,
      firstId: inFlight[0].entry.id,
      lastId: inFlight[inFlight.length - 1].entry.id,
    },
  }).then(
    (read) =>
      read.status === "pending"
        ? { items: [], claimed: 0, waiting: false, behind: true }
        : fromRead(read),
    () => ({ items: [], claimed: 0, waiting: false, behind: true }),
  );
}

/**
 * Hands back a chunk read ahead that the drain will not run. unread.lua puts
 * it back as never read (`before`: the group's position before the read), so
 * nothing is left pending; should that not apply, the entries stay pending,
 * claimable at once, with their delivery given back. Best effort: failing
 * both, they come back after claimIdleMs, as from a killed drain.
 */
export async function giveBack(
  ctx: ChunkContext,
  chunk: { items: Delivered[]; before: string },
): Promise<void> {
  const { items, before } = chunk;
  if (items.length === 0) return;
  const { queue, handler, lease } = ctx;
  const ids = items.map((item) => item.entry.id);
  const unread = await runScript(queue.redis, SCRIPTS.unread, {
    keys: [queue.stream.key, lease.key],
    args: [lease.token, handler.name, before, ...ids],
  }).catch(() => 0);
  if (unread === 1) return;
  const retry = ids.map((id) => ({ id, idleMs: queue.claimIdleMs, attempted: false }));
  await queue.stream.group(handler.name).commit([], { retry, fence: lease }).catch(() => undefined);
}
