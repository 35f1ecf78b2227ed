/**
 * What the live feed reads and sends: the streams of every partition in
 * cursor order, and the events made of their entries, merged in time order.
 *
 * @module
 */

import type { Config } from "../config.ts";
import { alertToJson } from "../market/alerts.ts";
import { decodeQuote, quoteToJson } from "../market/quotes.ts";
import { partitionIndexes } from "../partitions.ts";
import type { StreamEntry } from "../queue/mod.ts";
import { allStockKeys } from "../stock_queue.ts";
import { cursorIdText, type EntryId, isAfter, parseEntryId, ZERO } from "./cursor.ts";

/** Kind of a live event. */
export type LiveKind = "quote" | "alert";

/** One stream the feed reads; `index` is its place in a cursor. */
export interface LiveStream {
  /** Place in a cursor: 2 * partition, + 1 for alerts. */
  readonly index: number;
  /** Quotes or alerts. */
  readonly kind: LiveKind;
  /** Partition of the stream. */
  readonly partition: number;
  /** Stream key. */
  readonly key: string;
}

/** One event as the hub fans it out. */
export interface LiveEvent {
  /** Quote or alert. */
  kind: LiveKind;
  /** Cursor index of the stream it came from. */
  stream: number;
  /** Entry id as numbers. */
  at: EntryId;
  /** Entry id as this layout's cursor writes it. */
  idText: string;
  /** Symbol, for filters. */
  symbol: string;
  /** JSON payload, serialised once for every subscriber. */
  data: string;
}

/** One event as a subscriber delivers it, stamped with its cursor. */
export interface Delivery {
  /** "quote" or "alert". */
  kind: LiveKind;
  /** Cursor after this event, the SSE id. */
  id: string;
  /** JSON payload: the quote with its entry id, or the alert. */
  data: string;
}

/** Every stream of `config`'s partitions in cursor order: `[q0, a0, q1, a1, ...]`. */
export function liveStreams(
  config: Pick<
    Config,
    "streamKey" | "deadLetterKey" | "alertsKey" | "streamPartitions" | "redisClusterNodes"
  >,
): LiveStream[] {
  const keys = allStockKeys(config);
  return partitionIndexes(config).flatMap((partition) => [
    { index: 2 * partition, kind: "quote" as const, partition, key: keys[partition].stream },
    { index: 2 * partition + 1, kind: "alert" as const, partition, key: keys[partition].alerts },
  ]);
}

/** The id of `entry` as numbers (ZERO for a malformed one, which Redis never writes). */
export function idOf(entry: StreamEntry): EntryId {
  return parseEntryId(entry.id) ?? ZERO;
}

/** The event of one entry of `stream`, or null for a quote the feed cannot decode. */
export function toEvent(stream: LiveStream, entry: StreamEntry, streams: number): LiveEvent | null {
  const at = idOf(entry);
  const idText = cursorIdText(at, streams);
  if (stream.kind === "alert") {
    const alert = alertToJson(entry);
    return {
      kind: "alert",
      stream: stream.index,
      at,
      idText,
      symbol: alert.symbol,
      data: JSON.stringify(alert),
    };
  }
  try {
    const quote = decodeQuote(entry.fields);
    return {
      kind: "quote",
      stream: stream.index,
      at,
      idText,
      symbol: quote.symbol,
      data: JSON.stringify(quoteToJson(quote, { id: entry.id })),
    };
  } catch {
    // The quote-store and analysis groups dead-letter it; the feed skips it.
    return null;
  }
}

/**
 * Merges the entries read from several streams (`reads[i]` from `streams[i]`)
 * into events in id (time) order; ties keep cursor order, quotes first.
 */
export function mergeEvents(
  streams: readonly LiveStream[],
  reads: readonly StreamEntry[][],
  total: number,
): LiveEvent[] {
  const out: LiveEvent[] = [];
  for (let i = 0; i < streams.length; i++) {
    for (const entry of reads[i] ?? []) {
      const event = toEvent(streams[i], entry, total);
      if (event !== null) out.push(event);
    }
  }
  // Array.prototype.sort is stable, and each stream's entries come in order.
  return out.sort((a, b) =>
    isAfter(a.at, b.at) ? 1 : isAfter(b.at, a.at) ? -1 : a.stream - b.stream
  );
}
