/**
 * The stock quote as it travels through the stream: its fields, encoding to
 * stream fields and tolerant decoding of entries written by other producers.
 *
 * @module
 */

import { fieldsToRecord, PoisonError } from "../queue/mod.ts";

export { fieldsToRecord };

/** A symbol as accepted everywhere: upper-case letter, then up to 9 of A-Z, 0-9, "." or "-". */
export const SYMBOL_PATTERN = /^[A-Z][A-Z0-9.-]{0,9}$/;

/**
 * One stock quote. Optional fields may be missing on entries from other
 * producers. Every field is documented with its unit in docs/quotes.md.
 */
export interface Quote {
  /** Ticker symbol, e.g. "AAPL". */
  symbol: string;
  /** Last traded price. */
  price: number;
  /** Shares traded in this tick. */
  volume: number;
  /** Shares traded since the session opened, this tick included, when known. */
  sessionVolume?: number;
  /** Market time in whole Unix seconds, as the tutorial's `int(time.time())`. */
  timestamp: number;
  /** Market time as ISO 8601 UTC with milliseconds, derived from `timestamp` when the producer did not send it. */
  datetime: string;
  /** Percent change against the previous close, when known. */
  changePercent?: number;
  /** Absolute change against the previous close, when known. */
  change?: number;
  /** Session open, when known. */
  open?: number;
  /** Session high, when known. */
  high?: number;
  /** Session low, when known. */
  low?: number;
  /** Previous session close, when known. */
  prevClose?: number;
}

/** Raised when stream fields cannot be turned into a {@linkcode Quote}: a poison entry. */
export class QuoteDecodeError extends PoisonError {
  /** Creates the error with the reason in the message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QuoteDecodeError";
  }
}

function formatNumber(value: number, digits: number): string {
  return Number(value.toFixed(digits)).toString();
}

/**
 * Encodes a quote as the flat field/value list XADD takes.
 *
 * @example
 * ```ts
 * const fields = encodeQuote({ symbol: "AAPL", price: 190.5, volume: 1200, timestamp: 1700000000, datetime: "2023-11-14T22:13:20.000Z" });
 * // ["symbol", "AAPL", "price", "190.5", "volume", "1200", ...]
 * ```
 */
export function encodeQuote(quote: Quote): string[] {
  const out = [
    "symbol",
    quote.symbol,
    "price",
    formatNumber(quote.price, 4),
  ];
  if (quote.change !== undefined) out.push("change", formatNumber(quote.change, 4));
  if (quote.changePercent !== undefined) {
    out.push("change_percent", formatNumber(quote.changePercent, 4));
  }
  out.push("volume", String(Math.round(quote.volume)));
  if (quote.sessionVolume !== undefined) {
    out.push("session_volume", String(Math.round(quote.sessionVolume)));
  }
  out.push(
    "timestamp",
    String(Math.floor(quote.timestamp)),
    "datetime",
    quote.datetime,
  );
  if (quote.open !== undefined) out.push("open", formatNumber(quote.open, 4));
  if (quote.high !== undefined) out.push("high", formatNumber(quote.high, 4));
  if (quote.low !== undefined) out.push("low", formatNumber(quote.low, 4));
  if (quote.prevClose !== undefined) out.push("prev_close", formatNumber(quote.prevClose, 4));
  return out;
}

function requiredNumber(record: Record<string, string>, name: string): number {
  const raw = record[name];
  if (raw === undefined || raw === "") {
    throw new QuoteDecodeError(`Cannot decode quote: field "${name}" is missing`);
  }
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    throw new QuoteDecodeError(`Cannot decode quote: field "${name}" is not a number: "${raw}"`);
  }
  return value;
}

function optionalNumber(record: Record<string, string>, name: string): number | undefined {
  const raw = record[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    throw new QuoteDecodeError(`Cannot decode quote: field "${name}" is not a number: "${raw}"`);
  }
  return value;
}

/**
 * Decodes stream fields into a {@linkcode Quote}, accepting entries that carry
 * only the tutorial's fields (symbol, price, volume, timestamp, and optionally
 * datetime, change and change_percent) and deriving what can be derived. A
 * fractional timestamp (`time.time()`) is cut to whole seconds, its
 * milliseconds kept in the derived datetime.
 *
 * @example
 * ```ts
 * const quote = decodeQuote(["symbol", "AAPL", "price", "190", "volume", "10", "timestamp", "1700000000"]);
 * quote.datetime; // "2023-11-14T22:13:20.000Z"
 * ```
 * @throws {QuoteDecodeError} When a required field is missing or malformed.
 */
export function decodeQuote(fields: string[] | Record<string, string>): Quote {
  const record = Array.isArray(fields) ? fieldsToRecord(fields) : fields;
  const symbol = record.symbol;
  if (symbol === undefined || !SYMBOL_PATTERN.test(symbol)) {
    throw new QuoteDecodeError(`Cannot decode quote: symbol is invalid: "${symbol ?? ""}"`);
  }
  const price = requiredNumber(record, "price");
  if (price <= 0) throw new QuoteDecodeError(`Cannot decode quote: price must be > 0: ${price}`);
  const volume = requiredNumber(record, "volume");
  if (volume < 0) throw new QuoteDecodeError(`Cannot decode quote: volume must be >= 0: ${volume}`);
  let timestamp = optionalNumber(record, "timestamp");
  let datetime = record.datetime;
  if (timestamp === undefined && datetime !== undefined) {
    const ms = Date.parse(datetime);
    if (Number.isNaN(ms)) {
      throw new QuoteDecodeError(`Cannot decode quote: datetime is invalid: "${datetime}"`);
    }
    timestamp = ms / 1000;
  }
  if (timestamp === undefined) {
    throw new QuoteDecodeError(`Cannot decode quote: field "timestamp" is missing`);
  }
  if (timestamp < 0 || timestamp > 1e11) {
    throw new QuoteDecodeError(`Cannot decode quote: timestamp is out of range: ${timestamp}`);
  }
  if (datetime === undefined || Number.isNaN(Date.parse(datetime))) {
    datetime = new Date(Math.round(timestamp * 1000)).toISOString();
  }
  const quote: Quote = { symbol, price, volume, timestamp: Math.floor(timestamp), datetime };
  const sessionVolume = optionalNumber(record, "session_volume");
  if (sessionVolume !== undefined) quote.sessionVolume = sessionVolume;
  const prevClose = optionalNumber(record, "prev_close");
  let changePercent = optionalNumber(record, "change_percent");
  let change = optionalNumber(record, "change");
  if (change === undefined && prevClose !== undefined) change = price - prevClose;
  if (changePercent === undefined && change !== undefined && prevClose !== undefined && prevClose) {
    changePercent = (change / prevClose) * 100;
  }
  if (change !== undefined) quote.change = change;
  if (changePercent !== undefined) quote.changePercent = changePercent;
  const open = optionalNumber(record, "open");
  const high = optionalNumber(record, "high");
  const low = optionalNumber(record, "low");
  if (open !== undefined) quote.open = open;
  if (high !== undefined) quote.high = high;
  if (low !== undefined) quote.low = low;
  if (prevClose !== undefined) quote.prevClose = prevClose;
  return quote;
}

/** Options of {@linkcode quoteToJson}. */
export interface QuoteJsonOptions {
  /**
   * Stream entry id, put first as `id`; undefined leaves `id` out.
   * @default {undefined}
   */
  id?: string;
}

/** Plain JSON view of a quote, with the stream's snake_case field names. */
export function quoteToJson(quote: Quote, options: QuoteJsonOptions = {}): Record<string, unknown> {
  const { id } = options;
  return {
    ...(id ? { id } : {}),
    symbol: quote.symbol,
    price: quote.price,
    change: quote.change ?? null,
    change_percent: quote.changePercent ?? null,
    volume: quote.volume,
    session_volume: quote.sessionVolume ?? null,
    timestamp: quote.timestamp,
    datetime: quote.datetime,
    open: quote.open ?? null,
    high: quote.high ?? null,
    low: quote.low ?? null,
    prev_close: quote.prevClose ?? null,
  };
}
