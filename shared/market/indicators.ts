/**
 * Incremental indicators on plain-data state: every helper returns a new
 * state and never mutates its input, so analysis state stays JSON-safe and
 * can be reloaded between any two quotes.
 *
 * @module
 */

/** What {@linkcode pushWindow} appends, and how much it keeps. */
export interface WindowInput {
  /** Value to append. */
  value: number;
  /** Most values the window keeps. */
  size: number;
}

/**
 * Appends a value to a window, keeping only the last `size` values.
 *
 * @example
 * ```ts
 * pushWindow([1, 2, 3], { value: 4, size: 3 }); // [2, 3, 4]
 * ```
 */
export function pushWindow(window: readonly number[], input: WindowInput): number[] {
  return [...window, input.value].slice(-input.size);
}

/** Simple average of the last `period` values of a window, or null while it holds fewer. */
export function smaOf(window: readonly number[], period: number): number | null {
  if (window.length < period) return null;
  let sum = 0;
  for (let i = window.length - period; i < window.length; i++) sum += window[i];
  return sum / period;
}

/** State of an exponential moving average. */
export interface EmaState {
  /** First values, kept until there are enough to seed the average. */
  seed: number[];
  /** Current average, null until seeded. */
  value: number | null;
}

/** What {@linkcode emaStep} applies, and over how many values. */
export interface EmaInput {
  /** Value to apply. */
  value: number;
  /** Period of the average. */
  period: number;
}

/**
 * Applies one value to an EMA seeded with the SMA of its first `period` values.
 *
 * @example
 * ```ts
 * let ema: EmaState | undefined;
 * for (const price of [1, 2, 3, 4]) ema = emaStep(ema, { value: price, period: 3 });
 * ema?.value; // 3
 * ```
 */
export function emaStep(state: EmaState | undefined, input: EmaInput): EmaState {
  const { value, period } = input;
  if (state?.value != null) {
    const alpha = 2 / (period + 1);
    return { seed: [], value: state.value + alpha * (value - state.value) };
  }
  const seed = [...(state?.seed ?? []), value];
  if (seed.length < period) return { seed, value: null };
  return { seed: [], value: smaOf(seed, period) };
}

/** State of a Wilder-smoothed RSI. */
export interface RsiState {
  /** Previous price, null before the first one. */
  last: number | null;
  /** Number of changes seen, capped at the period. */
  changes: number;
  /** Average gain: a plain mean while seeding, Wilder-smoothed afterwards. */
  avgGain: number;
  /** Average loss (positive): a plain mean while seeding, Wilder-smoothed afterwards. */
  avgLoss: number;
}

/** What {@linkcode rsiStep} applies, and over how many changes. */
export interface RsiInput {
  /** Price to apply. */
  price: number;
  /** Number of changes the RSI covers. */
  period: number;
}

/**
 * Applies one price to a Wilder RSI over `period` changes.
 *
 * @example
 * ```ts
 * let rsi: RsiState | undefined;
 * for (const price of [10, 11, 10, 11]) rsi = rsiStep(rsi, { price, period: 2 });
 * rsiOf(rsi, 2);
 * ```
 */
export function rsiStep(state: RsiState | undefined, input: RsiInput): RsiState {
  const { price, period } = input;
  if (state === undefined || state.last === null) {
    return { last: price, changes: 0, avgGain: 0, avgLoss: 0 };
  }
  const change = price - state.last;
  // A running mean while seeding and Wilder's (prev * (n - 1) + x) / n afterwards
  // are the same formula with n capped at the period.
  const n = Math.min(state.changes + 1, period);
  return {
    last: price,
    changes: n,
    avgGain: (state.avgGain * (n - 1) + Math.max(change, 0)) / n,
    avgLoss: (state.avgLoss * (n - 1) + Math.max(-change, 0)) / n,
  };
}

/** RSI of a state, or null until `period` changes have been seen. */
export function rsiOf(state: RsiState | undefined, period: number): number | null {
  if (state === undefined || state.changes < period) return null;
  if (state.avgLoss === 0) return 100;
  return 100 - 100 / (1 + state.avgGain / state.avgLoss);
}
