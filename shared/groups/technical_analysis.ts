/**
 * Technical analysis: moving averages, MACD and RSI per symbol, with alerts
 * on moving-average crosses and RSI leaving its band. Both alerts have
 * hysteresis: a cross counts once SMA(5) and SMA(20) are apart by more than
 * settings.crossGapPercent of the price for settings.crossConfirmTicks ticks
 * in a row, and an RSI alert re-arms only after RSI came back
 * settings.rsiRearmPoints inside the band.
 *
 * @module
 */

import {
  type EmaState,
  emaStep,
  pushWindow,
  rsiOf,
  type RsiState,
  rsiStep,
  smaOf,
} from "../market/indicators.ts";
import { printed, printedAbove } from "../market/settings.ts";
import type { AlertDraft, Analysis, AnalysisSettings } from "../market/analysis.ts";

/** Which side of SMA(20) SMA(5) is on: 1 above, -1 below, 0 not known yet. */
export type Side = 1 | -1 | 0;

/** Hysteresis of the SMA cross. */
export interface CrossState {
  /** Side the gap was past the threshold on at the last tick; 0 inside the dead band. */
  side: Side;
  /** Ticks in a row the gap has been past the threshold on `side`. */
  run: number;
  /** Side last confirmed; a cross is a confirmation of the other side. */
  confirmed: Side;
}

/** Hysteresis of the RSI band alerts: which alerts may fire. */
export interface RsiBandState {
  /** True while an overbought alert may fire. */
  over: boolean;
  /** True while an oversold alert may fire. */
  under: boolean;
}

/** Per-symbol state of {@linkcode technicalAnalysis}. */
export interface TechnicalState {
  /** Last 20 prices, oldest first; both SMAs read from it. */
  prices: number[];
  /** EMA(12) of prices. */
  ema12: EmaState;
  /** EMA(26) of prices. */
  ema26: EmaState;
  /** RSI(14) of prices. */
  rsi: RsiState;
  /** Cross hysteresis; absent until SMA(20) exists. */
  cross?: CrossState;
  /** RSI alert hysteresis; absent until RSI(14) exists. */
  band?: RsiBandState;
}

/** Latest indicator values, null until enough prices. */
export interface Indicators {
  /** SMA of the last 5 prices. */
  sma5: number | null;
  /** SMA of the last 20 prices. */
  sma20: number | null;
  /** EMA(12). */
  ema12: number | null;
  /** EMA(26). */
  ema26: number | null;
  /** MACD line: EMA(12) - EMA(26). */
  macd: number | null;
  /** Wilder RSI(14). */
  rsi14: number | null;
}

/** Reads the latest indicators from a stored state (all null for no state). */
export function indicatorsOf(state: TechnicalState | undefined): Indicators {
  const ema12 = state?.ema12.value ?? null;
  const ema26 = state?.ema26.value ?? null;
  return {
    sma5: smaOf(state?.prices ?? [], 5),
    sma20: smaOf(state?.prices ?? [], 20),
    ema12,
    ema26,
    macd: ema12 !== null && ema26 !== null ? ema12 - ema26 : null,
    rsi14: rsiOf(state?.rsi, 14),
  };
}

const NO_CROSS: CrossState = { side: 0, run: 0, confirmed: 0 };

/** Advances the cross hysteresis by one tick; returns the side newly crossed to, if any. */
function crossStep(
  previous: CrossState | undefined,
  input: { price: number; after: Indicators; settings: AnalysisSettings },
): { cross: CrossState | undefined; crossed: Side } {
  const { price, after, settings } = input;
  if (after.sma5 === null || after.sma20 === null) return { cross: previous, crossed: 0 };
  const state = previous ?? NO_CROSS;
  const gap = after.sma5 - after.sma20;
  const limit = (settings.crossGapPercent / 100) * price;
  const side: Side = gap > limit ? 1 : gap < -limit ? -1 : 0;
  const run = side === 0 ? 0 : side === state.side ? state.run + 1 : 1;
  if (side === 0 || run < settings.crossConfirmTicks || side === state.confirmed) {
    return {
      cross: { side, run: Math.min(run, settings.crossConfirmTicks), confirmed: state.confirmed },
      crossed: 0,
    };
  }
  // The first confirmed side only sets the trend: nothing was crossed yet.
  return { cross: { side, run, confirmed: side }, crossed: state.confirmed === 0 ? 0 : side };
}

/** Advances the RSI band hysteresis; returns the alert type due, if any. */
function bandStep(
  previous: RsiBandState | undefined,
  input: { rsi: number | null; settings: AnalysisSettings },
): { band: RsiBandState | undefined; fired: "rsi_overbought" | "rsi_oversold" | null } {
  const { rsi, settings } = input;
  if (rsi === null) return { band: previous, fired: null };
  const { rsiOverbought: high, rsiOversold: low, rsiRearmPoints: rearm } = settings;
  // A band alert needs an RSI seen inside the band first, like a cross needs a before.
  const band = previous ?? { over: rsi <= high, under: rsi >= low };
  let { over, under } = band;
  if (rsi < high - rearm) over = true;
  if (rsi > low + rearm) under = true;
  if (previous !== undefined && over && printedAbove(rsi, high)) {
    return { band: { over: false, under }, fired: "rsi_overbought" };
  }
  if (previous !== undefined && under && printedAbove(low, rsi)) {
    return { band: { over, under: false }, fired: "rsi_oversold" };
  }
  return { band: { over, under }, fired: null };
}

/** Tracks SMA(5/20), EMA(12/26), MACD and RSI(14); fires cross and RSI band alerts. */
export const technicalAnalysis: Analysis<TechnicalState> = {
  group: "technical-analysis",
  // Quotes written before the first drain (by the emit or another producer) count too.
  start: "0",
  step(state, { quote, settings }) {
    const price = quote.price;
    const next: TechnicalState = {
      prices: pushWindow(state?.prices ?? [], { value: price, size: 20 }),
      ema12: emaStep(state?.ema12, { value: price, period: 12 }),
      ema26: emaStep(state?.ema26, { value: price, period: 26 }),
      rsi: rsiStep(state?.rsi, { price, period: 14 }),
    };
    const after = indicatorsOf(next);
    const alerts: AlertDraft[] = [];
    const { cross, crossed } = crossStep(state?.cross, { price, after, settings });
    if (cross !== undefined) next.cross = cross;
    const fast = after.sma5;
    const slow = after.sma20;
    if (crossed !== 0 && fast !== null && slow !== null) {
      const above = crossed === 1;
      // The gap threshold keeps the two apart; this guards prices below a dollar.
      if (above ? printedAbove(fast, slow) : printedAbove(slow, fast)) {
        alerts.push({
          type: above ? "golden_cross" : "death_cross",
          symbol: quote.symbol,
          message: `${quote.symbol} SMA(5) ${printed(fast)} crossed ${above ? "above" : "below"} ` +
            `SMA(20) ${printed(slow)}`,
          value: fast,
        });
      }
    }
    const { band, fired } = bandStep(state?.band, { rsi: after.rsi14, settings });
    if (band !== undefined) next.band = band;
    if (fired !== null && after.rsi14 !== null) {
      const level = fired === "rsi_overbought"
        ? `above ${settings.rsiOverbought}`
        : `below ${settings.rsiOversold}`;
      alerts.push({
        type: fired,
        symbol: quote.symbol,
        message: `${quote.symbol} RSI(14) ${printed(after.rsi14)} crossed ${level}`,
        value: after.rsi14,
      });
    }
    return { state: next, alerts };
  },
};
