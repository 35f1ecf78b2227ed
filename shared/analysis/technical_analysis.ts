/**
 * Technical analysis: moving averages, MACD and RSI per symbol, with alerts
 * on moving-average crosses and RSI leaving the 30-70 band.
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
} from "./indicators.ts";
import type { AlertDraft, Analysis } from "./types.ts";

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

function crossSignal(before: Indicators, after: Indicators): "golden_cross" | "death_cross" | null {
  if (
    before.sma5 === null || before.sma20 === null || after.sma5 === null || after.sma20 === null
  ) return null;
  if (before.sma5 <= before.sma20 && after.sma5 > after.sma20) return "golden_cross";
  if (before.sma5 >= before.sma20 && after.sma5 < after.sma20) return "death_cross";
  return null;
}

function rsiSignal(
  before: Indicators,
  after: Indicators,
): "rsi_overbought" | "rsi_oversold" | null {
  if (before.rsi14 === null || after.rsi14 === null) return null;
  if (before.rsi14 <= 70 && after.rsi14 > 70) return "rsi_overbought";
  if (before.rsi14 >= 30 && after.rsi14 < 30) return "rsi_oversold";
  return null;
}

/** Tracks SMA(5/20), EMA(12/26), MACD and RSI(14); fires cross and RSI band alerts. */
export const technicalAnalysis: Analysis<TechnicalState> = {
  group: "technical-analysis",
  step(state, { quote }) {
    const price = quote.price;
    const next: TechnicalState = {
      prices: pushWindow(state?.prices ?? [], { value: price, size: 20 }),
      ema12: emaStep(state?.ema12, { value: price, period: 12 }),
      ema26: emaStep(state?.ema26, { value: price, period: 26 }),
      rsi: rsiStep(state?.rsi, { price, period: 14 }),
    };
    const before = indicatorsOf(state);
    const after = indicatorsOf(next);
    const alerts: AlertDraft[] = [];
    const cross = crossSignal(before, after);
    if (cross !== null && after.sma5 !== null && after.sma20 !== null) {
      const direction = cross === "golden_cross" ? "above" : "below";
      alerts.push({
        type: cross,
        symbol: quote.symbol,
        message: `${quote.symbol} SMA(5) ${after.sma5.toFixed(2)} crossed ${direction} ` +
          `SMA(20) ${after.sma20.toFixed(2)}`,
        value: after.sma5,
      });
    }
    const band = rsiSignal(before, after);
    if (band !== null && after.rsi14 !== null) {
      const level = band === "rsi_overbought" ? "above 70" : "below 30";
      alerts.push({
        type: band,
        symbol: quote.symbol,
        message: `${quote.symbol} RSI(14) ${after.rsi14.toFixed(2)} crossed ${level}`,
        value: after.rsi14,
      });
    }
    return { state: next, alerts };
  },
};
