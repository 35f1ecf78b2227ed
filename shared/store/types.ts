/**
 * The quote store's types: a quote to store, a stored quote, history options
 * and the store itself, shared by the SQLite and PostgreSQL backends.
 *
 * @module
 */

import type { Quote } from "../market/quotes.ts";

/** A quote to store, with its stream entry id (the primary key). */
export interface QuoteEntry {
  /** Stream entry id. */
  id: string;
  /** The decoded quote. */
  quote: Quote;
}

/** Table the quotes go to unless a store is given another. */
export const DEFAULT_QUOTE_TABLE = "quotes";

/** Most rows one history read returns. */
export const MAX_HISTORY_LIMIT = 1000;

/** One stored quote, as the history endpoint returns it. */
export interface StoredQuote {
  /** Stream entry id, the primary key. */
  id: string;
  /** Ticker symbol. */
  symbol: string;
  /** Price. */
  price: number;
  /** Percent change against the previous close, or null when the producer sent none. */
  change_percent: number | null;
  /** Volume of the tick. */
  volume: number;
  /** Unix time in seconds; the indexed time column. */
  timestamp: number;
  /** ISO 8601 time as the quote carried it. */
  datetime: string;
}

/** Options of {@linkcode QuoteStore.history}. */
export interface HistoryOptions {
  /**
   * Most rows to return, 1 to 1000.
   * @default {100}
   */
  limit?: number;
  /**
   * Oldest timestamp to include, in Unix seconds.
   * @default {undefined}
   */
  from?: number;
  /**
   * Newest timestamp to include, in Unix seconds.
   * @default {undefined}
   */
  to?: number;
}

/** Where quotes are persisted. */
export interface QuoteStore {
  /** Backend: "sqlite" or "postgres". */
  readonly kind: "sqlite" | "postgres";
  /**
   * Writes a chunk in one transaction, ignoring ids already stored, so a
   * redelivered entry never makes a second row. Resolves to the rows added.
   */
  write(entries: QuoteEntry[]): Promise<number>;
  /** Quotes of `symbol`, newest first. */
  history(symbol: string, options?: HistoryOptions): Promise<StoredQuote[]>;
  /** Closes the connection; a later call opens it again. */
  close(): Promise<void>;
}
