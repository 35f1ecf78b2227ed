/**
 * What a stock-app group is, and how it becomes an engine handler: an
 * analysis (a pure step over quotes that writes alerts) or a sink (an
 * external store, written idempotently by entry id). Every stock group
 * decodes quotes and keeps per-symbol order; the engine does the rest.
 *
 * @module
 */

import { encodeAlert } from "../market/alerts.ts";
import type { Analysis, AnalysisSettings } from "../market/analysis.ts";
import { decodeQuote, type Quote } from "../market/quotes.ts";
import type { Handler, RedisClient, SinkItem } from "../queue/mod.ts";

/** What a sink writes quotes to (shared/store/quote_store.ts), as far as a group needs it. */
export interface QuoteWriter {
  /** Writes quotes keyed by entry id in one transaction, ignoring ids already stored. */
  write(entries: { id: string; quote: Quote }[]): Promise<unknown>;
}

/**
 * What a group's handler may use, given by the function that drains it
 * (shared/groups/context.ts). Plain values and interfaces only, so the
 * registry loads no store driver and no client.
 */
export interface GroupContext {
  /** Thresholds of the analyses. */
  settings: AnalysisSettings;
  /** The alerts stream and the approximate length it is kept at. */
  alerts: { key: string; maxLen: number };
  /** The latest-quote hash (shared/market/latest.ts). */
  latestKey: string;
  /** The client of this drain. */
  redis: RedisClient;
  /** The quote store, opened on first use. */
  store(): QuoteWriter;
}

/** A group whose effect lives outside Redis. */
export interface SinkGroup {
  /** Consumer group name. */
  group: string;
  /**
   * Where the group starts when it is created: "$", "0" or an id.
   * @default {"$"}
   */
  start?: string;
  /** Writes a chunk, idempotent by entry id; throws to leave it pending. */
  write(context: GroupContext, items: SinkItem<Quote>[]): Promise<void>;
}

/** A consumer group of the stock app. */
export type StockGroup = Analysis | SinkGroup;

/** True when `group` is a sink. */
export function isSinkGroup(group: StockGroup): group is SinkGroup {
  return "write" in group;
}

/**
 * The engine handler of `group`: quotes decoded, keyed by symbol; an
 * analysis's alerts go to the alerts stream in its commit.
 *
 * @example
 * ```ts
 * import { drainGroup } from "../queue/mod.ts";
 * import { stockQueue } from "../stock_queue.ts";
 * import type { Deps } from "../http.ts";
 * import { priceAlerts } from "./price_alerts.ts";
 * declare const deps: Deps;
 * declare const context: GroupContext;
 * const result = await drainGroup(stockQueue(deps), toHandler(priceAlerts, context));
 * ```
 */
export function toHandler(group: StockGroup, context: GroupContext): Handler<Quote> {
  const base = {
    name: group.group,
    start: group.start,
    decode: decodeQuote,
    key: (quote: Quote) => quote.symbol,
  };
  if (isSinkGroup(group)) {
    return { ...base, write: (items) => group.write(context, items) };
  }
  const { settings, alerts } = context;
  return {
    ...base,
    output: alerts,
    step(state, quote, { id, now }) {
      const result = group.step(state, { quote, settings });
      // Most quotes alert nothing: those skip building the alerts' origin.
      if (result.alerts.length === 0) return { state: result.state };
      const origin = { sourceId: id, group: group.group, now, quoteTimestamp: quote.timestamp };
      return {
        state: result.state,
        outputs: result.alerts.map((alert) => ({
          fields: encodeAlert(alert, origin),
          kind: alert.type,
        })),
      };
    },
  };
}
