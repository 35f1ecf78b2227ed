import assert from "node:assert/strict";
import type { Quote } from "../shared/quotes.ts";
import {
  type EmaState,
  emaStep,
  pushWindow,
  rsiOf,
  type RsiState,
  rsiStep,
  smaOf,
} from "../shared/analysis/indicators.ts";
import { marketEvents, sessionOf } from "../shared/analysis/market_events.ts";
import { priceAlerts } from "../shared/analysis/price_alerts.ts";
import { ANALYSES, findAnalysis } from "../shared/analysis/registry.ts";
import { indicatorsOf, technicalAnalysis } from "../shared/analysis/technical_analysis.ts";
import type { AlertDraft, Analysis, AnalysisSettings } from "../shared/analysis/types.ts";
import { volumeAnalysis } from "../shared/analysis/volume_analysis.ts";

const SETTINGS: AnalysisSettings = { priceAlertPercent: 5, volumeSpikeFactor: 3 };
const BASE_TIME = Date.UTC(2024, 0, 2, 14, 30) / 1000;

function quote(fields: Partial<Quote> = {}, minute = 0): Quote {
  const timestamp = fields.timestamp ?? BASE_TIME + minute * 60;
  return {
    symbol: "AAPL",
    price: 100,
    volume: 1000,
    timestamp,
    datetime: new Date(timestamp * 1000).toISOString(),
    ...fields,
  };
}

function prices(values: number[]): Quote[] {
  return values.map((price, i) => quote({ price }, i));
}

function run<S>(
  analysis: Analysis<S>,
  quotes: Quote[],
  initial?: S,
): { state: S | undefined; alerts: AlertDraft[][] } {
  let state = initial;
  const alerts: AlertDraft[][] = [];
  for (const q of quotes) {
    const result = analysis.step(state, { quote: q, settings: SETTINGS });
    state = result.state;
    alerts.push(result.alerts);
  }
  return { state, alerts };
}

function types(alerts: AlertDraft[][]): string[][] {
  return alerts.map((list) => list.map((alert) => alert.type));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function assertClose(actual: number | null, expected: number, digits = 10) {
  assert.notEqual(actual, null);
  assert.ok(
    Math.abs((actual as number) - expected) < 10 ** -digits,
    `expected ${actual} to be close to ${expected}`,
  );
}

// Deterministic pseudo-random walk, so failures are reproducible.
function randomWalk(count: number, seed = 42): Quote[] {
  let s = seed;
  function next(): number {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  }
  const out: Quote[] = [];
  let price = 100;
  for (let i = 0; i < count; i++) {
    price = Math.max(1, price * (1 + (next() - 0.5) * 0.04));
    out.push(quote({
      price,
      volume: Math.round(100 + next() * 900 * (next() < 0.1 ? 10 : 1)),
      changePercent: (next() - 0.5) * 16,
      // Spread quotes over several UTC days, with a few late entries.
      timestamp: BASE_TIME + i * 3 * 3600 - (next() < 0.05 ? 86400 : 0),
    }));
  }
  return out;
}

// Closes and RSI(14) column of ChartSchool's RSI spreadsheet (cs-rsi.xls). The article's table
// shows the closes rounded to two decimals, but the published RSI values come from these
// four-decimal closes: the rounded ones give 70.46 for the first RSI instead of 70.53.
const WILDER_CLOSES = [
  44.3389,
  44.0902,
  44.1497,
  43.6124,
  44.3278,
  44.8264,
  45.0955,
  45.4245,
  45.8433,
  46.0826,
  45.8931,
  46.0328,
  45.614,
  46.282,
  46.282,
  46.0028,
  46.0328,
  46.4116,
  46.2222,
  45.6439,
  46.2122,
  46.2521,
  45.7137,
  46.4515,
  45.7835,
  45.3548,
  44.0288,
  44.1783,
  44.2181,
  44.5672,
  43.4205,
  42.6628,
  43.1314,
];
const WILDER_RSI = [
  70.53,
  66.32,
  66.55,
  69.41,
  66.36,
  57.97,
  62.93,
  63.26,
  56.06,
  62.38,
  54.71,
  50.42,
  39.99,
  41.46,
  41.87,
  45.46,
  37.30,
  33.08,
  37.77,
];

Deno.test("pushWindow appends and keeps only the last values", () => {
  assert.deepEqual(pushWindow([], { value: 1, size: 3 }), [1]);
  assert.deepEqual(pushWindow([1, 2, 3], { value: 4, size: 3 }), [2, 3, 4]);
});

Deno.test("pushWindow does not mutate the window it is given", () => {
  const window = deepFreeze([1, 2, 3]);
  pushWindow(window, { value: 4, size: 3 });
  assert.deepEqual(window, [1, 2, 3]);
});

Deno.test("SMA averages the last N values and is null with fewer", () => {
  assert.equal(smaOf([1, 2, 3, 4], 5), null);
  assert.equal(smaOf([1, 2, 3, 4, 5], 5), 3);
  assert.equal(smaOf([1, 2, 3, 4, 5, 6], 5), 4);
  assert.equal(smaOf([2, 4, 6, 8, 10, 12, 14], 3), 12);
});

Deno.test("EMA is null until N values, seeds with their SMA, then smooths with 2/(N+1)", () => {
  let state: EmaState | undefined;
  const values: (number | null)[] = [];
  for (const value of [2, 4, 6, 8, 10, 4]) {
    state = emaStep(state, { value, period: 3 });
    values.push(state.value);
  }
  // Seed (2+4+6)/3 = 4; alpha 0.5: 4+0.5*(8-4) = 6, 6+0.5*(10-6) = 8, 8+0.5*(4-8) = 6.
  assert.deepEqual(values, [null, null, 4, 6, 8, 6]);
});

Deno.test("EMA(12) of a linear series lags it by (N-1)/2 once seeded", () => {
  let state: EmaState | undefined;
  for (let price = 1; price <= 30; price++) state = emaStep(state, { value: price, period: 12 });
  assertClose(state?.value ?? null, 30 - 5.5);
});

Deno.test("EMA step does not mutate its input state", () => {
  const seeding = deepFreeze<EmaState>({ seed: [1, 2], value: null });
  assert.deepEqual(emaStep(seeding, { value: 3, period: 3 }), { seed: [], value: 2 });
  assert.deepEqual(seeding, { seed: [1, 2], value: null });
});

Deno.test("RSI(14) matches the StockCharts Wilder example to two decimals", () => {
  let state: RsiState | undefined;
  const values: (number | null)[] = [];
  for (const close of WILDER_CLOSES) {
    state = rsiStep(state, { price: close, period: 14 });
    values.push(rsiOf(state, 14));
  }
  assert.deepEqual(values.slice(0, 14), new Array(14).fill(null));
  assert.deepEqual(
    values.slice(14).map((value) => Number((value as number).toFixed(2))),
    WILDER_RSI,
  );
});

Deno.test("RSI is 100 when there were no losses and 0 when there were no gains", () => {
  let up: RsiState | undefined;
  let down: RsiState | undefined;
  for (let i = 0; i <= 14; i++) {
    up = rsiStep(up, { price: 10 + i, period: 14 });
    down = rsiStep(down, { price: 30 - i, period: 14 });
  }
  assert.equal(rsiOf(up, 14), 100);
  assert.equal(rsiOf(down, 14), 0);
});

Deno.test("RSI of flat prices is 100 because the average loss is 0", () => {
  let state: RsiState | undefined;
  for (let i = 0; i <= 14; i++) state = rsiStep(state, { price: 50, period: 14 });
  assert.equal(rsiOf(state, 14), 100);
});

Deno.test("RSI uses a simple average for the first period, then Wilder smoothing", () => {
  let state: RsiState | undefined;
  // Changes: +1, -1, +1 over a period of 2.
  for (const price of [10, 11, 10, 11]) state = rsiStep(state, { price, period: 2 });
  // Seed: gain 0.5, loss 0.5; then gain (0.5*1 + 1)/2 = 0.75, loss (0.5*1 + 0)/2 = 0.25.
  assert.deepEqual(state, { last: 11, changes: 2, avgGain: 0.75, avgLoss: 0.25 });
  assert.equal(rsiOf(state, 2), 75);
  assert.equal(rsiOf(undefined, 2), null);
});

Deno.test("price alert fires once per crossing and re-arms below the threshold", () => {
  const { alerts, state } = run(
    priceAlerts,
    [1, 5, 6, -7, 4.9, -5.5, 0].map((changePercent) => quote({ changePercent })),
  );
  assert.deepEqual(types(alerts), [[], ["price_move"], [], [], [], ["price_move"], []]);
  assert.equal(alerts[1][0].value, 5);
  assert.equal(alerts[1][0].symbol, "AAPL");
  assert.equal(alerts[1][0].message, "AAPL moved +5.00% (threshold 5%)");
  assert.equal(alerts[5][0].value, -5.5);
  assert.equal(alerts[5][0].message, "AAPL moved -5.50% (threshold 5%)");
  assert.deepEqual(state, { armed: true });
});

Deno.test("price alert skips quotes without changePercent and keeps its state", () => {
  const first = priceAlerts.step(undefined, { quote: quote(), settings: SETTINGS });
  assert.deepEqual(first, { state: { armed: true }, alerts: [] });
  const fired = priceAlerts.step(undefined, {
    quote: quote({ changePercent: 8 }),
    settings: SETTINGS,
  });
  const skipped = priceAlerts.step(fired.state, { quote: quote(), settings: SETTINGS });
  assert.deepEqual(skipped, { state: { armed: false }, alerts: [] });
  // Still disarmed: a move that stays above the threshold is the same crossing.
  assert.deepEqual(
    priceAlerts.step(skipped.state, { quote: quote({ changePercent: 9 }), settings: SETTINGS })
      .alerts,
    [],
  );
});

Deno.test("volume spike needs five previous volumes and fires at the factor", () => {
  const { alerts } = run(
    volumeAnalysis,
    [100, 100, 100, 100, 1000, 100].map((volume) => quote({ volume })),
  );
  // Only four previous volumes before the 1000.
  assert.deepEqual(types(alerts), [[], [], [], [], [], []]);

  const spike = run(
    volumeAnalysis,
    [100, 100, 100, 100, 100, 300, 299].map((volume) => quote({ volume })),
  );
  // Average of the five previous is 100: 300 is exactly 3x. Then the average is 133.33.
  assert.deepEqual(types(spike.alerts), [[], [], [], [], [], ["volume_spike"], []]);
  assert.equal(spike.alerts[5][0].value, 3);
  assert.equal(spike.alerts[5][0].message, "AAPL volume 300 is 3.0x its average of 100");
});

Deno.test("volume spike ratio uses the average of the previous volumes only", () => {
  const { alerts } = run(
    volumeAnalysis,
    [100, 200, 300, 400, 500, 1500].map((volume) => quote({ volume })),
  );
  assert.equal(alerts[5][0].value, 5);
});

Deno.test("volume window keeps the last 20 volumes", () => {
  const volumes = Array.from({ length: 25 }, (_, i) => i + 1);
  const { state } = run(volumeAnalysis, volumes.map((volume) => quote({ volume })));
  assert.deepEqual(state?.volumes, volumes.slice(5));
  // Average of 6..25 is 15.5, so 3 x 15.5 = 46.5 is the threshold.
  assert.deepEqual(
    volumeAnalysis.step(state, { quote: quote({ volume: 46 }), settings: SETTINGS }).alerts,
    [],
  );
  assert.equal(
    volumeAnalysis.step(state, { quote: quote({ volume: 62 }), settings: SETTINGS }).alerts[0]
      .value,
    4,
  );
});

Deno.test("volume spike never fires on a zero average", () => {
  const { alerts } = run(volumeAnalysis, [0, 0, 0, 0, 0, 10].map((volume) => quote({ volume })));
  assert.deepEqual(types(alerts), [[], [], [], [], [], []]);
});

Deno.test("technical indicators are all null for no state", () => {
  assert.deepEqual(indicatorsOf(undefined), {
    sma5: null,
    sma20: null,
    ema12: null,
    ema26: null,
    macd: null,
    rsi14: null,
  });
});

Deno.test("technical indicators of a linear series match hand-computed values", () => {
  const values = Array.from({ length: 26 }, (_, i) => i + 1);
  const at25 = run(technicalAnalysis, prices(values.slice(0, 25))).state;
  assert.deepEqual(indicatorsOf(at25), {
    sma5: 23,
    sma20: 15.5,
    ema12: 19.5,
    ema26: null,
    macd: null,
    rsi14: 100,
  });
  const at26 = indicatorsOf(run(technicalAnalysis, prices(values)).state);
  assert.equal(at26.sma5, 24);
  assert.equal(at26.sma20, 16.5);
  assertClose(at26.ema12, 20.5);
  assert.equal(at26.ema26, 13.5);
  assertClose(at26.macd, 7);
  assert.equal(at26.rsi14, 100);
});

Deno.test("technical analysis fires golden and death crosses of SMA(5) and SMA(20)", () => {
  // 40 down to 21: SMA(5) 23 below SMA(20) 30.5.
  const falling = Array.from({ length: 20 }, (_, i) => 40 - i);
  const { alerts, state } = run(technicalAnalysis, prices([...falling, 100, 1, 1]));
  assert.deepEqual(alerts.slice(0, 20).flat(), []);
  // At 100: SMA(5) 38 above SMA(20) 33.5; RSI also jumps from 0 to above 70.
  assert.deepEqual(types(alerts.slice(20)), [["golden_cross", "rsi_overbought"], [], [
    "death_cross",
  ]]);
  assert.equal(alerts[20][0].value, 38);
  assert.equal(alerts[20][0].message, "AAPL SMA(5) 38.00 crossed above SMA(20) 33.50");
  assertClose(alerts[20][1].value, 100 - 100 / (1 + 79 / 13));
  // At the second 1: SMA(5) 29 below SMA(20) 29.75.
  assert.equal(alerts[22][0].value, 29);
  assert.equal(alerts[22][0].message, "AAPL SMA(5) 29.00 crossed below SMA(20) 29.75");
  assert.equal(indicatorsOf(state).sma20, 29.75);
});

Deno.test("technical analysis fires rsi_oversold when RSI crosses below 30", () => {
  const rising = Array.from({ length: 15 }, (_, i) => 50 + i);
  const { alerts } = run(technicalAnalysis, prices([...rising, 1, 1]));
  // RSI goes from null to 100 without an alert: a cross needs a previous RSI.
  assert.deepEqual(alerts.slice(0, 15).flat(), []);
  assert.deepEqual(types(alerts.slice(15)), [["rsi_oversold"], []]);
  // Gain 13/14, loss 63/14.
  assertClose(alerts[15][0].value, 100 - 100 / (1 + 13 / 63));
  assert.match(alerts[15][0].message, /^AAPL RSI\(14\) 17\.11 crossed below 30$/);
});

Deno.test("market events open a session, then report new highs and lows", () => {
  const { alerts, state } = run(marketEvents, [
    quote({ price: 100 }, 0),
    quote({ price: 101 }, 1),
    quote({ price: 99 }, 2),
    quote({ price: 100 }, 3),
    quote({ price: 101 }, 4),
    quote({ price: 102.5 }, 5),
  ]);
  assert.deepEqual(types(alerts), [
    ["session_open"],
    ["new_session_high"],
    ["new_session_low"],
    [],
    [],
    ["new_session_high"],
  ]);
  assert.deepEqual(alerts.flat().map((alert) => alert.value), [100, 101, 99, 102.5]);
  assert.equal(alerts[0][0].message, "AAPL opened 2024-01-02 at 100");
  assert.deepEqual(state, { session: "2024-01-02", high: 102.5, low: 99 });
});

Deno.test("market events open a new session on the next UTC date", () => {
  const first = marketEvents.step(undefined, { quote: quote({ price: 100 }), settings: SETTINGS });
  const next = marketEvents.step(first.state, {
    quote: quote({ price: 90 }, 24 * 60),
    settings: SETTINGS,
  });
  assert.deepEqual(types([next.alerts]), [["session_open"]]);
  assert.equal(next.alerts[0].value, 90);
  assert.deepEqual(next.state, { session: "2024-01-03", high: 90, low: 90 });
});

Deno.test("market events ignore a late quote from an older session", () => {
  const first = marketEvents.step(undefined, { quote: quote({ price: 100 }), settings: SETTINGS });
  const late = marketEvents.step(first.state, {
    quote: quote({ price: 500 }, -24 * 60),
    settings: SETTINGS,
  });
  assert.deepEqual(late, { state: { session: "2024-01-02", high: 100, low: 100 }, alerts: [] });
});

Deno.test("market session is the UTC date, falling back to the timestamp", () => {
  assert.equal(sessionOf(quote({ datetime: "2024-01-02T23:30:00-05:00" })), "2024-01-03");
  assert.equal(sessionOf(quote({ datetime: "not a date", timestamp: BASE_TIME })), "2024-01-02");
});

for (const analysis of ANALYSES) {
  Deno.test(`${analysis.group} gives the same results after a JSON round trip of its state`, () => {
    const quotes = randomWalk(300);
    const inMemory = run(analysis, quotes);
    let state: unknown;
    const alerts: AlertDraft[][] = [];
    for (const q of quotes) {
      const result = analysis.step(
        JSON.parse(JSON.stringify(state ?? null)) ?? undefined,
        { quote: q, settings: SETTINGS },
      );
      state = result.state;
      alerts.push(result.alerts);
    }
    assert.deepEqual(alerts, inMemory.alerts);
    assert.deepEqual(state, inMemory.state);
    // The walk must exercise the analysis, or this test proves nothing.
    assert.ok(inMemory.alerts.flat().length > 0);
  });

  Deno.test(`${analysis.group} step does not mutate its input state`, () => {
    let state: unknown;
    for (const q of randomWalk(120)) {
      const before = structuredClone(state);
      const result = analysis.step(deepFreeze(state), { quote: q, settings: SETTINGS });
      assert.deepEqual(state, before);
      state = result.state;
    }
  });

  Deno.test(`${analysis.group} step is deterministic`, () => {
    const quotes = randomWalk(200, 7);
    assert.deepEqual(run(analysis, quotes), run(analysis, quotes));
  });
}

Deno.test("registry lists the analyses in engine order and finds them by group", () => {
  assert.deepEqual(ANALYSES.map((analysis) => analysis.group), [
    "price-alerts",
    "volume-analysis",
    "technical-analysis",
    "market-events",
  ]);
  assert.equal(findAnalysis("technical-analysis"), technicalAnalysis);
  assert.equal(findAnalysis("market-events"), marketEvents);
  assert.equal(findAnalysis("nope"), undefined);
});
