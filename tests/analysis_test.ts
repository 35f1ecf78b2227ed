import assert from "node:assert/strict";
import type { Quote } from "../shared/market/quotes.ts";
import {
  type EmaState,
  emaStep,
  pushWindow,
  rsiOf,
  type RsiState,
  rsiStep,
  smaOf,
} from "../shared/market/indicators.ts";
import { marketEvents, sessionOf } from "../shared/groups/market_events.ts";
import { priceAlerts } from "../shared/groups/price_alerts.ts";
import { ANALYSES, findAnalysis } from "../shared/groups/registry.ts";
import { indicatorsOf, technicalAnalysis } from "../shared/groups/technical_analysis.ts";
import { analysisSettings } from "../shared/market/settings.ts";
import type { AlertDraft, Analysis, AnalysisSettings } from "../shared/market/analysis.ts";
import { volumeAnalysis } from "../shared/groups/volume_analysis.ts";
import { loadConfig } from "../shared/config.ts";

/** The default settings, with a price threshold of 5% that the hand-made series cross. */
const SETTINGS: AnalysisSettings = { ...analysisSettings(loadConfig({})), priceAlertPercent: 5 };
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
  settings: AnalysisSettings = SETTINGS,
): { state: S | undefined; alerts: AlertDraft[][] } {
  let state: S | undefined;
  const alerts: AlertDraft[][] = [];
  for (const q of quotes) {
    const result = analysis.step(state, { quote: q, settings });
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

Deno.test("price alert fires once per crossing and re-arms only clearly below the threshold", () => {
  const { alerts, state } = run(
    priceAlerts,
    [1, 5, 5.2, 6, -7, 4.6, -5.5, 4.4, 5.1, 0, -5.5].map((changePercent) =>
      quote({ changePercent })
    ),
  );
  assert.deepEqual(types(alerts), [
    [],
    // 5.00% against a 5% threshold: equal as printed, so no alert.
    [],
    ["price_move"],
    [],
    [],
    // 4.6 is below 5 but not below 5 - 0.5: still the same crossing.
    [],
    [],
    [],
    ["price_move"],
    [],
    ["price_move"],
  ]);
  assert.equal(alerts[2][0].value, 5.2);
  assert.equal(alerts[2][0].symbol, "AAPL");
  assert.equal(alerts[2][0].message, "AAPL moved +5.20% against the previous close (threshold 5%)");
  assert.equal(alerts[10][0].value, -5.5);
  assert.equal(
    alerts[10][0].message,
    "AAPL moved -5.50% against the previous close (threshold 5%)",
  );
  assert.deepEqual(state, { armed: false });
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

Deno.test("a volume spike keeps quiet for VOLUME_SPIKE_GAP_TICKS ticks after it fired", () => {
  const volumes = [100, 100, 100, 100, 100, 1000, 1000, ...new Array(9).fill(100), 1000];
  const { alerts } = run(
    volumeAnalysis,
    volumes.map((volume) => quote({ volume })),
    { ...SETTINGS, volumeSpikeGapTicks: 10 },
  );
  const fired = types(alerts).flatMap((list, i) => list.length > 0 ? [i] : []);
  // The second 1000 is within 10 ticks of the first; the last one is 11 ticks later.
  assert.deepEqual(fired, [5, 16]);
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

function sma(values: number[], end: number, period: number): number {
  const window = values.slice(end + 1 - period, end + 1);
  return window.reduce((sum, v) => sum + v, 0) / period;
}

Deno.test("a golden or death cross fires once the SMA gap has held past the threshold for CROSS_CONFIRM_TICKS", () => {
  // 40 down to 17 sets a falling trend (no alert: nothing was crossed yet), then 60s and 10s.
  const series = [
    ...Array.from({ length: 24 }, (_, i) => 40 - i),
    ...new Array(8).fill(60),
    ...new Array(8).fill(10),
  ];
  const { alerts } = run(technicalAnalysis, prices(series));
  const crosses = alerts.flatMap((list, i) =>
    list.filter((a) => a.type.endsWith("_cross")).map((a) => ({ i, a }))
  );
  assert.equal(SETTINGS.crossConfirmTicks, 5);
  // SMA(5) is above SMA(20) past 0.3% from index 25: the fifth such tick is 29.
  assert.deepEqual(crosses.map((c) => [c.i, c.a.type]), [[29, "golden_cross"], [
    38,
    "death_cross",
  ]]);
  const golden = crosses[0].a;
  assert.equal(golden.value, sma(series, 29, 5));
  assert.equal(
    golden.message,
    `AAPL SMA(5) ${sma(series, 29, 5).toFixed(2)} crossed above SMA(20) ${
      sma(series, 29, 20).toFixed(2)
    }`,
  );
  assert.equal(
    crosses[1].a.message,
    `AAPL SMA(5) 10.00 crossed below SMA(20) ${sma(series, 38, 20).toFixed(2)}`,
  );
});

Deno.test("SMA crosses inside the gap threshold or shorter than the confirmation never alert", () => {
  // A trend, then prices that whipsaw 0.02% around 100: the SMAs cross on many ticks.
  const whipsaw = [
    ...Array.from({ length: 25 }, (_, i) => 90 + i * 0.4),
    ...Array.from({ length: 200 }, (_, i) => 100 + (i % 6 < 3 ? 0.02 : -0.02)),
  ];
  const quiet = run(technicalAnalysis, prices(whipsaw));
  assert.deepEqual(quiet.alerts.flat().filter((a) => a.type.endsWith("_cross")), []);
  // One tick far below, then back up: SMA(5) dips under SMA(20) for one tick only.
  const rising = Array.from({ length: 30 }, (_, i) => 50 + i);
  const blip = run(technicalAnalysis, prices([...rising, 20, 90, 90, 90, 90, 90]));
  assert.deepEqual(blip.alerts.flat().filter((a) => a.type.endsWith("_cross")), []);
});

Deno.test("rsi_overbought fires above RSI_OVERBOUGHT and re-arms only RSI_REARM_POINTS back inside", () => {
  const falling = Array.from({ length: 15 }, (_, i) => 80 - i);
  // RSI: 0, then 83 (alert), 83, 70 (not below 65), 77 (no alert), 53 (re-armed), 77 (alert).
  const series = [...falling, 130, 131, 118, 140, 100, 230];
  const { alerts } = run(technicalAnalysis, prices(series));
  const fired = alerts.flatMap((list, i) =>
    list.filter((a) => a.type.startsWith("rsi_")).map((a) => ({ i, a }))
  );
  assert.deepEqual(fired.map(({ i, a }) => [i, a.type]), [
    [15, "rsi_overbought"],
    [20, "rsi_overbought"],
  ]);
  for (const { a } of fired) {
    assert.ok(a.value > 75);
    assert.match(a.message, /^AAPL RSI\(14\) \d+\.\d\d crossed above 75$/);
  }
});

Deno.test("technical analysis fires rsi_oversold when RSI crosses below RSI_OVERSOLD", () => {
  const rising = Array.from({ length: 15 }, (_, i) => 50 + i);
  const { alerts } = run(technicalAnalysis, prices([...rising, 1, 1]));
  // RSI goes from null to 100 without an alert: a cross needs a previous RSI.
  assert.deepEqual(alerts.slice(0, 15).flat(), []);
  assert.deepEqual(types(alerts.slice(15)), [["rsi_oversold"], []]);
  // Gain 13/14, loss 63/14.
  assertClose(alerts[15][0].value, 100 - 100 / (1 + 13 / 63));
  assert.match(alerts[15][0].message, /^AAPL RSI\(14\) 17\.11 crossed below 25$/);
});

Deno.test("market events report highs and lows only after the warm-up, past the margin and the gap", () => {
  const settings = {
    ...SETTINGS,
    sessionWarmupTicks: 3,
    sessionMarginPercent: 1,
    sessionAlertGapTicks: 4,
  };
  const series = [100, 101, 99, 102, 103, 105, 98, 97.5, 97, 96.99];
  const { alerts, state } = run(
    marketEvents,
    series.map((price, i) => quote({ price }, i)),
    settings,
  );
  assert.deepEqual(types(alerts), [
    ["session_open"],
    // Ticks 2 and 3 are the warm-up: records then are no news.
    [],
    [],
    // 102 beats 101 but not by 1%.
    [],
    ["new_session_high"],
    // 105 is within 4 ticks of the last alert.
    [],
    [],
    [],
    // 97 is 2% under the warm-up low of 99, 4 ticks after the last alert.
    ["new_session_low"],
    // 96.99 is a record, but not 1% under the announced 97.
    [],
  ]);
  assert.equal(alerts[0][0].message, "AAPL opened 2024-01-02 at 100");
  assert.equal(alerts[4][0].message, "AAPL new session high 103.00 (previous 102.00)");
  assert.equal(alerts[8][0].message, "AAPL new session low 97.00 (previous 97.50)");
  assert.deepEqual(alerts.flat().map((alert) => alert.value), [100, 103, 97]);
  assert.deepEqual(state, {
    session: "2024-01-02",
    high: 105,
    low: 96.99,
    ticks: 10,
    alertTick: 9,
    announcedHigh: 103,
    announcedLow: 97,
  });
});

Deno.test("a new session high that equals the old one at printed precision is no alert", () => {
  const settings = { ...SETTINGS, sessionWarmupTicks: 1, sessionMarginPercent: 0 };
  const { alerts } = run(
    marketEvents,
    [100, 100.001, 100.004].map((price, i) => quote({ price }, i)),
    settings,
  );
  assert.deepEqual(types(alerts), [["session_open"], [], []]);
});

Deno.test("market events open a new session on the next UTC date", () => {
  const first = marketEvents.step(undefined, { quote: quote({ price: 100 }), settings: SETTINGS });
  const next = marketEvents.step(first.state, {
    quote: quote({ price: 90 }, 24 * 60),
    settings: SETTINGS,
  });
  assert.deepEqual(types([next.alerts]), [["session_open"]]);
  assert.equal(next.alerts[0].value, 90);
  assert.deepEqual(next.state, { session: "2024-01-03", high: 90, low: 90, ticks: 1 });
});

Deno.test("market events ignore a late quote from an older session", () => {
  const first = marketEvents.step(undefined, { quote: quote({ price: 100 }), settings: SETTINGS });
  const late = marketEvents.step(first.state, {
    quote: quote({ price: 500 }, -24 * 60),
    settings: SETTINGS,
  });
  assert.deepEqual(late, {
    state: { session: "2024-01-02", high: 100, low: 100, ticks: 1 },
    alerts: [],
  });
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
    "vwap-deviation",
  ]);
  assert.equal(findAnalysis("technical-analysis"), technicalAnalysis);
  assert.equal(findAnalysis("market-events"), marketEvents);
  assert.equal(findAnalysis("nope"), undefined);
});
