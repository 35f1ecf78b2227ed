/**
 * The "quote-store" consumer group: writes each chunk to the quote store
 * (SQLite or PostgreSQL) in one transaction, ignoring ids already stored,
 * then points the latest-quote hash at the newest quote of each symbol
 * unless it holds a newer one (so quotes of other producers, which skip
 * emit's atomic update, show up too). Both steps are idempotent, and the
 * engine acks the chunk only after both succeeded.
 *
 * @module
 */

import { latestRest } from "../market/latest.ts";
import type { Quote } from "../market/quotes.ts";
import { compareIds, type SinkItem, updateLatest } from "../queue/mod.ts";
import type { SinkGroup } from "./group.ts";

/** Consumer group name of the quote store. */
export const QUOTE_STORE_GROUP = "quote-store";

/** The quote-store group; it drains last, after the analyses. */
export const quoteStore: SinkGroup = {
  group: QUOTE_STORE_GROUP,
  // The store keeps every quote, including those written before its first drain.
  start: "0",
  async write(context, items) {
    await context.store().write(items.map(({ id, item }) => ({ id, quote: item })));
    const newest = new Map<string, SinkItem<Quote>>();
    for (const entry of items) {
      const seen = newest.get(entry.item.symbol);
      if (seen === undefined || compareIds(seen.id, entry.id) < 0) {
        newest.set(entry.item.symbol, entry);
      }
    }
    await updateLatest(
      context.redis,
      context.latestKey,
      [...newest.values()].map(({ id, item }) => ({
        field: item.symbol,
        id,
        rest: latestRest(item),
      })),
    );
  },
};
