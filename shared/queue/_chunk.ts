/**
 * Private: runs one chunk through a handler and commits it atomically, or
 * leaves it pending as a stall when the handler's dependency failed.
 *
 * @module
 */

import { command } from "./client.ts";
import type { CommitResult, OutputWrite, RetryMark } from "./commit.ts";
import { fieldsToRecord, type StreamEntry } from "./entry.ts";
import {
  asDependencyError,
  type DependencyError,
  errorText,
  messageOf,
  PoisonError,
} from "./errors.ts";
import { type Handler, isSink } from "./handler.ts";
import type { Lease } from "./lease.ts";
import type { Queue } from "./queue.ts";
import { readStall, type Stall } from "./stalls.ts";

/** An entry as delivered to this drain or replay. */
export interface Delivered {
  /** The entry (for a replay, the dead letter's id with the original fields). */
  entry: StreamEntry;
  /** Deliveries including this one. */
  deliveries: number;
  /** Id of the entry in the main stream when `entry` is a dead letter being replayed. */
  sourceId?: string;
}

/** Why a drain stopped on a failing dependency, and when to try again. */
export interface StalledDrain {
  /** Dependency that failed, e.g. "sqlite", "postgresql" or "redis". */
  dependency: string;
  /** The dependency's error message. */
  error: string;
  /** Back-off before the next attempt, in ms. */
  retryAfterMs: number;
}

/** What one chunk did. */
interface ChunkOutcome {
  /** Set when a dependency failed; nothing but the retry marks was committed. */
  stalled?: StalledDrain;
  /** Entries acked (processed or dead-lettered). */
  acked: number;
  /** Entries whose handler failed, left for a retry. */
  failed: number;
  /** Entries held back behind a failed entry of their key. */
  deferred: number;
  /** Entries dead-lettered. */
  deadLettered: number;
  /** Outputs written. */
  outputs: number;
  /** The commit's answer. */
  commit: CommitResult;
}

/** What the steps of one drain or replay share. */
export interface ChunkContext {
  /** The queue. */
  queue: Queue;
  /** The group's handler. */
  handler: Handler;
  /** Lease held for the group, checked by every read, claim and commit. */
  lease: Lease;
  /** True for a replay: ids are dead letters, deleted instead of acked. */
  replay?: boolean;
  /**
   * The states this drain read or committed, as stored (null: none), by key.
   * Only the lease's holder writes a group's state, so under the lease what it
   * committed is what Redis holds; later chunks skip reading it again.
   * @default {undefined}
   */
  states?: Map<string, string | null>;
}

/** How a chunk was taken. */
export interface ChunkOrigin {
  /**
   * The chunk is all the group had pending: new entries the fenced read took
   * when nothing else was pending (see `wholePending` in commit.ts).
   * @default {false}
   */
  wholePending?: boolean;
  /**
   * A read ahead of this chunk was sent before its commit, and its reply may
   * not be in: the commit goes out at once and takes the read's span from
   * the record the read left in Redis (see `readAheadKey` in commit.ts), so
   * Redis commits while the client parses the read's reply.
   * @default {false}
   */
  readAheadSent?: boolean;
}

/** A delivered entry, decoded: the item, or why it could not be decoded. */
interface Decoded {
  delivered: Delivered;
  item?: unknown;
  key?: string;
  error?: unknown;
  poison?: boolean;
}

/**
 * Idle time that makes a failed entry claimable when its retry is due: after
 * retryDelayMs x 2^(deliveries - 1), at most claimIdleMs.
 */
function retryIdleMs(queue: Queue, deliveries: number): number {
  const delay = Math.min(
    queue.claimIdleMs,
    queue.retryDelayMs * 2 ** Math.max(0, Math.min(deliveries - 1, 30)),
  );
  return queue.claimIdleMs - delay;
}

function deadLetterFields(
  delivered: Delivered,
  failure: { group: string; error: string; now: number },
): string[] {
  return [
    "group",
    failure.group,
    "source_id",
    delivered.sourceId ?? delivered.entry.id,
    "fields",
    JSON.stringify(fieldsToRecord(delivered.entry.fields)),
    "deliveries",
    String(delivered.deliveries),
    "error",
    failure.error.slice(0, 2000),
    "datetime",
    new Date(failure.now).toISOString(),
  ];
}

function decodeAll(handler: Handler, chunk: Delivered[]): Decoded[] {
  return chunk.map((delivered) => {
    try {
      const item = handler.decode(delivered.entry.fields);
      return { delivered, item, key: handler.key(item) };
    } catch (error) {
      // Whatever `decode` throws, the entry can never succeed: it is poison.
      return { delivered, error, poison: true };
    }
  });
}

/**
 * Runs one chunk and commits it atomically. Entries that cannot be decoded,
 * or that failed maxDeliveries times, go to the dead letters in the same
 * commit; other failures stay pending, and so do later entries of the same
 * key, so per-key order holds on retry.
 */
export async function processChunk(
  ctx: ChunkContext,
  chunk: Delivered[],
  origin: ChunkOrigin = {},
): Promise<ChunkOutcome> {
  const { queue, handler, lease, replay = false } = ctx;
  const { keys } = queue;
  const group = handler.name;
  const ackIds: string[] = [];
  const outputs: OutputWrite[] = [];
  const deadLetters: string[][] = [];
  const counters: [string, string, number][] = [];
  // Key -> idle time given to its failed entry: later entries of the key wait for the same retry.
  const blocked = new Map<string, number>();
  const retry: RetryMark[] = [];
  let failed = 0;
  let deferred = 0;
  let deadLettered = 0;
  const decoded = decodeAll(handler, chunk);
  function fail(d: Decoded, error: unknown): void {
    const { delivered } = d;
    if (
      d.poison || error instanceof PoisonError || delivered.deliveries >= queue.maxDeliveries ||
      replay
    ) {
      deadLetters.push(
        deadLetterFields(delivered, { group, error: errorText(error), now: queue.now() }),
      );
      ackIds.push(delivered.entry.id);
      deadLettered += 1;
      return;
    }
    failed += 1;
    const idleMs = retryIdleMs(queue, delivered.deliveries);
    retry.push({ id: delivered.entry.id, idleMs, attempted: true });
    if (d.key !== undefined && !blocked.has(d.key)) blocked.set(d.key, idleMs);
  }
  const hashWrites: [string, string, string][] = [];
  let written: [string, string, string][] = [];
  if (isSink(handler)) {
    const good = decoded.filter((d) => !d.poison);
    for (const d of decoded) if (d.poison) fail(d, d.error);
    try {
      if (good.length > 0) {
        await handler.write(good.map((d) => ({ id: d.delivered.entry.id, item: d.item })));
      }
      for (const d of good) ackIds.push(d.delivered.entry.id);
    } catch (error) {
      const dependency = asDependencyError(error);
      if (dependency !== undefined) return await stallChunk(ctx, { chunk, error: dependency });
      for (const d of good) fail(d, error);
    }
  } else {
    const stateKey = keys.state(group);
    const known = ctx.states ?? new Map<string, string | null>();
    const keySet = new Set<string>();
    for (const d of decoded) if (d.key !== undefined) keySet.add(d.key);
    const names = [...keySet];
    const missing = names.filter((name) => !known.has(name));
    if (missing.length > 0) {
      const stored = await command(queue.redis, "HMGET", stateKey, ...missing) as (string | null)[];
      missing.forEach((name, i) => known.set(name, stored[i]));
    }
    const states = new Map<string, unknown>();
    for (const name of names) {
      const raw = known.get(name);
      states.set(name, raw ? JSON.parse(raw) : undefined);
    }
    const touched = new Set<string>();
    const kinds = new Map<string, number>();
    for (const d of decoded) {
      if (d.poison || d.key === undefined) {
        fail(d, d.error);
        continue;
      }
      const blockedIdle = blocked.get(d.key);
      if (blockedIdle !== undefined) {
        deferred += 1;
        retry.push({ id: d.delivered.entry.id, idleMs: blockedIdle, attempted: false });
        continue;
      }
      try {
        const id = d.delivered.sourceId ?? d.delivered.entry.id;
        const result = handler.step(states.get(d.key), d.item, { id, now: queue.now() });
        const produced = result.outputs;
        const output = handler.output;
        if (produced !== undefined && produced.length > 0 && output === undefined) {
          throw new RangeError(`Group "${group}" returned outputs but declares no output stream`);
        }
        states.set(d.key, result.state);
        touched.add(d.key);
        if (produced !== undefined && output !== undefined) {
          for (const { fields, kind } of produced) {
            outputs.push({ key: output.key, maxLen: output.maxLen, fields });
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
        }
        ackIds.push(d.delivered.entry.id);
      } catch (error) {
        const dependency = asDependencyError(error);
        if (dependency !== undefined) return await stallChunk(ctx, { chunk, error: dependency });
        fail(d, error);
      }
    }
    for (const name of touched) hashWrites.push([stateKey, name, JSON.stringify(states.get(name))]);
    written = hashWrites;
    for (const [kind, n] of kinds) counters.push([keys.counters, `outputs:${group}:${kind}`, n]);
  }
  let commitIds = ackIds;
  const succeeded = ackIds.length - deadLettered;
  if (replay) {
    // A replay deletes every attempted dead letter; those that failed again
    // are re-added with their new error, the rest leave for good.
    commitIds = chunk.map((item) => item.entry.id);
    if (succeeded > 0) {
      counters.push([keys.deadCount, group, -succeeded], [
        keys.counters,
        `replayed:${group}`,
        succeeded,
      ]);
    }
  } else {
    if (deadLettered > 0) counters.push([keys.deadCount, group, deadLettered]);
    if (ackIds.length > 0) counters.push([keys.counters, `acked:${group}`, ackIds.length]);
  }
  if (deadLettered > 0 && !replay) {
    counters.push([keys.counters, `dead_lettered:${group}`, deadLettered]);
  }
  if (failed > 0) counters.push([keys.counters, `failed:${group}`, failed]);
  const readAheadKey = origin.readAheadSent ? keys.readAhead(group) : undefined;
  const commit = await queue.stream.group(group).commit(commitIds, {
    outputs,
    hashWrites: [...hashWrites, [keys.counters, `last_drain_ms:${group}`, String(queue.now())]],
    // Entries processed again end the group's stall, in the same atomic step.
    hashDeletes: succeeded > 0 ? [[keys.stalled, group]] : [],
    deadLetters,
    deadKey: keys.deadLetters,
    counters,
    retry,
    fence: lease,
    replay,
    wholePending: origin.wholePending,
    readAheadKey,
    // Chunks come in id order, and a step handler's acks and retry marks are added
    // in chunk order (a sink's poison entries go first).
    ordered: !isSink(handler),
    waitReplicas: queue.waitReplicas,
  });
  if (ctx.states !== undefined) {
    // Committed: Redis now holds these; not committed: the drain stops, and so does the cache.
    if (commit.status === "ok") {
      for (const [, name, json] of written) ctx.states.set(name, json);
    } else ctx.states.clear();
  }
  return { acked: ackIds.length, failed, deferred, deadLettered, outputs: outputs.length, commit };
}

/** Longest back-off after a failing dependency, in ms. */
const MAX_STALL_BACKOFF_MS = 60000;

/**
 * Leaves a chunk whose dependency failed pending, with its delivery given
 * back (a broken sink is not the entries' fault), claimable again after a
 * back-off that doubles with each stalled drain in a row; records the stall
 * in the same commit so reports show it.
 */
async function stallChunk(
  ctx: ChunkContext,
  stalled: { chunk: Delivered[]; error: DependencyError },
): Promise<ChunkOutcome> {
  const { queue, handler, lease, replay = false } = ctx;
  const { chunk, error } = stalled;
  const group = handler.name;
  const previous = await readStall(queue.redis, { key: queue.keys.stalled, group }).catch(
    () => undefined,
  );
  const failures = (previous?.failures ?? 0) + 1;
  const backoff = Math.min(
    MAX_STALL_BACKOFF_MS,
    queue.claimIdleMs,
    Math.max(1000, queue.retryDelayMs) * 2 ** Math.min(failures - 1, 10),
  );
  const at = queue.now();
  const stall: Stall = {
    dependency: error.dependency,
    error: messageOf(error).slice(0, 500),
    since: previous?.since ?? new Date(at).toISOString(),
    failures,
    retryAt: new Date(at + backoff).toISOString(),
  };
  // A replayed dead letter stays where it is; there is no delivery to give back.
  const retry = replay ? [] : chunk.map((item) => ({
    id: item.entry.id,
    idleMs: queue.claimIdleMs - backoff,
    attempted: false,
  }));
  // Best effort: when Redis itself is what failed, the entries stay pending
  // as they are and come back after claimIdleMs.
  const commit = await queue.stream.group(group).commit([], {
    hashWrites: [[queue.keys.stalled, group, JSON.stringify(stall)]],
    retry,
    fence: lease,
  }).catch(() => ({ status: "ok" as const }));
  return {
    stalled: { dependency: error.dependency, error: stall.error, retryAfterMs: backoff },
    acked: 0,
    failed: 0,
    deferred: chunk.length,
    deadLettered: 0,
    outputs: 0,
    commit,
  };
}
