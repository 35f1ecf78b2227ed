/**
 * The contract every analysis implements: a pure step from (state, { quote,
 * settings }) to (new state, alerts), so that the drain engine can commit state, alerts and
 * the ack together and replay any entry deterministically.
 *
 * @module
 */

import type { Quote } from "./quotes.ts";

/** An alert produced by an analysis, before the engine adds source_id, group and datetime. */
export interface AlertDraft {
  /** Kind of alert, e.g. "price_move", "volume_spike", "golden_cross". */
  type: string;
  /** Symbol the alert is about. */
  symbol: string;
  /** Human readable sentence. */
  message: string;
  /** The number that triggered the alert (percent, ratio, indicator value...). */
  value: number;
}

/** Thresholds the analyses read from configuration (shared/config.ts, docs/settings.md). */
export interface AnalysisSettings {
  /** Absolute change percent above which a price alert fires (PRICE_ALERT_PERCENT). */
  priceAlertPercent: number;
  /** Points |change %| must fall below the threshold to re-arm (PRICE_ALERT_REARM_PERCENT). */
  priceAlertRearmPercent: number;
  /** Multiple of the average volume at or above which a volume spike fires (VOLUME_SPIKE_FACTOR). */
  volumeSpikeFactor: number;
  /** Ticks of a symbol after a spike during which no other fires (VOLUME_SPIKE_GAP_TICKS). */
  volumeSpikeGapTicks: number;
  /** Gap between SMA(5) and SMA(20), in % of price, a cross must exceed (CROSS_GAP_PERCENT). */
  crossGapPercent: number;
  /** Ticks the gap must hold before a cross fires (CROSS_CONFIRM_TICKS). */
  crossConfirmTicks: number;
  /** RSI(14) above which an overbought alert fires (RSI_OVERBOUGHT). */
  rsiOverbought: number;
  /** RSI(14) below which an oversold alert fires (RSI_OVERSOLD). */
  rsiOversold: number;
  /** RSI points back inside the band that re-arm an RSI alert (RSI_REARM_POINTS). */
  rsiRearmPoints: number;
  /** Ticks of a session before highs and lows alert (SESSION_WARMUP_TICKS). */
  sessionWarmupTicks: number;
  /** % of price a new high or low must pass the last announced one by (SESSION_MARGIN_PERCENT). */
  sessionMarginPercent: number;
  /** Ticks of a symbol between two high or low alerts (SESSION_ALERT_GAP_TICKS). */
  sessionAlertGapTicks: number;
}

/** What one step applies: the quote, and the thresholds read from configuration. */
export interface StepInput {
  /** The quote to apply. */
  quote: Quote;
  /** Thresholds the analyses read from configuration. */
  settings: AnalysisSettings;
}

/** Result of applying one quote. */
export interface StepResult<S> {
  /** The symbol's state after the quote. */
  state: S;
  /** Alerts the quote produced, possibly none. */
  alerts: AlertDraft[];
}

/** One analysis, run as its own consumer group. State must be JSON-serialisable. */
export interface Analysis<S = unknown> {
  /** Consumer group name, e.g. "price-alerts". */
  group: string;
  /**
   * Where the group starts when it is created: "$" (quotes added from then on), "0" or an id.
   * @default {"$"}
   */
  start?: string;
  /** Applies one quote to the symbol's state (undefined for a symbol never seen). Pure. */
  step(state: S | undefined, input: StepInput): StepResult<S>;
}
