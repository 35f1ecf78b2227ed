/**
 * The alert record, encoded and decoded in one place: an entry of the alerts
 * stream with the fields type, symbol, message, value, source_id, group,
 * datetime and quote_timestamp, written by the analysis groups in their
 * commit and read by the public API and the live feed.
 *
 * @module
 */

import type { AlertDraft } from "./analysis.ts";
import { fieldsToRecord } from "./quotes.ts";
import type { StreamEntry } from "../queue/mod.ts";

/** Where an alert came from and when it is written. */
export interface AlertOrigin {
  /** Id of the quote in the quote stream. */
  sourceId: string;
  /** Group whose step produced it. */
  group: string;
  /** Time of writing, in ms since the epoch. */
  now: number;
  /** Market time of the quote, in Unix seconds. */
  quoteTimestamp: number;
}

/**
 * The alerts-stream entry of `alert`, as a flat field/value list.
 *
 * @example
 * ```ts
 * import type { AlertDraft } from "./analysis.ts";
 * declare const draft: AlertDraft;
 * encodeAlert(draft, { sourceId: "1-0", group: "price-alerts", now: Date.now(), quoteTimestamp: 0 });
 * ```
 */
export function encodeAlert(alert: AlertDraft, origin: AlertOrigin): string[] {
  return [
    "type",
    alert.type,
    "symbol",
    alert.symbol,
    "message",
    alert.message,
    "value",
    String(Number(alert.value.toFixed(6))),
    "source_id",
    origin.sourceId,
    "group",
    origin.group,
    "datetime",
    new Date(origin.now).toISOString(),
    "quote_timestamp",
    String(origin.quoteTimestamp),
  ];
}

/** One alert, as JSON. */
export interface AlertJson {
  /** Entry id in the alerts stream. */
  id: string;
  /** Kind of alert, e.g. "price_move". */
  type: string;
  /** Symbol it is about. */
  symbol: string;
  /** Human readable sentence. */
  message: string;
  /** The number that fired it, or null when missing. */
  value: number | null;
  /** Id of the quote that fired it. */
  source_id: string;
  /** Consumer group (analysis) that fired it. */
  group: string;
  /** When it was written (wall time of the drain), ISO 8601. */
  datetime: string;
  /** Market time of the quote that fired it, in Unix seconds; null on older alerts. */
  quote_timestamp: number | null;
}

/** Turns an alerts-stream entry into its JSON form; missing fields become "" (value: null). */
export function alertToJson(entry: StreamEntry): AlertJson {
  const r = fieldsToRecord(entry.fields);
  const value = r.value === undefined || r.value === "" ? NaN : Number(r.value);
  const quoteTime = r.quote_timestamp === undefined || r.quote_timestamp === ""
    ? NaN
    : Number(r.quote_timestamp);
  return {
    id: entry.id,
    type: r.type ?? "",
    symbol: r.symbol ?? "",
    message: r.message ?? "",
    value: Number.isFinite(value) ? value : null,
    source_id: r.source_id ?? "",
    group: r.group ?? "",
    datetime: r.datetime ?? "",
    quote_timestamp: Number.isFinite(quoteTime) ? quoteTime : null,
  };
}
