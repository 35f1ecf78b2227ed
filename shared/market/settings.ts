/**
 * The analyses' thresholds, picked out of the validated settings, and the
 * printing rules their alerts share.
 *
 * @module
 */

import type { Config } from "../config.ts";
import type { AnalysisSettings } from "./analysis.ts";

/** The thresholds every analysis step gets, read from `config`. */
export function analysisSettings(config: Config): AnalysisSettings {
  return {
    priceAlertPercent: config.priceAlertPercent,
    priceAlertRearmPercent: config.priceAlertRearmPercent,
    volumeSpikeFactor: config.volumeSpikeFactor,
    volumeSpikeGapTicks: config.volumeSpikeGapTicks,
    crossGapPercent: config.crossGapPercent,
    crossConfirmTicks: config.crossConfirmTicks,
    rsiOverbought: config.rsiOverbought,
    rsiOversold: config.rsiOversold,
    rsiRearmPoints: config.rsiRearmPoints,
    sessionWarmupTicks: config.sessionWarmupTicks,
    sessionMarginPercent: config.sessionMarginPercent,
    sessionAlertGapTicks: config.sessionAlertGapTicks,
  };
}

/** Digits after the point in every number an alert message prints. */
export const PRINTED_DIGITS = 2;

/** A number as alert messages print it. */
export function printed(value: number): string {
  return value.toFixed(PRINTED_DIGITS);
}

/**
 * True when `a` is above `b` as printed, so a message that says "a above b"
 * never shows two equal numbers.
 */
export function printedAbove(a: number, b: number): boolean {
  // Printing rounds by at most half a cent, so values a cent or more apart need no printing;
  // most calls are those, and toFixed is the cost of a step.
  if (a <= b - 0.02) return false;
  if (a >= b + 0.02) return true;
  return Number(printed(a)) > Number(printed(b));
}
