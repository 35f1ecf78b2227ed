/**
 * The latest-quote record, in one place: the hash the emit script and the
 * quote store write (field = symbol) and the REST API and dashboard read.
 * Its value is the quote's JSON view with the entry id first; the scripts
 * write `{"id":"<id>",` followed by {@linkcode latestRest}.
 *
 * @module
 */

import { type Quote, quoteToJson } from "./quotes.ts";

/**
 * The record's members after `"id"`, without the leading brace, as the
 * engine's append and latest-index scripts take them.
 *
 * @example
 * ```ts
 * import type { Quote } from "./quotes.ts";
 * declare const quote: Quote;
 * latestRest(quote); // '"symbol":"AAPL","price":190.1,...}'
 * ```
 */
export function latestRest(quote: Quote): string {
  return JSON.stringify(quoteToJson(quote)).slice(1);
}

/**
 * Parses a stored record; null for a value that is not a JSON object.
 *
 * @example
 * ```ts
 * parseLatest('{"id":"1-0","symbol":"AAPL"}'); // { id: "1-0", symbol: "AAPL" }
 * ```
 */
export function parseLatest(raw: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(raw);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}
