/**
 * Price alerts: one "price_move" alert each time a symbol's change percent
 * rises past the configured threshold, re-armed only once the move has fallen
 * back clearly below it (hysteresis), so a price hovering at the threshold
 * does not alert on every tick.
 *
 * @module
 */

import { printed, printedAbove } from "../market/settings.ts";
import type { Analysis } from "../market/analysis.ts";

/** Per-symbol state of {@linkcode priceAlerts}. */
export interface PriceAlertState {
  /** False after an alert, until the move falls below threshold minus the re-arm margin. */
  armed: boolean;
}

/**
 * Fires "price_move" when |changePercent|, as printed, is above
 * settings.priceAlertPercent while armed; re-arms below
 * priceAlertPercent - priceAlertRearmPercent.
 */
export const priceAlerts: Analysis<PriceAlertState> = {
  group: "price-alerts",
  // Quotes written before the first drain (by the emit or another producer) count too.
  start: "0",
  step(state, { quote, settings }) {
    const current = state ?? { armed: true };
    const percent = quote.changePercent;
    if (percent === undefined) return { state: current, alerts: [] };
    const threshold = settings.priceAlertPercent;
    const size = Math.abs(percent);
    if (size < threshold - settings.priceAlertRearmPercent) {
      return { state: { armed: true }, alerts: [] };
    }
    if (!current.armed || !printedAbove(size, threshold)) return { state: current, alerts: [] };
    const sign = percent > 0 ? "+" : "-";
    return {
      state: { armed: false },
      alerts: [{
        type: "price_move",
        symbol: quote.symbol,
        message: `${quote.symbol} moved ${sign}${printed(size)}% against the previous close ` +
          `(threshold ${threshold}%)`,
        value: percent,
      }],
    };
  },
};
