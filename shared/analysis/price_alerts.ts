/**
 * Price alerts: one "price_move" alert each time a symbol's change percent
 * crosses the configured threshold.
 *
 * @module
 */

import type { Analysis } from "./types.ts";

/** Per-symbol state of {@linkcode priceAlerts}. */
export interface PriceAlertState {
  /** False after an alert, until the move falls back below the threshold. */
  armed: boolean;
}

/** Fires "price_move" once per crossing of |changePercent| >= settings.priceAlertPercent. */
export const priceAlerts: Analysis<PriceAlertState> = {
  group: "price-alerts",
  step(state, { quote, settings }) {
    const current = state ?? { armed: true };
    const percent = quote.changePercent;
    if (percent === undefined) return { state: current, alerts: [] };
    if (Math.abs(percent) < settings.priceAlertPercent) {
      return { state: { armed: true }, alerts: [] };
    }
    if (!current.armed) return { state: current, alerts: [] };
    const sign = percent > 0 ? "+" : "";
    return {
      state: { armed: false },
      alerts: [{
        type: "price_move",
        symbol: quote.symbol,
        message: `${quote.symbol} moved ${sign}${percent.toFixed(2)}% ` +
          `(threshold ${settings.priceAlertPercent}%)`,
        value: percent,
      }],
    };
  },
};
