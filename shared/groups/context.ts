/**
 * The context a drain or replay gives its group's handler, from a
 * function's dependencies. Kept apart from the registry because it opens
 * the quote store's drivers, which the CLI never needs.
 *
 * @module
 */

import type { Deps } from "../http.ts";
import { analysisSettings } from "../market/settings.ts";
import type { Handler } from "../queue/mod.ts";
import type { StockQueue } from "../stock_queue.ts";
import { getQuoteStore } from "../store/quote_store.ts";
import { type GroupContext, type StockGroup, toHandler } from "./group.ts";

/** The handler context of `queue`'s client for `deps`. */
export function groupContext(
  deps: Pick<Deps, "config" | "quoteStore">,
  queue: StockQueue,
): GroupContext {
  const { config } = deps;
  const { keys } = queue;
  return {
    settings: analysisSettings(config),
    alerts: { key: keys.alerts, maxLen: config.alertsMaxlen },
    latestKey: keys.latest,
    redis: queue.redis,
    store: () => deps.quoteStore ?? getQuoteStore(config),
  };
}

/**
 * The engine handler of `group` for a drain or replay on `queue`.
 *
 * @example
 * ```ts
 * import { drainGroup } from "../queue/mod.ts";
 * import { stockQueue } from "../stock_queue.ts";
 * import type { Deps } from "../http.ts";
 * import { priceAlerts } from "./price_alerts.ts";
 * declare const deps: Deps;
 * const queue = stockQueue(deps);
 * await drainGroup(queue, handlerOf(deps, queue, priceAlerts));
 * ```
 */
export function handlerOf(
  deps: Pick<Deps, "config" | "quoteStore">,
  queue: StockQueue,
  group: StockGroup,
): Handler {
  return toHandler(group, groupContext(deps, queue)) as Handler;
}
