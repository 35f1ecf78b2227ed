/**
 * Private: table names, history bounds and the row shape both backends share.
 *
 * @module
 */

import { compareIds } from "../queue/mod.ts";
import type { HistoryOptions, QuoteEntry, StoredQuote } from "./types.ts";
import { MAX_HISTORY_LIMIT } from "./types.ts";

const PLAIN_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkTable(table: string, qualified: boolean): string[] {
  const parts = table.split(".");
  const ok = parts.length <= (qualified ? 2 : 1) && parts.every((p) => PLAIN_NAME.test(p));
  if (!ok) {
    const shape = qualified ? "a lower-case name or schema.name" : "a lower-case name";
    throw new RangeError(
      `Cannot open the quote store as 'table' must be ${shape}: current value is "${table}"`,
    );
  }
  return parts;
}

export function checkHistory(options: HistoryOptions): { limit: number; from: number; to: number } {
  const { limit = 100, from, to } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new RangeError(
      `Cannot read history as 'limit' must be an integer from 1 to ${MAX_HISTORY_LIMIT}: current value is ${limit}`,
    );
  }
  // Quote timestamps are >= 0 (decodeQuote), so 0 and MAX_VALUE mean "unbounded".
  return { limit, from: from ?? 0, to: to ?? Number.MAX_VALUE };
}

// A row is exactly what the history endpoint returns.
export type Row = StoredQuote;

export function toRow(entry: QuoteEntry): Row {
  const q = entry.quote;
  return {
    id: entry.id,
    symbol: q.symbol,
    price: q.price,
    change_percent: q.changePercent ?? null,
    volume: q.volume,
    timestamp: q.timestamp,
    datetime: q.datetime,
  };
}

export function toStoredQuotes(rows: Record<string, unknown>[]): StoredQuote[] {
  const out = rows.map((r) => ({
    id: String(r.id),
    symbol: String(r.symbol),
    price: Number(r.price),
    change_percent: r.change_percent === null ? null : Number(r.change_percent),
    volume: Number(r.volume),
    timestamp: Number(r.timestamp),
    datetime: String(r.datetime),
  }));
  // SQL orders equal timestamps by id as text; stream order needs the numeric compare.
  return out.sort((a, b) => b.timestamp - a.timestamp || compareIds(b.id, a.id));
}

export const COLUMNS = [
  "id",
  "symbol",
  "price",
  "change_percent",
  "volume",
  "timestamp",
  "datetime",
] as const;
