/**
 * A seedable stock quote simulator: a geometric random walk per symbol with
 * occasional jumps, log-normal volumes with occasional spikes and UTC trading
 * sessions. It is pure: the clock and the randomness are injected, and the
 * state is plain JSON so a cron job can store it between runs.
 *
 * @module
 */

import { marketTimes } from "./market_time.ts";
import { type Quote, SYMBOL_PATTERN } from "./quotes.ts";

/** Per-symbol simulator state, plain JSON. */
export interface SymbolState {
  /** Last price before rounding, so rounding errors do not accumulate in the walk. */
  price: number;
  /** UTC date (yyyy-mm-dd) of the current session. */
  sessionDate: string;
  /** First published price of the current session. */
  open: number;
  /** Highest published price of the current session. */
  high: number;
  /** Lowest published price of the current session. */
  low: number;
  /** Last published price of the previous session. */
  prevClose: number;
  /** Part of the log distance from the previous close due to jumps, fading each tick. */
  jump: number;
  /** Volume of the last tick. */
  volume: number;
  /** Total volume of the current session. */
  sessionVolume: number;
}

/** State of the whole simulator, plain JSON that can be stored and passed back in. */
export interface SimulatorState {
  /** State of each symbol simulated so far, by symbol. */
  symbols: Record<string, SymbolState>;
  /** Market time of the last tick, in ms since the epoch; absent before the first tick. */
  lastMs?: number;
}

/** Options for {@linkcode simulateTicks}. */
export interface SimulateOptions {
  /**
   * Symbols to simulate; each tick produces one quote per symbol.
   * @default {DEFAULT_SYMBOLS}
   */
  symbols?: string[];
  /**
   * Number of ticks, an integer from 1 to 100000.
   * @default {1}
   */
  ticks?: number;
  /**
   * The injected clock's reading, in ms since the epoch: the last tick is stamped
   * `now` and no quote lies after it (see {@linkcode marketTimes}). Required: the
   * simulator never reads a clock of its own.
   */
  now: number;
  /**
   * Market time between two ticks in ms, when real time allows (TICK_INTERVAL_MS).
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * Source of uniform numbers in [0, 1); pass {@linkcode createRandom} for reproducible output.
   * @default {Math.random}
   */
  random?: () => number;
}

/** Result of {@linkcode simulateTicks}. */
export interface SimulateResult {
  /** Generated quotes, ordered by time. */
  quotes: Quote[];
  /** State to pass to the next call so the walk continues. */
  state: SimulatorState;
}

/** Symbols simulated when none are given. */
export const DEFAULT_SYMBOLS: readonly string[] = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"];

/** Largest number of ticks one call may simulate. */
export const MAX_TICKS = 100_000;

/** Market time between two ticks when none is given, in ms. */
export const DEFAULT_TICK_INTERVAL_MS = 1000;

/** Largest tick interval, in ms (one hour). */
export const MAX_TICK_INTERVAL_MS = 3_600_000;

/** Chance per quote of a price jump. */
export const JUMP_PROBABILITY = 0.002;

/** Chance per quote of a volume spike. */
export const VOLUME_SPIKE_PROBABILITY = 0.005;

// decodeQuote rejects timestamps past 1e11 s, so quotes must stay before it.
const MAX_TIME_MS = 1e14;

// Known symbols get realistic prices, daily volatilities and per-tick volumes.
const KNOWN_SYMBOLS: Record<string, { price: number; dailyVol: number; volume: number }> = {
  AAPL: { price: 190, dailyVol: 0.016, volume: 1_200 },
  MSFT: { price: 410, dailyVol: 0.015, volume: 600 },
  GOOGL: { price: 170, dailyVol: 0.018, volume: 700 },
  AMZN: { price: 180, dailyVol: 0.02, volume: 900 },
  META: { price: 480, dailyVol: 0.024, volume: 500 },
  NVDA: { price: 120, dailyVol: 0.032, volume: 4_000 },
  TSLA: { price: 250, dailyVol: 0.035, volume: 2_000 },
  NFLX: { price: 620, dailyVol: 0.025, volume: 250 },
  AMD: { price: 160, dailyVol: 0.03, volume: 1_500 },
  IBM: { price: 180, dailyVol: 0.012, volume: 300 },
  JPM: { price: 200, dailyVol: 0.013, volume: 450 },
};

// The log distance from the previous close decays by this share each tick, so a
// session hovers around the previous close and only jumps (or a volatile name)
// push the change past the 2% alert threshold.
const REVERSION = 0.01;
// Jumps fade faster than the walk reverts, so a jump stands out for a few ticks.
const JUMP_DECAY = 0.1;
// Stationary spread of that distance as a share of the daily volatility.
const SPREAD_OF_DAILY_VOL = 0.35;
const VOLUME_SIGMA = 0.4;

interface SymbolProfile {
  basePrice: number;
  tickSigma: number;
  baseVolume: number;
}

/** Creates a seeded PRNG (mulberry32) returning uniform numbers in [0, 1). */
export function createRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot create random as 'seed' must be a finite number: current value is ${seed}`,
    );
  }
  let a = Math.trunc(seed) >>> 0;
  return function next(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns an empty simulator state, with no symbol simulated yet. */
export function initialSimulatorState(): SimulatorState {
  return { symbols: {} };
}

function hashString(value: string): number {
  // FNV-1a: stable across runs and platforms, unlike any built-in hash.
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function tickSigmaOf(dailyVol: number): number {
  // Stationary std of an AR(1) with coefficient 1 - k is sigma / sqrt(2k) for small k.
  return dailyVol * SPREAD_OF_DAILY_VOL * Math.sqrt(2 * REVERSION);
}

function profileOf(symbol: string): SymbolProfile {
  const known = KNOWN_SYMBOLS[symbol];
  if (known) {
    return {
      basePrice: known.price,
      tickSigma: tickSigmaOf(known.dailyVol),
      baseVolume: known.volume,
    };
  }
  const hash = hashString(symbol);
  // Independent-looking fractions from different bits of one hash.
  const priceFraction = (hash & 0xffff) / 0xffff;
  const volFraction = ((hash >>> 16) & 0xff) / 0xff;
  const volumeFraction = (hash >>> 24) / 0xff;
  return {
    // Log-uniform from 10 to 500 so cheap and expensive names are both common.
    basePrice: round2(10 * Math.pow(50, priceFraction)),
    tickSigma: tickSigmaOf(0.012 + 0.028 * volFraction),
    baseVolume: Math.round(200 + 1_800 * volumeFraction),
  };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function publish(price: number): number {
  return Math.max(0.01, round2(price));
}

function standardNormal(random: () => number): number {
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function uniform(random: () => number, range: { min: number; max: number }): number {
  const { min, max } = range;
  return min + (max - min) * random();
}

interface ValidOptions {
  symbols: string[];
  ticks: number;
  now: number;
  intervalMs: number;
  random: () => number;
}

function validateOptions(options: SimulateOptions): ValidOptions {
  const symbols = options.symbols ?? [...DEFAULT_SYMBOLS];
  const ticks = options.ticks ?? 1;
  const now = options.now;
  const intervalMs = options.intervalMs ?? DEFAULT_TICK_INTERVAL_MS;
  const random = options.random ?? Math.random;
  if (!Array.isArray(symbols) || symbols.length === 0) {
    throw new RangeError(
      `Cannot simulate ticks as 'symbols' must be a non-empty array: current value is ${
        JSON.stringify(symbols)
      }`,
    );
  }
  for (const symbol of symbols) {
    if (typeof symbol !== "string" || !SYMBOL_PATTERN.test(symbol)) {
      throw new RangeError(
        `Cannot simulate ticks as 'symbols' must match ${SYMBOL_PATTERN}: current value is ${
          JSON.stringify(symbol)
        }`,
      );
    }
  }
  if (new Set(symbols).size !== symbols.length) {
    throw new RangeError(
      `Cannot simulate ticks as 'symbols' must not repeat a symbol: current value is ${
        JSON.stringify(symbols)
      }`,
    );
  }
  if (!Number.isInteger(ticks) || ticks < 1 || ticks > MAX_TICKS) {
    throw new RangeError(
      `Cannot simulate ticks as 'ticks' must be an integer from 1 to ${MAX_TICKS}: current value is ${ticks}`,
    );
  }
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0 || now > MAX_TIME_MS) {
    throw new RangeError(
      `Cannot simulate ticks as 'now' must be a number of milliseconds from 0 to ${MAX_TIME_MS}: current value is ${now}`,
    );
  }
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > MAX_TICK_INTERVAL_MS) {
    throw new RangeError(
      `Cannot simulate ticks as 'intervalMs' must be an integer from 1 to ${MAX_TICK_INTERVAL_MS}: current value is ${intervalMs}`,
    );
  }
  if (typeof random !== "function") {
    throw new RangeError(
      `Cannot simulate ticks as 'random' must be a function: current value is ${typeof random}`,
    );
  }
  return { symbols, ticks, now: Math.floor(now), intervalMs, random };
}

/** What one tick of a symbol depends on besides its previous state. */
interface TickContext {
  /** The symbol's price and volume profile. */
  profile: SymbolProfile;
  /** UTC date (yyyy-mm-dd) of the tick. */
  date: string;
  /** Source of uniform numbers in [0, 1). */
  random: () => number;
}

function step(previous: SymbolState | undefined, tick: TickContext): SymbolState {
  const { profile, date, random } = tick;
  const last = previous?.price ?? profile.basePrice;
  const isNewSession = previous === undefined || previous.sessionDate !== date;
  // A brand-new symbol starts as if yesterday closed at its base price.
  const prevClose = isNewSession ? publish(last) : previous.prevClose;

  // Overnight the remains of a jump become part of the price the session starts from.
  let jump = isNewSession ? 0 : previous.jump;
  const walk = (Math.log(last / prevClose) - jump) * (1 - REVERSION) +
    profile.tickSigma * standardNormal(random);
  jump *= 1 - JUMP_DECAY;
  if (random() < JUMP_PROBABILITY) {
    const direction = random() < 0.5 ? -1 : 1;
    jump += direction * Math.log(1 + uniform(random, { min: 0.025, max: 0.05 }));
    // News moves are what the price alert is for: make sure the jump clears 2%
    // against the previous close even when the walk had drifted the other way.
    const floor = Math.log(1.021) + uniform(random, { min: 0, max: 0.01 });
    if (direction * (walk + jump) < floor) jump = direction * floor - walk;
  }
  const price = prevClose * Math.exp(walk + jump);

  let volume = profile.baseVolume *
    Math.exp(VOLUME_SIGMA * standardNormal(random) - (VOLUME_SIGMA * VOLUME_SIGMA) / 2);
  if (random() < VOLUME_SPIKE_PROBABILITY) volume *= uniform(random, { min: 4, max: 8 });
  const tickVolume = Math.max(1, Math.round(volume));

  const published = publish(price);
  if (isNewSession) {
    return {
      price,
      sessionDate: date,
      open: published,
      high: published,
      low: published,
      prevClose,
      jump,
      volume: tickVolume,
      sessionVolume: tickVolume,
    };
  }
  return {
    price,
    sessionDate: date,
    open: previous.open,
    high: Math.max(previous.high, published),
    low: Math.min(previous.low, published),
    prevClose,
    jump,
    volume: tickVolume,
    sessionVolume: previous.sessionVolume + tickVolume,
  };
}

/**
 * Simulates `ticks` rounds of one quote per symbol, continuing from `state`;
 * the same state, options and random sequence always give the same output.
 * Each tick is one market instant for every symbol (see {@linkcode marketTimes}).
 *
 * @example
 * ```ts
 * const random = createRandom(42);
 * const { quotes, state } = simulateTicks(initialSimulatorState(), {
 *   symbols: ["AAPL"],
 *   ticks: 3,
 *   now: Date.UTC(2024, 0, 2, 15),
 *   random,
 * });
 * ```
 * @throws {RangeError} When an option is out of range.
 */
export function simulateTicks(
  state: SimulatorState,
  options: SimulateOptions,
): SimulateResult {
  const { symbols, ticks, now, intervalMs, random } = validateOptions(options);
  // Copy so the caller's state is never mutated; it may still be in use.
  const next: Record<string, SymbolState> = { ...state.symbols };
  const profiles = symbols.map(profileOf);
  const quotes: Quote[] = [];
  const times = marketTimes(ticks, { now, intervalMs, lastMs: state.lastMs });
  for (const ms of times) {
    const datetime = new Date(ms).toISOString();
    for (let s = 0; s < symbols.length; s++) {
      const symbol = symbols[s];
      const current = step(next[symbol], {
        profile: profiles[s],
        date: datetime.slice(0, 10),
        random,
      });
      next[symbol] = current;
      const price = publish(current.price);
      const change = round2(price - current.prevClose);
      quotes.push({
        symbol,
        price,
        change,
        changePercent: round4((change / current.prevClose) * 100),
        volume: current.volume,
        sessionVolume: current.sessionVolume,
        // Whole seconds, as the tutorial's int(time.time()); datetime keeps the milliseconds.
        timestamp: Math.floor(ms / 1000),
        datetime,
        open: current.open,
        high: current.high,
        low: current.low,
        prevClose: current.prevClose,
      });
    }
  }
  return { quotes, state: { symbols: next, lastMs: times[times.length - 1] } };
}

/** Market time, re-exported: the simulator stamps every tick with it. */
export { type MarketClock, marketTimes } from "./market_time.ts";
