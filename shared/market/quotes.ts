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

/** A quote's fields as the stream carries them, before any parsing. */
interface RawQuote {
  symbol: string | undefined;
  price: string | undefined;
  volume: string | undefined;
  sessionVolume: string | undefined;
  timestamp: string | undefined;
  datetime: string | undefined;
  change: string | undefined;
  changePercent: string | undefined;
  open: string | undefined;
  high: string | undefined;
  low: string | undefined;
  prevClose: string | undefined;
}

function emptyRaw(): RawQuote {
  return {
    symbol: undefined,
    price: undefined,
    volume: undefined,
    sessionVolume: undefined,
    timestamp: undefined,
    datetime: undefined,
    change: undefined,
    changePercent: undefined,
    open: undefined,
    high: undefined,
    low: undefined,
    prevClose: undefined,
  };
}

/**
 * Puts one stream field into `raw`; fields of no quote meaning are ignored.
 * Names from Redis are fresh strings, each compared by content: the first
 * letter leaves one or two names to compare with.
 */
function setField(raw: RawQuote, name: string, value: string): void {
  switch (name.charCodeAt(0)) {
    case 115: // s
      if (name === "symbol") raw.symbol = value;
      else if (name === "session_volume") raw.sessionVolume = value;
      break;
    case 112: // p
      if (name === "price") raw.price = value;
      else if (name === "prev_close") raw.prevClose = value;
      break;
    case 99: // c
      if (name === "change") raw.change = value;
      else if (name === "change_percent") raw.changePercent = value;
      break;
    case 118: // v
      if (name === "volume") raw.volume = value;
      break;
    case 116: // t
      if (name === "timestamp") raw.timestamp = value;
      break;
    case 100: // d
      if (name === "datetime") raw.datetime = value;
      break;
    case 111: // o
      if (name === "open") raw.open = value;
      break;
    case 104: // h
      if (name === "high") raw.high = value;
      break;
    case 108: // l
      if (name === "low") raw.low = value;
      break;
  }
}

/**
 * Reads the fields in one pass into a fixed-shape record: the drain decodes
 * every entry, and a record keyed by arbitrary names costs several times more.
 */
function rawOf(fields: string[] | Record<string, string>): RawQuote {
  const raw = emptyRaw();
  if (Array.isArray(fields)) {
    // The last value of a repeated field wins, as in fieldsToRecord.
    for (let i = 0; i + 1 < fields.length; i += 2) setField(raw, fields[i], fields[i + 1]);
  } else {
    for (const name in fields) {
      if (Object.hasOwn(fields, name)) setField(raw, name, fields[name]);
    }
  }
  return raw;
}

/** Exact powers of ten: a decimal of at most 15 digits divided by one is correctly rounded. */
const POWERS_OF_TEN = [
  1,
  1e1,
  1e2,
  1e3,
  1e4,
  1e5,
  1e6,
  1e7,
  1e8,
  1e9,
  1e10,
  1e11,
  1e12,
  1e13,
  1e14,
  1e15,
];

/**
 * Number(text), faster for plain decimals such as "-189.82": the drain
 * parses some ten per entry. Up to 15 digits the digits are an exact double
 * and so is the power of ten, so one division rounds as Number does; any
 * other text goes to Number.
 */
function toNumber(text: string): number {
  const n = text.length;
  let i = text.charCodeAt(0) === 45 ? 1 : 0;
  let mantissa = 0;
  let digits = 0;
  let fraction = -1;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits += 1;
      if (fraction >= 0) fraction += 1;
    } else if (c === 46 && fraction < 0) fraction = 0;
    else return Number(text);
  }
  if (digits === 0 || digits > 15 || fraction === 0) return Number(text);
  const value = fraction > 0 ? mantissa / POWERS_OF_TEN[fraction] : mantissa;
  return text.charCodeAt(0) === 45 ? -value : value;
}

function requiredNumber(raw: string | undefined, name: string): number {
  const value = optionalNumber(raw, name);
  if (value === undefined) {
    throw new QuoteDecodeError(`Cannot decode quote: field "${name}" is missing`);
  }
  return value;
}

function optionalNumber(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const value = toNumber(raw);
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
  const raw = rawOf(fields);
  const symbol = raw.symbol;
  if (symbol === undefined || !SYMBOL_PATTERN.test(symbol)) {
    throw new QuoteDecodeError(`Cannot decode quote: symbol is invalid: "${symbol ?? ""}"`);
  }
  const price = requiredNumber(raw.price, "price");
  if (price <= 0) throw new QuoteDecodeError(`Cannot decode quote: price must be > 0: ${price}`);
  const volume = requiredNumber(raw.volume, "volume");
  if (volume < 0) throw new QuoteDecodeError(`Cannot decode quote: volume must be >= 0: ${volume}`);
  let timestamp = optionalNumber(raw.timestamp, "timestamp");
  let datetime = raw.datetime;
  // Parsed once: the same value checks a given datetime and derives a missing timestamp.
  const datetimeMs = datetime === undefined ? NaN : Date.parse(datetime);
  if (timestamp === undefined && datetime !== undefined) {
    if (Number.isNaN(datetimeMs)) {
      throw new QuoteDecodeError(`Cannot decode quote: datetime is invalid: "${datetime}"`);
    }
    timestamp = datetimeMs / 1000;
  }
  if (timestamp === undefined) {
    throw new QuoteDecodeError(`Cannot decode quote: field "timestamp" is missing`);
  }
  if (timestamp < 0 || timestamp > 1e11) {
    throw new QuoteDecodeError(`Cannot decode quote: timestamp is out of range: ${timestamp}`);
  }
  if (datetime === undefined || Number.isNaN(datetimeMs)) {
    datetime = new Date(Math.round(timestamp * 1000)).toISOString();
  }
  const sessionVolume = optionalNumber(raw.sessionVolume, "session_volume");
  const prevClose = optionalNumber(raw.prevClose, "prev_close");
  let changePercent = optionalNumber(raw.changePercent, "change_percent");
  let change = optionalNumber(raw.change, "change");
  if (change === undefined && prevClose !== undefined) change = price - prevClose;
  if (changePercent === undefined && change !== undefined && prevClose !== undefined && prevClose) {
    changePercent = (change / prevClose) * 100;
  }
  const open = optionalNumber(raw.open, "open");
  const high = optionalNumber(raw.high, "high");
  const low = optionalNumber(raw.low, "low");
  const whole = Math.floor(timestamp);
  if (
    sessionVolume !== undefined && change !== undefined && changePercent !== undefined &&
    open !== undefined && high !== undefined && low !== undefined && prevClose !== undefined
  ) {
    // Every field, as this app's emit writes them: one literal, in the order below.
    return {
      symbol,
      price,
      volume,
      timestamp: whole,
      datetime,
      sessionVolume,
      change,
      changePercent,
      open,
      high,
      low,
      prevClose,
    };
  }
  const quote: Quote = { symbol, price, volume, timestamp: whole, datetime };
  if (sessionVolume !== undefined) quote.sessionVolume = sessionVolume;
  if (change !== undefined) quote.change = change;
  if (changePercent !== undefined) quote.changePercent = changePercent;
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
