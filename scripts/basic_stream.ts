/**
 * The Redis Streams basics, step by step, on a scratch stream that is deleted
 * at the end: XADD, XREAD, consumer groups (XGROUP CREATE, XREADGROUP, XACK),
 * XPENDING, XTRIM and a blocking XREAD woken by a second connection.
 *
 * Run with `deno task example:basic`; REDIS_URL defaults to redis://127.0.0.1:6379.
 *
 * @module
 */

import { Redis } from "ioredis";
import { decodeQuote, encodeQuote, type Quote } from "../shared/market/quotes.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";

/** Options for {@linkcode runBasicExample}. */
export interface BasicExampleOptions {
  /**
   * Scratch stream key; it is deleted at the end, so it must not hold real data.
   * @default {`tickstream:example:<random>`}
   */
  streamKey?: string;
  /**
   * Where each step's output goes.
   * @default {console.log}
   */
  log?: (line: string) => void;
  /**
   * How long the blocking XREAD waits at most, in milliseconds.
   * @default {2000}
   */
  blockMs?: number;
  /**
   * Delay before the second connection adds the entry that wakes the blocking XREAD, in milliseconds.
   * @default {200}
   */
  wakeDelayMs?: number;
}

/** What {@linkcode runBasicExample} observed at each step. */
export interface BasicExampleResult {
  /** The scratch stream key used (already deleted). */
  streamKey: string;
  /** IDs returned by XADD, in order. */
  addedIds: string[];
  /** Quotes read back by XREAD from ID 0. */
  readQuotes: Quote[];
  /** IDs delivered to the consumer by XREADGROUP. */
  groupReadIds: string[];
  /** Number of entries XACK acknowledged. */
  acked: number;
  /** Pending count reported by XPENDING before the XACK. */
  pendingBeforeAck: number;
  /** Pending count reported by XPENDING after the XACK. */
  pendingAfterAck: number;
  /** Stream length after XTRIM. */
  lengthAfterTrim: number;
  /** Quote delivered to the blocking XREAD, or null if it timed out. */
  wokenBy: Quote | null;
  /** How long the blocking XREAD waited, in milliseconds. */
  blockedMs: number;
}

type StreamEntries = [id: string, fields: string[]][];

const GROUP = "example-group";
const CONSUMER = "example-consumer";
const TRIM_TO = 2;

function pendingCount(summary: unknown[]): number {
  // The summary form is [count, smallest id, greatest id, [[consumer, count], ...]].
  return Number(summary[0] ?? 0);
}

function entriesOf(reply: [key: string, entries: StreamEntries][] | null): StreamEntries {
  return reply?.[0]?.[1] ?? [];
}

function describe(quote: Quote): string {
  return `${quote.symbol} ${quote.price.toFixed(2)} (${
    (quote.changePercent ?? 0).toFixed(2)
  }%) vol ${quote.volume}`;
}

/** Walks through the Redis Streams basics on a scratch stream and deletes it afterwards. */
export async function runBasicExample(
  redis: Redis,
  options: BasicExampleOptions = {},
): Promise<BasicExampleResult> {
  const streamKey = options.streamKey ?? `tickstream:example:${crypto.randomUUID().slice(0, 8)}`;
  const log = options.log ?? console.log;
  const blockMs = options.blockMs ?? 2000;
  const wakeDelayMs = options.wakeDelayMs ?? 200;
  if (!Number.isInteger(blockMs) || blockMs < 1) {
    throw new RangeError(
      `Cannot run the example as 'blockMs' must be a positive integer: current value is ${blockMs}`,
    );
  }
  if (!Number.isFinite(wakeDelayMs) || wakeDelayMs < 0) {
    throw new RangeError(
      `Cannot run the example as 'wakeDelayMs' must be a number >= 0: current value is ${wakeDelayMs}`,
    );
  }

  const { quotes, state } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "MSFT", "TSLA"],
    ticks: 1,
    now: Date.now(),
    random: createRandom(Date.now()),
  });
  // A second connection, because the first one is busy while it blocks.
  const writer = redis.duplicate();
  // Connection errors also reject the commands that hit them; without a
  // listener ioredis would print every reconnect attempt as unhandled.
  writer.on("error", () => {});
  try {
    log(`1. XADD ${quotes.length} quotes to ${streamKey}`);
    const addedIds: string[] = [];
    for (const quote of quotes) {
      const id = await redis.xadd(streamKey, "*", ...encodeQuote(quote));
      if (id === null) throw new Error(`XADD to ${streamKey} returned no ID`);
      addedIds.push(id);
      log(`   ${id}  ${describe(quote)}`);
    }

    log(`2. XREAD COUNT 10 STREAMS ${streamKey} 0`);
    const readEntries = entriesOf(await redis.xread("COUNT", 10, "STREAMS", streamKey, "0"));
    const readQuotes = readEntries.map(([id, fields]) => {
      const quote = decodeQuote(fields);
      log(`   ${id}  ${describe(quote)}`);
      return quote;
    });

    log(`3. XGROUP CREATE ${streamKey} ${GROUP} 0`);
    // ID 0 so the group also sees the entries added before it existed.
    await redis.xgroup("CREATE", streamKey, GROUP, "0");

    log(`4. XREADGROUP GROUP ${GROUP} ${CONSUMER} COUNT 10 STREAMS ${streamKey} >`);
    const groupEntries = entriesOf(
      (await redis.xreadgroup(
        "GROUP",
        GROUP,
        CONSUMER,
        "COUNT",
        10,
        "STREAMS",
        streamKey,
        ">",
      )) as [string, StreamEntries][] | null,
    );
    const groupReadIds = groupEntries.map(([id]) => id);
    log(`   delivered ${groupReadIds.join(", ")}`);

    log(`5. XPENDING ${streamKey} ${GROUP}`);
    const before = await redis.xpending(streamKey, GROUP);
    const pendingBeforeAck = pendingCount(before);
    log(`   ${pendingBeforeAck} pending, from ${before[1]} to ${before[2]}`);

    log(`6. XACK ${streamKey} ${GROUP} ${groupReadIds.join(" ")}`);
    const acked = groupReadIds.length ? await redis.xack(streamKey, GROUP, ...groupReadIds) : 0;
    const pendingAfterAck = pendingCount(await redis.xpending(streamKey, GROUP));
    log(`   acknowledged ${acked}, ${pendingAfterAck} still pending`);

    log(`7. XTRIM ${streamKey} MAXLEN ${TRIM_TO}`);
    // Exact trim: "~" only drops whole radix tree nodes, so a tiny stream would keep everything.
    const trimmed = await redis.xtrim(streamKey, "MAXLEN", TRIM_TO);
    const lengthAfterTrim = await redis.xlen(streamKey);
    log(`   removed ${trimmed}, length now ${lengthAfterTrim}`);

    // Block after the last ID rather than "$", so an entry added before the
    // read reaches the server is still delivered instead of being missed.
    const lastId = addedIds.at(-1)!;
    log(`8. XREAD BLOCK ${blockMs} STREAMS ${streamKey} ${lastId} (woken by a second connection)`);
    const [wakeQuote] = simulateTicks(state, {
      symbols: ["AAPL"],
      ticks: 1,
      now: Date.now(),
      random: createRandom(Date.now() + 1),
    }).quotes;
    const started = performance.now();
    const blocking = redis.xread("BLOCK", blockMs, "STREAMS", streamKey, lastId);
    const wake = new Promise<string | null>((resolve, reject) => {
      setTimeout(() => {
        writer.xadd(streamKey, "*", ...encodeQuote(wakeQuote)).then(resolve, reject);
      }, wakeDelayMs);
    });
    const [blockedReply, wakeId] = await Promise.all([blocking, wake]);
    const blockedMs = Math.round(performance.now() - started);
    const woken = entriesOf(blockedReply)[0];
    const wokenBy = woken ? decodeQuote(woken[1]) : null;
    log(
      wokenBy
        ? `   woke after ${blockedMs} ms with ${woken[0]}  ${
          describe(wokenBy)
        } (added as ${wakeId})`
        : `   timed out after ${blockedMs} ms`,
    );

    return {
      streamKey,
      addedIds,
      readQuotes,
      groupReadIds,
      acked,
      pendingBeforeAck,
      pendingAfterAck,
      lengthAfterTrim,
      wokenBy,
      blockedMs,
    };
  } finally {
    // Deleting the key also removes the consumer group and its pending list.
    // A failed cleanup is only logged so it does not hide the error that got us here.
    await redis.del(streamKey).then(
      () => log(`9. DEL ${streamKey}`),
      (error) => log(`9. DEL ${streamKey} failed: ${messageOf(error)}`),
    );
    await writer.quit().catch(() => writer.disconnect());
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

if (import.meta.main) {
  const url = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
  console.log(`Connecting to ${redactedUrl(url)}`);
  // Fail fast instead of retrying forever when Redis is not running.
  const redis = new Redis(url, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 3 ? null : 200),
  });
  // Kept to explain the failure: the command itself only says the connection closed.
  let connectionError: unknown;
  redis.on("error", (error) => connectionError = error);
  try {
    await runBasicExample(redis);
    await redis.quit();
  } catch (error) {
    const cause = connectionError ? ` (${messageOf(connectionError)})` : "";
    console.error(`Basic stream example failed: ${messageOf(error)}${cause}`);
    redis.disconnect();
    Deno.exitCode = 1;
  }
}
