/**
 * Dead letters: entries a group gave up on, kept in one stream per queue
 * with the group, the original id and fields, the deliveries and the last
 * error; listed page by page and replayed through the group's handler with
 * the same atomic commit as a drain.
 *
 * @module
 */

import { type ChunkContext, type Delivered, processChunk, type StalledDrain } from "./_chunk.ts";
import { fieldsToRecord, type StreamEntry } from "./entry.ts";
import type { Handler } from "./handler.ts";
import { acquireLease, releaseLease } from "./lease.ts";
import { leaseTtlMs, type Queue } from "./queue.ts";
import { openStream, type Stream } from "./stream.ts";

/** A dead letter, parsed. */
export interface DeadLetter {
  /** Id of the dead-letter entry. */
  id: string;
  /** Group whose handler gave up on it. */
  group: string;
  /** Id of the original entry in the stream. */
  sourceId: string;
  /** Original fields. */
  fields: Record<string, string>;
  /** Deliveries before it was dead-lettered. */
  deliveries: number;
  /** Last error. */
  error: string;
  /** When it was dead-lettered. */
  datetime: string;
}

/** Most dead letters one replay handles. */
export const MAX_REPLAY = 1000;

/**
 * Parses a dead-letter stream entry.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * import { openQueue } from "./mod.ts";
 * import { queueKeys } from "./mod.ts";
 * const queue = openQueue(redis, queueKeys("stock_quotes"));
 * const letters = (await queue.stream.range()).map(parseDeadLetter);
 * ```
 */
export function parseDeadLetter(entry: StreamEntry): DeadLetter {
  const r = fieldsToRecord(entry.fields);
  let fields: Record<string, string> = {};
  try {
    fields = JSON.parse(r.fields ?? "{}");
  } catch {
    fields = {};
  }
  return {
    id: entry.id,
    group: r.group ?? "",
    sourceId: r.source_id ?? "",
    fields,
    deliveries: Number(r.deliveries ?? 0),
    error: r.error ?? "",
    datetime: r.datetime ?? "",
  };
}

const DEAD_LETTER_PAGE = 500;

/** Options of {@linkcode findDeadLetters}. */
export interface FindDeadLettersOptions {
  /**
   * Only the dead letters of this group; undefined finds every group's.
   * @default {undefined}
   */
  group?: string;
  /**
   * Most dead letters to return.
   * @default {100}
   */
  limit?: number;
  /**
   * Newest first instead of oldest first.
   * @default {false}
   */
  newestFirst?: boolean;
}

/**
 * Reads entries of the dead-letter stream `deadLetters`, page by page, keeping
 * those of the given group, until `limit` are found or the stream ends.
 *
 * @example
 * ```ts
 * import { queueKeys } from "./mod.ts";
 * const keys = queueKeys("stock_quotes");
 * import { openStream } from "./mod.ts";
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const entries = await findDeadLetters(openStream(redis, keys.deadLetters), {
 *   group: "price-alerts",
 *   limit: 10,
 * });
 * entries.map(parseDeadLetter);
 * ```
 */
export async function findDeadLetters(
  deadLetters: Stream,
  options: FindDeadLettersOptions = {},
): Promise<StreamEntry[]> {
  const { group, limit = 100, newestFirst = false } = options;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(
      `Cannot find dead letters as 'limit' must be an integer >= 1: current value is ${limit}`,
    );
  }
  const found: StreamEntry[] = [];
  let cursor: string | undefined;
  while (found.length < limit) {
    const page = await deadLetters.range({
      reverse: newestFirst,
      count: DEAD_LETTER_PAGE,
      ...(cursor === undefined
        ? {}
        : newestFirst
        ? { end: `(${cursor}` }
        : { start: `(${cursor}` }),
    });
    for (const entry of page) {
      if (group === undefined || parseDeadLetter(entry).group === group) found.push(entry);
      if (found.length >= limit) break;
    }
    if (page.length < DEAD_LETTER_PAGE) break;
    cursor = page[page.length - 1].id;
  }
  return found;
}

/** Result of {@linkcode replayDeadLetters}. */
export interface ReplayResult {
  /** Group replayed. */
  group: string;
  /** Dead letters attempted. */
  attempted: number;
  /** Dead letters whose handler succeeded; they left the dead-letter stream. */
  succeeded: number;
  /** Dead letters that failed again; they stay with their new error. */
  failed: number;
  /** True when another invocation held the group's lease, so nothing was done. */
  busy: boolean;
  /** Set when a dependency failed: the remaining dead letters were left as they are. */
  stalled: StalledDrain | null;
}

/** Options of {@linkcode replayDeadLetters}. */
export interface ReplayOptions {
  /**
   * Dead letters to replay, as entries of the dead-letter stream.
   * @default {the group's dead letters, oldest first, at most MAX_REPLAY}
   */
  entries?: StreamEntry[];
}

/**
 * Runs a group's handler again on its dead letters (all, or the given
 * entries) with the same atomic commit as a drain: a success leaves the
 * dead-letter stream, a failure stays with its new error. The entry is not
 * re-added to the main stream, since the other groups already processed it.
 *
 * @example
 * ```ts
 * import type { StreamEntry } from "./mod.ts";
 * declare const entries: StreamEntry[];
 * import type { Handler } from "./mod.ts";
 * declare const priceAlerts: Handler;
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * import { openQueue } from "./mod.ts";
 * import { queueKeys } from "./mod.ts";
 * const queue = openQueue(redis, queueKeys("stock_quotes"));
 * const result = await replayDeadLetters(queue, priceAlerts, { entries });
 * result.succeeded;
 * ```
 */
export async function replayDeadLetters(
  queue: Queue,
  handler: Handler,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const { redis, keys } = queue;
  const group = handler.name;
  const entries = options.entries ??
    await findDeadLetters(openStream(redis, keys.deadLetters), { group, limit: MAX_REPLAY });
  const result: ReplayResult = {
    group,
    attempted: 0,
    succeeded: 0,
    failed: 0,
    busy: false,
    stalled: null,
  };
  const lease = await acquireLease(redis, keys.lease(group), { ttlMs: leaseTtlMs(queue) });
  if (lease === null) return { ...result, busy: true };
  const ctx: ChunkContext = { queue, handler, lease, replay: true };
  try {
    for (let i = 0; i < entries.length; i += 100) {
      // Each dead letter is replayed as its original entry, keyed by its
      // dead-letter id, which is what the commit deletes.
      const chunk: Delivered[] = entries.slice(i, i + 100).map((e) => {
        const letter = parseDeadLetter(e);
        return {
          entry: { id: e.id, fields: Object.entries(letter.fields).flat() },
          deliveries: letter.deliveries + 1,
          sourceId: letter.sourceId,
        };
      });
      const outcome = await processChunk(ctx, chunk);
      if (outcome.stalled !== undefined) {
        result.stalled = outcome.stalled;
        break;
      }
      if (outcome.commit.status !== "ok") break;
      result.attempted += chunk.length;
      result.succeeded += outcome.acked - outcome.deadLettered;
      result.failed += outcome.deadLettered;
    }
  } finally {
    await releaseLease(redis, lease).catch(() => false);
  }
  return result;
}
