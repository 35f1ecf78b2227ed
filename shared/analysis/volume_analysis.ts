/**
 * Volume analysis: a "volume_spike" alert when a tick's volume is a multiple
 * of the symbol's recent average volume.
 *
 * @module
 */

import { pushWindow, smaOf } from "./indicators.ts";
import type { AlertDraft, Analysis } from "./types.ts";

/** Number of previous volumes averaged. */
export const VOLUME_WINDOW = 20;
/** Previous volumes needed before a spike can fire, so a noisy start stays quiet. */
export const MIN_VOLUMES = 5;

/** Per-symbol state of {@linkcode volumeAnalysis}. */
export interface VolumeState {
  /** Last volumes, oldest first, at most {@linkcode VOLUME_WINDOW}. */
  volumes: number[];
}

/** Fires "volume_spike" when volume >= settings.volumeSpikeFactor x the previous average. */
export const volumeAnalysis: Analysis<VolumeState> = {
  group: "volume-analysis",
  step(state, { quote, settings }) {
    const volumes = state?.volumes ?? [];
    const alerts: AlertDraft[] = [];
    const average = volumes.length >= MIN_VOLUMES ? smaOf(volumes, volumes.length) : null;
    // A zero average would make every tick a spike with an infinite ratio.
    if (average !== null && average > 0 && quote.volume >= settings.volumeSpikeFactor * average) {
      const ratio = quote.volume / average;
      alerts.push({
        type: "volume_spike",
        symbol: quote.symbol,
        message: `${quote.symbol} volume ${quote.volume} is ${ratio.toFixed(1)}x ` +
          `its average of ${Math.round(average)}`,
        value: ratio,
      });
    }
    return {
      state: { volumes: pushWindow(volumes, { value: quote.volume, size: VOLUME_WINDOW }) },
      alerts,
    };
  },
};
