/**
 * The thin stream module: a {@linkcode Stream} handle wraps a key on an
 * ioredis client (no I/O, no connection of its own) and speaks the stream
 * commands about it, each a few lines that read like the Redis docs.
 * {@linkcode Stream.group} gives the {@linkcode StreamGroup} handle of one
 * consumer group.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const stream = openStream(redis, "stock_quotes");
 * await stream.append([["symbol", "AAPL", "price", "190"]]);
 * const group = stream.group("price-alerts");
 * await group.ensure();
 * const entries = await group.read("worker-1", { count: 100 });
 * await group.ack(entries.map((e) => e.id));
 * ```
 *
 * @module
 */

import { command, type RedisClient } from "./client.ts";
import {
  checkBlock,
  checkCount,
  checkInteger,
  flatToRecord,
  toEntries,
  toNumberOrNull,
} from "./_replies.ts";
import { appendEntries, type AppendOptions, type AppendResult, TRIM_STEP } from "./append.ts";
import type { StreamEntry } from "./entry.ts";
import { StreamGroup } from "./group.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** Options of {@linkcode Stream.readAfter} and {@linkcode readStreams}. */
export interface ReadOptions {
  /**
   * Most entries to read (per stream), 1 to 10000.
   * @default {100}
   */
  count?: number;
  /**
   * Wait up to this many ms for new entries (0 waits for ever); undefined does not block.
   * @default {undefined}
   */
  blockMs?: number;
}

/**
 * Reads entries after a given id from several streams in one call (XREAD),
 * optionally blocking until any of them has one. Returns the entries per key;
 * a key without new entries maps to an empty list.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const read = await readStreams(redis, [["stock_quotes", "0-0"], ["stock_alerts", "0-0"]], {
 *   blockMs: 5000,
 * });
 * read.get("stock_quotes"); // [{ id: "1700000000000-0", fields: [...] }]
 * ```
 */
export async function readStreams(
  redis: RedisClient,
  streams: [key: string, afterId: string][],
  options: ReadOptions = {},
): Promise<Map<string, StreamEntry[]>> {
  const { count = 100, blockMs } = options;
  checkCount("read entries", count);
  checkBlock("read entries", blockMs);
  const args: (string | number)[] = ["COUNT", count];
  if (blockMs !== undefined) args.push("BLOCK", blockMs);
  args.push("STREAMS", ...streams.map(([key]) => key), ...streams.map(([, id]) => id));
  const reply = await command(redis, "XREAD", ...args) as [string, unknown][] | null;
  const out = new Map<string, StreamEntry[]>(streams.map(([key]) => [key, []]));
  for (const [key, entries] of reply ?? []) out.set(String(key), toEntries(entries));
  return out;
}

/** Options of {@linkcode Stream.range}. */
export interface RangeOptions {
  /**
   * First id to include ("-" for the oldest; "(id" excludes id).
   * @default {"-"}
   */
  start?: string;
  /**
   * Last id to include ("+" for the newest; "(id" excludes id).
   * @default {"+"}
   */
  end?: string;
  /**
   * Most entries to return, 1 to 10000.
   * @default {100}
   */
  count?: number;
  /**
   * Newest first (XREVRANGE) instead of oldest first.
   * @default {false}
   */
  reverse?: boolean;
}

/** Options of {@linkcode Stream.trim}. */
export interface TrimOptions {
  /**
   * Most entries one call removes. It trims in steps of at most TRIM_STEP
   * entries, one script each, so Redis is never blocked for long.
   * @default {10000}
   */
  limit?: number;
}

/** XINFO STREAM, parsed. */
export interface StreamInfo {
  /** Entries in the stream. */
  length: number;
  /** Id of the first entry, or null. */
  firstId: string | null;
  /** Id of the last entry generated. */
  lastGeneratedId: string;
  /** Entries ever added (Redis 7). */
  entriesAdded: number | null;
  /** Consumer groups on the stream. */
  groups: number;
}

/** One consumer group as XINFO GROUPS reports it. */
export interface GroupInfo {
  /** Group name. */
  name: string;
  /** Consumers in the group. */
  consumers: number;
  /** Entries delivered and not acknowledged. */
  pending: number;
  /** Last id delivered to the group. */
  lastDeliveredId: string;
  /** Entries the group has read (Redis 7), or null. */
  entriesRead: number | null;
  /** Entries not yet delivered to the group (Redis 7), or null when Redis cannot tell. */
  lag: number | null;
}

/**
 * Wraps the stream `key` on `redis` in a handle; sends no command.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * const stream = openStream(redis, "stock_quotes");
 * const info = await stream.info();
 * ```
 */
export function openStream(redis: RedisClient, key: string): Stream {
  return new Stream(redis, key);
}

/** A stream on one client: every command this module speaks about that key. */
export class Stream {
  /** Client the commands go to. */
  readonly redis: RedisClient;
  /** Stream key. */
  readonly key: string;

  /**
   * Creates the handle; {@linkcode openStream} is the usual way.
   *
   * @example
   * ```ts
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * const stream = new Stream(redis, "stock_quotes");
   * ```
   */
  constructor(redis: RedisClient, key: string) {
    this.redis = redis;
    this.key = key;
  }

  /**
   * The consumer group `name` of this stream, as a handle; sends no command.
   *
   * @example
   * ```ts
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * const group = openStream(redis, "stock_quotes").group("price-alerts");
   * ```
   */
  group(name: string): StreamGroup {
    return new StreamGroup(this, name);
  }

  /**
   * Appends a batch of entries in one round trip and one atomic step,
   * optionally guarded, counted, recorded for idempotency and trimmed safely.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const result = await stream.append([["symbol", "AAPL"]], { maxLen: 100000 });
   * result.firstId; // "1700000000000-0"
   * ```
   */
  append(entries: string[][], options: AppendOptions = {}): Promise<AppendResult> {
    return appendEntries(this.redis, this.key, entries, options);
  }

  /**
   * Counts the entries (XLEN); 0 when the stream does not exist.
   *
   * @example
   * ```ts
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * const length = await openStream(redis, "stock_alerts").length();
   * ```
   */
  async length(): Promise<number> {
    return Number(await command(this.redis, "XLEN", this.key));
  }

  /**
   * Reads XINFO STREAM (not FULL, so its cost does not grow with the stream).
   * Returns null when the stream does not exist.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const info = await stream.info();
   * info?.length;
   * ```
   */
  async info(): Promise<StreamInfo | null> {
    let reply: unknown;
    try {
      reply = await command(this.redis, "XINFO", "STREAM", this.key);
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return null;
      throw error;
    }
    const r = flatToRecord(reply);
    const first = r["first-entry"];
    return {
      length: Number(r.length),
      firstId: Array.isArray(first) ? String(first[0]) : null,
      lastGeneratedId: String(r["last-generated-id"]),
      entriesAdded: toNumberOrNull(r["entries-added"]),
      groups: Number(r.groups),
    };
  }

  /**
   * Lists the consumer groups of the stream (XINFO GROUPS); empty when the stream does not exist.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const groups = await stream.groups();
   * groups.map((g) => [g.name, g.lag]);
   * ```
   */
  async groups(): Promise<GroupInfo[]> {
    let reply: unknown;
    try {
      reply = await command(this.redis, "XINFO", "GROUPS", this.key);
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return [];
      throw error;
    }
    return (reply as unknown[]).map((flat) => {
      const r = flatToRecord(flat);
      return {
        name: String(r.name),
        consumers: Number(r.consumers),
        pending: Number(r.pending),
        lastDeliveredId: String(r["last-delivered-id"]),
        entriesRead: toNumberOrNull(r["entries-read"]),
        lag: toNumberOrNull(r.lag),
      };
    });
  }

  /**
   * Reads entries between two ids inclusive (XRANGE), or newest first with `reverse`.
   *
   * @example
   * ```ts
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * const latest = await openStream(redis, "stock_alerts").range({ reverse: true, count: 20 });
   * ```
   */
  async range(options: RangeOptions = {}): Promise<StreamEntry[]> {
    const { start = "-", end = "+", count = 100, reverse = false } = options;
    checkCount("read entries", count);
    const reply = reverse
      ? await command(this.redis, "XREVRANGE", this.key, end, start, "COUNT", count)
      : await command(this.redis, "XRANGE", this.key, start, end, "COUNT", count);
    return toEntries(reply);
  }

  /**
   * Reads entries after `afterId` without a group (XREAD), optionally blocking.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const entries = await stream.readAfter("0", { count: 10 });
   * ```
   */
  async readAfter(afterId: string, options: ReadOptions = {}): Promise<StreamEntry[]> {
    const { count = 100, blockMs } = options;
    checkCount("read entries", count);
    checkBlock("read entries", blockMs);
    const args: (string | number)[] = ["COUNT", count];
    if (blockMs !== undefined) args.push("BLOCK", blockMs);
    args.push("STREAMS", this.key, afterId);
    const reply = await command(this.redis, "XREAD", ...args) as [string, unknown][] | null;
    if (!reply || reply.length === 0) return [];
    return toEntries(reply[0][1]);
  }

  /**
   * Trims the oldest entries beyond `maxLen`, but never one that some group has
   * not yet read and acknowledged (XTRIM MINID below the oldest needed entry).
   * At most `limit` entries go per call so the cost stays bounded.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const trimmed = await stream.trim(100000);
   * ```
   */
  async trim(maxLen: number, options: TrimOptions = {}): Promise<number> {
    const { limit = 10000 } = options;
    checkInteger(maxLen, { action: "trim the stream", name: "maxLen", min: 0 });
    checkInteger(limit, { action: "trim the stream", name: "limit", min: 1 });
    let trimmed = 0;
    while (trimmed < limit) {
      const step = Math.min(TRIM_STEP, limit - trimmed);
      const removed = Number(
        await runScript(this.redis, SCRIPTS.trim, { keys: [this.key], args: [maxLen, step] }),
      );
      trimmed += removed;
      if (removed < step) break;
    }
    return trimmed;
  }

  /**
   * Returns the smallest id that some group still needs (its oldest pending
   * entry or the one after its last delivered), or null without groups.
   *
   * @example
   * ```ts
   * declare const stream: Stream;
   * const needed = await stream.oldestNeededId();
   * ```
   */
  async oldestNeededId(): Promise<string | null> {
    const reply = await runScript(this.redis, SCRIPTS.oldestNeeded, { keys: [this.key] });
    return reply ? String(reply) : null;
  }
}
