/**
 * Volume analysis: a "volume_spike" alert when a tick's volume is a multiple
 * of the symbol's recent average volume, at most one per symbol within
 * settings.volumeSpikeGapTicks ticks, so one burst of trading alerts once.
 *
 * @module
 */

import { pushWindow, smaOf } from "../market/indicators.ts";
import type { AlertDraft, Analysis } from "../market/analysis.ts";

/** Number of previous volumes averaged. */
export const VOLUME_WINDOW = 20;
/** Previous volumes needed before a spike can fire, so a noisy start stays quiet. */
export const MIN_VOLUMES = 5;

/** Per-symbol state of {@linkcode volumeAnalysis}. */
export interface VolumeState {
  /** Last volumes, oldest first, at most {@linkcode VOLUME_WINDOW}. */
  volumes: number[];
  /** Ticks since the last spike alert; absent before the first. */
  sinceAlert?: number;
}

/** Fires "volume_spike" when volume >= settings.volumeSpikeFactor x the previous average. */
export const volumeAnalysis: Analysis<VolumeState> = {
  group: "volume-analysis",
  // Quotes written before the first drain (by the emit or another producer) count too.
  start: "0",
  step(state, { quote, settings }) {
    const volumes = state?.volumes ?? [];
    const alerts: AlertDraft[] = [];
    const average = volumes.length >= MIN_VOLUMES ? smaOf(volumes, volumes.length) : null;
    const since = state?.sinceAlert === undefined ? undefined : state.sinceAlert + 1;
    const quiet = since === undefined || since > settings.volumeSpikeGapTicks;
    // A zero average would make every tick a spike with an infinite ratio.
    if (
      quiet && average !== null && average > 0 &&
      quote.volume >= settings.volumeSpikeFactor * average
    ) {
      const ratio = quote.volume / average;
      alerts.push({
        type: "volume_spike",
        symbol: quote.symbol,
        message: `${quote.symbol} volume ${quote.volume} is ${ratio.toFixed(1)}x ` +
          `its average of ${Math.round(average)}`,
        value: ratio,
      });
    }
    const next: VolumeState = {
      volumes: pushWindow(volumes, { value: quote.volume, size: VOLUME_WINDOW }),
    };
    const sinceAlert = alerts.length > 0 ? 0 : since;
    if (sinceAlert !== undefined) next.sinceAlert = sinceAlert;
    return { state: next, alerts };
  },
};
