/**
 * Market time: when each tick of one emit happened. Ticks are spaced by the
 * tick interval back from now, or share the time since the previous tick
 * when a burst asks for more ticks than real time allows; time never goes
 * back. See docs/quotes.md#market-time.
 *
 * @module
 */

/** What {@linkcode marketTimes} spaces the ticks of one call by. */
export interface MarketClock {
  /** The clock's reading, in ms since the epoch: the last tick's time. */
  now: number;
  /** Market time between two ticks when real time allows, in ms. */
  intervalMs: number;
  /** Market time of the previous tick, in ms; undefined before the first. */
  lastMs?: number;
}

/**
 * Market times of `ticks` ticks, in ms: the last is `now`, the others
 * `intervalMs` apart before it; when that would reach back to the previous
 * tick (a burst asks for more ticks than real time has passed), the ticks
 * share the time since the previous tick evenly instead. Times never go back:
 * with a clock behind the previous tick, every tick keeps that tick's time.
 *
 * @example
 * ```ts
 * marketTimes(3, { now: 10_000, intervalMs: 1000 }); // [8000, 9000, 10000]
 * marketTimes(4, { now: 10_000, intervalMs: 1000, lastMs: 9000 }); // [9250, 9500, 9750, 10000]
 * ```
 */
export function marketTimes(ticks: number, clock: MarketClock): number[] {
  const { now, intervalMs, lastMs } = clock;
  const first = now - (ticks - 1) * intervalMs;
  if (first >= 0 && (lastMs === undefined || first > lastMs)) {
    return Array.from({ length: ticks }, (_, k) => first + k * intervalMs);
  }
  const from = Math.max(0, lastMs ?? 0);
  if (now <= from) return new Array(ticks).fill(from);
  const span = now - from;
  return Array.from({ length: ticks }, (_, k) => from + Math.floor(((k + 1) * span) / ticks));
}
