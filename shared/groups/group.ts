/**
 * What a stock-app group is, and how it becomes an engine handler: an
 * analysis (a pure step over quotes that writes alerts) or a sink (an
 * external store, written idempotently by entry id). Every stock group
 * decodes quotes and keeps per-symbol order; the engine does the rest.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Config } from "../config.ts";
import { encodeAlert } from "../market/alerts.ts";
import type { Analysis, AnalysisSettings } from "../market/analysis.ts";
import { decodeQuote, type Quote } from "../market/quotes.ts";
import type { Handler, SinkItem } from "../queue/mod.ts";
import type { StockKeys } from "../stock_queue.ts";
import type { QuoteStore } from "../store/quote_store.ts";

/** What a group's handler may use, given by the function that drains it. */
export interface GroupContext {
  /** Validated settings. */
  config: Config;
  /** Thresholds of the analyses. */
  settings: AnalysisSettings;
  /** Every key of the app. */
  keys: StockKeys;
  /** The client of this drain. */
  redis: Redis;
  /** The quote store, opened on first use. */
  store(): QuoteStore;
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
  const { settings, config, keys } = context;
  return {
    ...base,
    output: { key: keys.alerts, maxLen: config.alertsMaxlen },
    step(state, quote, { id, now }) {
      const result = group.step(state, { quote, settings });
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
