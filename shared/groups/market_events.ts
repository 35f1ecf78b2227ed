/**
 * Market events: session open and new session highs and lows per symbol,
 * where a session is the UTC calendar date of the quote. Highs and lows are
 * news only once the session has warmed up (every early tick is a record),
 * only when they pass the last announced level by a margin, and at most
 * once per symbol within settings.sessionAlertGapTicks ticks.
 *
 * @module
 */

import type { Quote } from "../market/quotes.ts";
import { printed, printedAbove } from "../market/settings.ts";
import type { AlertDraft, Analysis, AnalysisSettings } from "../market/analysis.ts";

/** Per-symbol state of {@linkcode marketEvents}. */
export interface MarketEventsState {
  /** Current session as a UTC date, "YYYY-MM-DD". */
  session: string;
  /** Highest price seen in the session. */
  high: number;
  /** Lowest price seen in the session. */
  low: number;
  /** Quotes seen in the session. */
  ticks?: number;
  /** Value of `ticks` at the last high or low alert; absent before the first. */
  alertTick?: number;
  /** High a new one must pass by the margin: the warm-up's, then the last announced. */
  announcedHigh?: number;
  /** Low a new one must pass by the margin: the warm-up's, then the last announced. */
  announcedLow?: number;
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

/** True when `price` is a session record worth announcing on tick `ticks`. */
function isNews(
  state: MarketEventsState,
  input: { ticks: number; beyond: boolean; settings: AnalysisSettings },
): boolean {
  const { ticks, beyond, settings } = input;
  if (!beyond || ticks <= settings.sessionWarmupTicks) return false;
  return state.alertTick === undefined || ticks - state.alertTick >= settings.sessionAlertGapTicks;
}

/** Fires "session_open", "new_session_high" and "new_session_low". */
export const marketEvents: Analysis<MarketEventsState> = {
  group: "market-events",
  // Quotes written before the first drain (by the emit or another producer) count too.
  start: "0",
  step(state, { quote, settings }) {
    const session = sessionOf(quote);
    const price = quote.price;
    if (state === undefined || session > state.session) {
      return {
        state: { session, high: price, low: price, ticks: 1 },
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
    const ticks = (state.ticks ?? 0) + 1;
    const next: MarketEventsState = {
      ...state,
      ticks,
      high: Math.max(state.high, price),
      low: Math.min(state.low, price),
    };
    // The warm-up's range is the first level later records are measured against.
    if (ticks <= settings.sessionWarmupTicks) {
      next.announcedHigh = next.high;
      next.announcedLow = next.low;
    }
    const margin = settings.sessionMarginPercent / 100;
    if (price > state.high) {
      const level = (state.announcedHigh ?? state.high) * (1 + margin);
      const beyond = price >= level && printedAbove(price, state.high);
      if (isNews(state, { ticks, beyond, settings })) {
        return {
          state: { ...next, alertTick: ticks, announcedHigh: price },
          alerts: [
            alert(quote, {
              type: "new_session_high",
              message: `${quote.symbol} new session high ${printed(price)} ` +
                `(previous ${printed(state.high)})`,
            }),
          ],
        };
      }
    }
    if (price < state.low) {
      const level = (state.announcedLow ?? state.low) * (1 - margin);
      const beyond = price <= level && printedAbove(state.low, price);
      if (isNews(state, { ticks, beyond, settings })) {
        return {
          state: { ...next, alertTick: ticks, announcedLow: price },
          alerts: [
            alert(quote, {
              type: "new_session_low",
              message: `${quote.symbol} new session low ${printed(price)} ` +
                `(previous ${printed(state.low)})`,
            }),
          ],
        };
      }
    }
    return { state: next, alerts: [] };
  },
};
