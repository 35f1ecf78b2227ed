/**
 * One consumer group of a stream: ensure, read, fenced read, claim, ack,
 * pending, consumers and the removal of idle ones. The atomic commit of a
 * processed chunk lives in commit.ts.
 *
 * @module
 */

import { command, type RedisClient } from "./client.ts";
import { checkBlock, checkCount, checkInteger, flatToRecord, toEntries } from "./_replies.ts";
import type { StreamEntry } from "./entry.ts";
import { commitChunk, type CommitOptions, type CommitResult } from "./commit.ts";
import type { Fence } from "./lease.ts";
import {
  type ConsumerInfo,
  type DeleteIdleConsumersOptions,
  parsePendingEntries,
  parsePendingSummary,
  type PendingEntriesOptions,
  type PendingEntry,
  type PendingSummary,
} from "./pending.ts";
import { runScript, SCRIPTS } from "./scripts.ts";

/** What a group handle needs of its stream: the client and the key. */
export interface StreamRef {
  /** Client the commands go to. */
  readonly redis: RedisClient;
  /** Stream key. */
  readonly key: string;
}

/** Options of {@linkcode StreamGroup.ensure}. */
export interface EnsureGroupOptions {
  /**
   * Id the group starts after; "0" so entries added before the first read are not missed.
   * @default {"0"}
   */
  startId?: string;
}

/** Options of {@linkcode StreamGroup.read}. */
export interface ReadGroupOptions {
  /**
   * Most entries to read, 1 to 10000.
   * @default {100}
   */
  count?: number;
  /**
   * Wait up to this many ms for new entries (0 waits for ever); undefined does not block.
   * @default {undefined}
   */
  blockMs?: number;
  /**
   * Id to read from: ">" for new entries, "0" for this consumer's own pending ones.
   * @default {">"}
   */
  from?: string;
}

/** Options of {@linkcode StreamGroup.readFenced}. */
export interface ReadFencedOptions {
  /**
   * Most entries to read or claim, 1 to 10000.
   * @default {100}
   */
  count?: number;
  /**
   * Claim entries pending at least `minIdleMs` from `start` (XAUTOCLAIM)
   * instead of reading new ones (XREADGROUP ">").
   * @default {undefined}
   */
  claim?: { minIdleMs: number; start: string };
  /**
   * Hash field incremented, in the same step, by the number of entries claimed.
   * @default {undefined}
   */
  claimCounter?: { key: string; field: string };
}

/** Result of {@linkcode StreamGroup.readFenced}. */
export interface FencedRead {
  /** "ok", or "fenced" when the lease no longer held its token and nothing was read. */
  status: "ok" | "fenced";
  /** Entries now delivered to the consumer. */
  entries: StreamEntry[];
}

/** Options of {@linkcode StreamGroup.claim}. */
export interface ClaimOptions {
  /**
   * Id to scan pending entries from; pass the previous call's `next` to go on.
   * @default {"0-0"}
   */
  start?: string;
  /**
   * Most entries to claim, 1 to 10000.
   * @default {100}
   */
  count?: number;
}

/** Result of {@linkcode StreamGroup.claim}. */
export interface ClaimResult {
  /** Cursor for the next call; "0-0" when the scan is complete. */
  next: string;
  /** Entries now owned by the claiming consumer. */
  entries: StreamEntry[];
  /** Ids that were pending but no longer exist in the stream (removed from the PEL by Redis). */
  deleted: string[];
}

/** A consumer group of a stream: reads, claims, acks and commits for its consumers. */
export class StreamGroup {
  /** Stream the group belongs to. */
  readonly stream: StreamRef;
  /** Group name. */
  readonly name: string;

  /**
   * Creates the handle; {@linkcode Stream.group} is the usual way.
   *
   * @example
   * ```ts
   * import { openStream } from "./mod.ts";
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * const group = new StreamGroup(openStream(redis, "stock_quotes"), "price-alerts");
   * ```
   */
  constructor(stream: StreamRef, name: string) {
    this.stream = stream;
    this.name = name;
  }

  /**
   * Creates the group if it does not exist (MKSTREAM; BUSYGROUP ignored); true when created.
   *
   * @example
   * ```ts
   * import { openStream } from "./mod.ts";
   * import { Redis } from "ioredis";
   * const redis = new Redis();
   * await openStream(redis, "stock_quotes").group("price-alerts").ensure(); // true when created
   * ```
   */
  async ensure(options: EnsureGroupOptions = {}): Promise<boolean> {
    const { startId = "0" } = options;
    try {
      await command(
        this.stream.redis,
        "XGROUP",
        "CREATE",
        this.stream.key,
        this.name,
        startId,
        "MKSTREAM",
      );
      return true;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("BUSYGROUP")) return false;
      // A full Redis refuses XGROUP CREATE before it looks for the group, and
      // a drain of an existing group must still run so it can free memory.
      if (error instanceof Error && error.message.startsWith("OOM")) {
        const groups = await command(
          this.stream.redis,
          "XINFO",
          "GROUPS",
          this.stream.key,
        ) as unknown[];
        if (groups.some((g) => flatToRecord(g).name === this.name)) return false;
      }
      throw error;
    }
  }

  /**
   * Reads one chunk for `consumer` (XREADGROUP).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const entries = await group.read("worker-1", { count: 100 });
   * ```
   */
  async read(consumer: string, options: ReadGroupOptions = {}): Promise<StreamEntry[]> {
    const { count = 100, blockMs, from = ">" } = options;
    checkCount("read entries", count);
    checkBlock("read entries", blockMs);
    const args: (string | number)[] = ["GROUP", this.name, consumer, "COUNT", count];
    if (blockMs !== undefined) args.push("BLOCK", blockMs);
    args.push("STREAMS", this.stream.key, from);
    const reply = await command(this.stream.redis, "XREADGROUP", ...args) as
      | [string, unknown][]
      | null;
    if (!reply || reply.length === 0) return [];
    return toEntries(reply[0][1]);
  }

  /**
   * Reads new entries, or claims pending ones, for `consumer` only while
   * `fence` holds its token, in one atomic step. A holder that lost its lease
   * is handed nothing, so it cannot take entries ahead of the new holder and
   * break their order.
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * import type { Lease } from "./mod.ts";
   * declare const lease: Lease;
   * const read = await group.readFenced("worker-1", lease, { count: 100 });
   * read.status; // "ok", or "fenced" when the lease was lost
   * ```
   */
  async readFenced(
    consumer: string,
    fence: Fence,
    options: ReadFencedOptions = {},
  ): Promise<FencedRead> {
    const { count = 100, claim } = options;
    checkCount("read entries", count);
    if (claim) {
      checkInteger(claim.minIdleMs, { action: "read entries", name: "claim.minIdleMs", min: 0 });
    }
    const counter = options.claimCounter;
    const reply = await runScript(this.stream.redis, SCRIPTS.fencedRead, {
      keys: [this.stream.key, fence.key, counter?.key ?? this.stream.key],
      args: [
        fence.token,
        this.name,
        consumer,
        count,
        claim ? claim.minIdleMs : "",
        claim ? claim.start : "",
        counter?.field ?? "",
      ],
    }) as unknown[];
    if (reply[0] !== "ok") return { status: "fenced", entries: [] };
    return { status: "ok", entries: toEntries(reply[1]) };
  }

  /**
   * Takes over, for `consumer`, entries pending longer than `minIdleMs` (XAUTOCLAIM).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const { entries, next } = await group.claim("worker-2", 60000);
   * ```
   */
  async claim(
    consumer: string,
    minIdleMs: number,
    options: ClaimOptions = {},
  ): Promise<ClaimResult> {
    const { start = "0-0", count = 100 } = options;
    checkInteger(minIdleMs, { action: "claim entries", name: "minIdleMs", min: 0 });
    checkCount("claim entries", count);
    const reply = await command(
      this.stream.redis,
      "XAUTOCLAIM",
      this.stream.key,
      this.name,
      consumer,
      minIdleMs,
      start,
      "COUNT",
      count,
    ) as unknown[];
    return {
      next: String(reply[0]),
      entries: toEntries(reply[1]),
      deleted: Array.isArray(reply[2]) ? reply[2].map(String) : [],
    };
  }

  /**
   * Acknowledges a batch of ids in one call (XACK); returns how many were pending.
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * await group.ack(["1700000000000-0"]); // 1
   * ```
   */
  async ack(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return Number(await command(this.stream.redis, "XACK", this.stream.key, this.name, ...ids));
  }

  /**
   * Summarises the group's pending entries (XPENDING key group).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const { count } = await group.pending();
   * ```
   */
  async pending(): Promise<PendingSummary> {
    const reply = await command(
      this.stream.redis,
      "XPENDING",
      this.stream.key,
      this.name,
    );
    return parsePendingSummary(reply);
  }

  /**
   * Lists pending entries in id order (XPENDING extended form).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const [oldest] = await group.pendingEntries({ count: 1 });
   * ```
   */
  async pendingEntries(options: PendingEntriesOptions = {}): Promise<PendingEntry[]> {
    const { start = "-", end = "+", count = 100, consumer } = options;
    checkCount("list pending entries", count);
    const args: (string | number)[] = [this.stream.key, this.name, start, end, count];
    if (consumer !== undefined) args.push(consumer);
    return parsePendingEntries(await command(this.stream.redis, "XPENDING", ...args));
  }

  /**
   * Lists the consumers of the group (XINFO CONSUMERS).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const consumers = await group.consumers();
   * ```
   */
  async consumers(): Promise<ConsumerInfo[]> {
    const reply = await command(
      this.stream.redis,
      "XINFO",
      "CONSUMERS",
      this.stream.key,
      this.name,
    ) as unknown[];
    return reply.map((flat) => {
      const r = flatToRecord(flat);
      return { name: String(r.name), pending: Number(r.pending), idleMs: Number(r.idle) };
    });
  }

  /**
   * Removes consumers idle longer than `idleMs` that hold no pending entry,
   * checked and deleted atomically: DELCONSUMER would drop a consumer's pending
   * entries from the group, so one that holds any is never removed.
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * const removed = await group.deleteIdleConsumers(3600000, { keep: "worker-1" });
   * ```
   */
  async deleteIdleConsumers(
    idleMs: number,
    options: DeleteIdleConsumersOptions = {},
  ): Promise<string[]> {
    checkInteger(idleMs, { action: "delete idle consumers", name: "idleMs", min: 0 });
    const reply = await runScript(this.stream.redis, SCRIPTS.deleteIdleConsumers, {
      keys: [this.stream.key],
      args: [this.name, idleMs, options.keep ?? ""],
    });
    return (reply as string[]).map(String);
  }

  /**
   * Commits a processed chunk atomically (see {@linkcode commitChunk}).
   *
   * @example
   * ```ts
   * declare const group: StreamGroup;
   * import type { Lease } from "./mod.ts";
   * declare const lease: Lease;
   * const result = await group.commit(["1700000000000-0"], { fence: lease });
   * result.status; // "ok"
   * ```
   */
  commit(ids: string[], options: CommitOptions = {}): Promise<CommitResult> {
    return commitChunk(this, ids, options);
  }
}
