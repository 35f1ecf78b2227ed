/**
 * The contract every analysis implements: a pure step from (state, { quote,
 * settings }) to (new state, alerts), so that the drain engine can commit state, alerts and
 * the ack together and replay any entry deterministically.
 *
 * @module
 */

import type { Quote } from "../quotes.ts";

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

/** Thresholds the analyses read from configuration. */
export interface AnalysisSettings {
  /** Absolute change percent at or above which a price alert fires. */
  priceAlertPercent: number;
  /** Multiple of the average volume at or above which a volume spike fires. */
  volumeSpikeFactor: number;
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
  /** Applies one quote to the symbol's state (undefined for a symbol never seen). Pure. */
  step(state: S | undefined, input: StepInput): StepResult<S>;
}
