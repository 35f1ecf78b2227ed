/**
 * Market events: session open and new session highs and lows per symbol,
 * where a session is the UTC calendar date of the quote.
 *
 * @module
 */

import type { Quote } from "../quotes.ts";
import type { AlertDraft, Analysis } from "./types.ts";

/** Per-symbol state of {@linkcode marketEvents}. */
export interface MarketEventsState {
  /** Current session as a UTC date, "YYYY-MM-DD". */
  session: string;
  /** Highest price seen in the session. */
  high: number;
  /** Lowest price seen in the session. */
  low: number;
}

/** UTC calendar date ("YYYY-MM-DD") of a quote. */
export function sessionOf(quote: Quote): string {
  const ms = Date.parse(quote.datetime);
  // Producers may send a datetime that does not parse; the timestamp is always there.
  return new Date(Number.isNaN(ms) ? quote.timestamp * 1000 : ms).toISOString().slice(0, 10);
}

/** What an alert of {@linkcode marketEvents} says. */
interface EventText {
  /** Alert type. */
  type: string;
  /** Human readable sentence. */
  message: string;
}

function alert(quote: Quote, text: EventText): AlertDraft {
  return { type: text.type, symbol: quote.symbol, message: text.message, value: quote.price };
}

/** Fires "session_open", "new_session_high" and "new_session_low". */
export const marketEvents: Analysis<MarketEventsState> = {
  group: "market-events",
  step(state, { quote }) {
    const session = sessionOf(quote);
    const price = quote.price;
    if (state === undefined || session > state.session) {
      return {
        state: { session, high: price, low: price },
        alerts: [
          alert(quote, {
            type: "session_open",
            message: `${quote.symbol} opened ${session} at ${price}`,
          }),
        ],
      };
    }
    // ISO dates compare as strings; a late entry from an older session must not reset it.
    if (session < state.session) return { state, alerts: [] };
    if (price > state.high) {
      return {
        state: { ...state, high: price },
        alerts: [
          alert(quote, {
            type: "new_session_high",
            message: `${quote.symbol} new session high ${price}`,
          }),
        ],
      };
    }
    if (price < state.low) {
      return {
        state: { ...state, low: price },
        alerts: [
          alert(quote, {
            type: "new_session_low",
            message: `${quote.symbol} new session low ${price}`,
          }),
        ],
      };
    }
    return { state, alerts: [] };
  },
};
