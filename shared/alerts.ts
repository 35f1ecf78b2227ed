/**
 * The alert as the public API and the live feed show it: an entry of the
 * alerts stream, which the drain engine writes with the fields type, symbol,
 * message, value, source_id, group and datetime.
 *
 * @module
 */

import { fieldsToRecord } from "./quotes.ts";
import type { StreamEntry } from "./stream.ts";

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
  /** When it was written, ISO 8601. */
  datetime: string;
}

/** Turns an alerts-stream entry into its JSON form; missing fields become "" (value: null). */
export function alertToJson(entry: StreamEntry): AlertJson {
  const r = fieldsToRecord(entry.fields);
  const value = r.value === undefined || r.value === "" ? NaN : Number(r.value);
  return {
    id: entry.id,
    type: r.type ?? "",
    symbol: r.symbol ?? "",
    message: r.message ?? "",
    value: Number.isFinite(value) ? value : null,
    source_id: r.source_id ?? "",
    group: r.group ?? "",
    datetime: r.datetime ?? "",
  };
}
