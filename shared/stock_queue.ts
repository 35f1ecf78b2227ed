/**
 * The stock app's queue: every key it uses, derived from the settings
 * through the engine's key module (so all of them can share one hash tag),
 * and the queue handle of a function's dependencies.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { openQueue, type Queue, type QueueKeys, queueKeys } from "./queue/mod.ts";
import type { Deps } from "./http.ts";

/** The engine's keys plus the app's own, beside them. */
export interface StockKeys extends QueueKeys {
  /** Stream of alerts the analyses write. */
  readonly alerts: string;
  /** Hash symbol -> latest-quote record (shared/market/latest.ts). */
  readonly latest: string;
  /** Hash of the simulator's state and version. */
  readonly simulator: string;
  /** Sorted set of lag samples that /report's trend reads. */
  readonly reportLag: string;
  /** Key /health writes to prove Redis takes writes. */
  readonly health: string;
}

/**
 * Every key of the stock app for `config`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * stockKeys(loadConfig()).latest; // "stock_quotes:latest"
 * ```
 */
export function stockKeys(
  config: Pick<Config, "streamKey" | "deadLetterKey" | "alertsKey">,
): StockKeys {
  const keys = queueKeys(config.streamKey, { deadLetters: config.deadLetterKey });
  return {
    ...keys,
    alerts: keys.related(config.alertsKey),
    latest: keys.related(`${config.streamKey}:latest`),
    simulator: keys.related(`${config.streamKey}:sim`),
    reportLag: keys.related(`${config.streamKey}:report:lag`),
    health: keys.related(`${config.streamKey}:health`),
  };
}

/**
 * The queue of `deps`: its client, keys and the engine settings from the config.
 *
 * @example
 * ```ts
 * import type { Deps } from "./http.ts";
 * declare const deps: Deps;
 * const queue = stockQueue(deps);
 * await queue.stream.length();
 * ```
 */
export function stockQueue(deps: Pick<Deps, "config" | "redis" | "now">): Queue {
  const { config } = deps;
  return openQueue(deps.redis(), stockKeys(config), {
    claimIdleMs: config.claimIdleMs,
    retryDelayMs: config.retryDelayMs,
    maxDeliveries: config.maxDeliveries,
    consumerIdleMs: config.consumerIdleMs,
    maxLen: config.streamMaxlen,
    now: deps.now,
  });
}
