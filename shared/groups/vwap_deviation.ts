/**
 * The example group of docs/add_a_group.md: a volume-weighted average price
 * per symbol over the last ticks, with an alert when the price strays from it
 * by more than a set percentage, re-armed once it comes back within half of
 * that. It starts at the end of the stream, as a new group does by default.
 *
 * @module
 */

import type { Analysis } from "../market/analysis.ts";

/** Ticks the VWAP covers. */
export const VWAP_WINDOW = 20;
/** Ticks needed before the group alerts. */
export const VWAP_MIN_TICKS = 5;
/** Deviation from the VWAP, in percent of it, that alerts. */
export const VWAP_DEVIATION_PERCENT = 1.5;

/** Per-symbol state: the recent (price, volume) pairs and whether an alert may fire. */
export interface VwapState {
  /** Recent ticks, oldest first: [price, volume]. */
  ticks: [number, number][];
  /** False after an alert, until the price is back within half the threshold. */
  armed: boolean;
}

/** VWAP of the first `count` ticks (default: all), or their last price when no volume traded. */
export function vwapOf(ticks: readonly [number, number][], count = ticks.length): number {
  let value = 0;
  let volume = 0;
  for (let i = 0; i < count; i++) {
    value += ticks[i][0] * ticks[i][1];
    volume += ticks[i][1];
  }
  return volume > 0 ? value / volume : ticks[count - 1][0];
}

/** The "vwap-deviation" group: one alert per excursion from the VWAP. */
export const vwapDeviation: Analysis<VwapState> = {
  group: "vwap-deviation",
  step(state, { quote }) {
    const ticks = (state?.ticks ?? []).slice(1 - VWAP_WINDOW);
    ticks.push([quote.price, quote.volume]);
    let armed = state?.armed ?? true;
    const alerts = [];
    if (ticks.length >= VWAP_MIN_TICKS) {
      // The VWAP of the ticks before this one, so the quote is measured against the past.
      const vwap = vwapOf(ticks, ticks.length - 1);
      // Compared as printed, so the message never shows a number at the threshold.
      const deviation = Number((((quote.price - vwap) / vwap) * 100).toFixed(2));
      if (armed && Math.abs(deviation) > VWAP_DEVIATION_PERCENT) {
        armed = false;
        alerts.push({
          type: "vwap_deviation",
          symbol: quote.symbol,
          message: `${quote.symbol} trades ${Math.abs(deviation).toFixed(2)}% ${
            deviation > 0 ? "above" : "below"
          } its ${VWAP_WINDOW}-tick VWAP of ${
            vwap.toFixed(2)
          } (threshold ${VWAP_DEVIATION_PERCENT}%)`,
          value: deviation,
        });
      } else if (!armed && Math.abs(deviation) < VWAP_DEVIATION_PERCENT / 2) {
        armed = true;
      }
    }
    return { state: { ticks, armed }, alerts };
  },
};
