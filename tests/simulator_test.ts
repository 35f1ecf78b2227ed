import assert from "node:assert/strict";
import { decodeQuote, encodeQuote, type Quote } from "../shared/market/quotes.ts";
import {
  createRandom,
  initialSimulatorState,
  marketTimes,
  simulateTicks,
  type SimulatorState,
} from "../shared/market/simulator.ts";

const MONDAY_3PM = Date.UTC(2024, 2, 4, 15, 0, 0);

Deno.test("createRandom returns the same sequence of numbers in [0, 1) for the same seed", () => {
  const a = createRandom(123);
  const b = createRandom(123);
  const c = createRandom(124);
  const seqA = Array.from({ length: 1000 }, a);
  const seqB = Array.from({ length: 1000 }, b);
  const seqC = Array.from({ length: 1000 }, c);
  assert.deepEqual(seqA, seqB);
  assert.notDeepEqual(seqA, seqC);
  for (const value of seqA) assert.ok(value >= 0 && value < 1, `out of range: ${value}`);
});

Deno.test("the same seed, state and clock give identical quotes and state", () => {
  const options = { symbols: ["AAPL", "TSLA", "XYZ"], ticks: 50, now: MONDAY_3PM };
  const first = simulateTicks(initialSimulatorState(), { ...options, random: createRandom(7) });
  const second = simulateTicks(initialSimulatorState(), { ...options, random: createRandom(7) });
  const other = simulateTicks(initialSimulatorState(), { ...options, random: createRandom(8) });
  assert.deepEqual(first, second);
  assert.notDeepEqual(first.quotes, other.quotes);
});

Deno.test("each tick yields one quote per symbol at one instant, a tick interval apart, the last at now", () => {
  const { quotes, state } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "MSFT"],
    ticks: 3,
    now: MONDAY_3PM + 250,
    random: createRandom(1),
  });
  assert.deepEqual(quotes.map((q) => q.symbol), ["AAPL", "MSFT", "AAPL", "MSFT", "AAPL", "MSFT"]);
  const offsets = [-2000, -2000, -1000, -1000, 0, 0].map((ms) => MONDAY_3PM + 250 + ms);
  assert.deepEqual(quotes.map((q) => q.datetime), offsets.map((ms) => new Date(ms).toISOString()));
  // Whole seconds, as the tutorial's int(time.time()); the datetime keeps the milliseconds.
  assert.deepEqual(quotes.map((q) => q.timestamp), offsets.map((ms) => Math.floor(ms / 1000)));
  assert.equal(quotes[0].datetime, "2024-03-04T14:59:58.250Z");
  assert.equal(state.lastMs, MONDAY_3PM + 250);
});

Deno.test("market time is spaced by the interval when real time allows and shared evenly in a burst", () => {
  // A fresh walk reaches back from now, one interval per tick.
  assert.deepEqual(marketTimes(3, { now: 10_000, intervalMs: 1000 }), [8000, 9000, 10_000]);
  // Enough real time since the previous tick: still one interval apart.
  assert.deepEqual(
    marketTimes(3, { now: 10_000, intervalMs: 1000, lastMs: 5000 }),
    [8000, 9000, 10_000],
  );
  // A burst of 4 ticks 1 s after the previous one: the second is shared evenly.
  assert.deepEqual(
    marketTimes(4, { now: 10_000, intervalMs: 1000, lastMs: 9000 }),
    [9250, 9500, 9750, 10_000],
  );
  // More ticks than milliseconds: some share a millisecond, none goes back.
  const dense = marketTimes(5, { now: 10_002, intervalMs: 1000, lastMs: 10_000 });
  assert.deepEqual(dense, [10_000, 10_000, 10_001, 10_001, 10_002]);
  // A clock behind the previous tick (another process ran ahead): time holds, never goes back.
  assert.deepEqual(marketTimes(2, { now: 9000, intervalMs: 1000, lastMs: 9500 }), [9500, 9500]);
});

Deno.test("market time is monotone per symbol and never after the clock across many calls", () => {
  const random = createRandom(9);
  const clock = { ms: MONDAY_3PM };
  let state = initialSimulatorState();
  const last = new Map<string, number>();
  for (let call = 0; call < 200; call++) {
    // Uneven calls: bursts of up to 40 ticks, some in the same millisecond.
    const ticks = 1 + Math.floor(random() * 40);
    clock.ms += Math.floor(random() * 3) * Math.floor(random() * 2500);
    const result = simulateTicks(state, {
      symbols: ["AAPL", "MSFT", "TSLA"],
      ticks,
      now: clock.ms,
      random,
    });
    state = result.state;
    for (const quote of result.quotes) {
      const ms = Date.parse(quote.datetime);
      assert.ok(ms <= clock.ms, `${quote.datetime} lies after the clock`);
      assert.ok(ms >= (last.get(quote.symbol) ?? 0), `${quote.symbol} went back in time`);
      assert.equal(quote.timestamp, Math.floor(ms / 1000));
      last.set(quote.symbol, ms);
    }
  }
});

Deno.test("a tick interval can be chosen and must be a positive integer", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    ticks: 3,
    now: MONDAY_3PM,
    intervalMs: 250,
    random: createRandom(1),
  });
  assert.deepEqual(quotes.map((q) => Date.parse(q.datetime) - MONDAY_3PM), [-500, -250, 0]);
  for (const intervalMs of [0, 1.5, -1, 3_600_001]) {
    assert.throws(
      () => simulateTicks(initialSimulatorState(), { now: MONDAY_3PM, intervalMs }),
      { name: "RangeError", message: /'intervalMs' must be an integer from 1 to 3600000/ },
    );
  }
});

Deno.test("session volume adds up each tick's volume and starts again with each session", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    ticks: 10,
    now: Date.UTC(2024, 2, 5, 0, 0, 4),
    random: createRandom(3),
  });
  let expected = 0;
  let session = "";
  for (const quote of quotes) {
    if (quote.datetime.slice(0, 10) !== session) {
      session = quote.datetime.slice(0, 10);
      expected = 0;
    }
    expected += quote.volume;
    assert.equal(quote.sessionVolume, expected);
  }
  assert.equal(quotes[5].sessionVolume, quotes[5].volume, "the session of 5 March opens");
});

Deno.test("known symbols start near realistic prices and unknown ones from their name", () => {
  const run = (symbol: string) =>
    simulateTicks(initialSimulatorState(), {
      symbols: [symbol],
      now: MONDAY_3PM,
      random: createRandom(5),
    }).quotes[0];
  assert.equal(run("AAPL").prevClose, 190);
  assert.equal(run("TSLA").prevClose, 250);
  const unknown = run("ZZQ");
  assert.ok(unknown.prevClose! >= 10 && unknown.prevClose! <= 500, `${unknown.prevClose}`);
  assert.equal(run("ZZQ").prevClose, unknown.prevClose);
  assert.notEqual(run("QQZ").prevClose, unknown.prevClose);
});

Deno.test("two calls of 3 ticks continue the walk exactly like one call of 6 ticks", () => {
  const symbols = ["AAPL", "NVDA"];
  const whole = simulateTicks(initialSimulatorState(), {
    symbols,
    ticks: 6,
    now: MONDAY_3PM,
    random: createRandom(99),
  });
  const random = createRandom(99);
  const firstHalf = simulateTicks(initialSimulatorState(), {
    symbols,
    ticks: 3,
    now: MONDAY_3PM - 3000,
    random,
  });
  // Round-tripping through JSON is what a cron job storing the state does.
  const stored: SimulatorState = JSON.parse(JSON.stringify(firstHalf.state));
  const secondHalf = simulateTicks(stored, {
    symbols,
    ticks: 3,
    now: MONDAY_3PM,
    random,
  });
  assert.deepEqual([...firstHalf.quotes, ...secondHalf.quotes], whole.quotes);
  assert.deepEqual(secondHalf.state, whole.state);
  assert.equal(secondHalf.quotes[0].open, firstHalf.quotes[0].open);
});

Deno.test("simulateTicks leaves the state passed in untouched", () => {
  const { state } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    ticks: 5,
    now: MONDAY_3PM,
    random: createRandom(3),
  });
  const snapshot = structuredClone(state);
  simulateTicks(state, {
    symbols: ["AAPL", "MSFT"],
    ticks: 5,
    now: MONDAY_3PM + 10,
    random: createRandom(4),
  });
  assert.deepEqual(state, snapshot);
});

Deno.test("symbols not simulated in a call keep their state for later calls", () => {
  const first = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "MSFT"],
    ticks: 2,
    now: MONDAY_3PM,
    random: createRandom(3),
  });
  const second = simulateTicks(first.state, {
    symbols: ["MSFT"],
    ticks: 2,
    now: MONDAY_3PM + 10,
    random: createRandom(4),
  });
  assert.deepEqual(second.state.symbols.AAPL, first.state.symbols.AAPL);
  assert.notDeepEqual(second.state.symbols.MSFT, first.state.symbols.MSFT);
});

Deno.test("a session rolls over at UTC midnight with the previous close as the last price", () => {
  const symbols = ["AAPL", "TSLA"];
  const dayOne = simulateTicks(initialSimulatorState(), {
    symbols,
    ticks: 500,
    now: Date.UTC(2024, 2, 4, 23, 59, 0),
    random: createRandom(11),
  });
  const dayTwo = simulateTicks(dayOne.state, {
    symbols,
    ticks: 20,
    now: Date.UTC(2024, 2, 5, 0, 0, 30),
    random: createRandom(12),
  });
  for (const symbol of symbols) {
    const lastOfDayOne = dayOne.quotes.findLast((q) => q.symbol === symbol)!;
    const dayTwoQuotes = dayTwo.quotes.filter((q) => q.symbol === symbol);
    const firstOfDayTwo = dayTwoQuotes[0];
    assert.equal(firstOfDayTwo.prevClose, lastOfDayOne.price);
    assert.equal(firstOfDayTwo.open, firstOfDayTwo.price);
    assert.equal(firstOfDayTwo.high, firstOfDayTwo.price);
    assert.equal(firstOfDayTwo.low, firstOfDayTwo.price);
    for (const quote of dayTwoQuotes) {
      assert.equal(quote.open, firstOfDayTwo.price);
      assert.equal(quote.prevClose, lastOfDayOne.price);
      assert.equal(
        quote.high,
        Math.max(...dayTwoQuotes.filter((q) => q.timestamp <= quote.timestamp).map((q) => q.price)),
      );
      assert.equal(
        quote.low,
        Math.min(...dayTwoQuotes.filter((q) => q.timestamp <= quote.timestamp).map((q) => q.price)),
      );
    }
    assert.equal(dayTwo.state.symbols[symbol].sessionDate, "2024-03-05");
  }
});

Deno.test("a session rolls over inside a single call that spans midnight", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["MSFT"],
    ticks: 6,
    now: Date.UTC(2024, 2, 5, 0, 0, 2),
    random: createRandom(21),
  });
  const before = quotes.filter((q) => q.datetime.startsWith("2024-03-04"));
  const after = quotes.filter((q) => q.datetime.startsWith("2024-03-05"));
  assert.equal(before.length, 3);
  assert.equal(after.length, 3);
  for (const quote of after) {
    assert.equal(quote.prevClose, before.at(-1)!.price);
    assert.equal(quote.open, after[0].price);
  }
  assert.equal(before[0].prevClose, 410);
});

Deno.test("the same day keeps the session open, high, low and previous close", () => {
  const first = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL"],
    ticks: 50,
    now: MONDAY_3PM,
    random: createRandom(2),
  });
  const second = simulateTicks(first.state, {
    symbols: ["AAPL"],
    ticks: 50,
    now: MONDAY_3PM + 60_000,
    random: createRandom(2),
  });
  const all = [...first.quotes, ...second.quotes];
  const last = all.at(-1)!;
  assert.equal(last.open, all[0].price);
  assert.equal(last.prevClose, all[0].prevClose);
  assert.equal(last.high, Math.max(...all.map((q) => q.price)));
  assert.equal(last.low, Math.min(...all.map((q) => q.price)));
});

Deno.test("every generated quote has all fields and survives encodeQuote then decodeQuote", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "TSLA", "BRK.B", "X-1"],
    ticks: 2_000,
    now: MONDAY_3PM + 0.25,
    random: createRandom(4),
  });
  for (const quote of quotes) {
    assert.deepEqual(decodeQuote(encodeQuote(quote)), quote);
    for (
      const key of [
        "change",
        "changePercent",
        "open",
        "high",
        "low",
        "prevClose",
        "sessionVolume",
      ] as const
    ) {
      assert.equal(typeof quote[key], "number", `${key} missing in ${JSON.stringify(quote)}`);
    }
    assert.equal(quote.price, Math.round(quote.price * 100) / 100);
    assert.ok(Number.isInteger(quote.volume) && quote.volume > 0);
    assert.ok(Math.abs(quote.change! - (quote.price - quote.prevClose!)) < 1e-9);
    assert.ok(
      Math.abs(quote.changePercent! - (quote.change! / quote.prevClose!) * 100) < 1e-4,
    );
  }
});

Deno.test("over 20,000 quotes jumps and volume spikes are rare but present and prices stay positive", () => {
  const symbols = ["AAPL", "TSLA", "WXYZ", "QRS"];
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols,
    ticks: 5_000,
    now: MONDAY_3PM,
    random: createRandom(2024),
  });
  assert.equal(quotes.length, 20_000);
  const previous = new Map<string, Quote>();
  const volumeTotals = new Map<string, { sum: number; count: number }>();
  let moves = 0;
  let smallMoves = 0;
  let jumps = 0;
  let volumeSpikes = 0;
  for (const quote of quotes) {
    assert.ok(quote.price > 0 && quote.low! > 0, `price not positive: ${JSON.stringify(quote)}`);
    assert.ok(quote.low! <= quote.price && quote.price <= quote.high!);
    const before = previous.get(quote.symbol);
    if (before) {
      const move = Math.abs(quote.price / before.price - 1) * 100;
      moves++;
      if (move < 0.5) smallMoves++;
      if (move >= 2 && Math.abs(quote.changePercent!) >= 2) jumps++;
    }
    previous.set(quote.symbol, quote);
    const totals = volumeTotals.get(quote.symbol) ?? { sum: 0, count: 0 };
    // Wait for a few ticks so the running average means something.
    if (totals.count >= 20 && quote.volume >= 3 * (totals.sum / totals.count)) volumeSpikes++;
    volumeTotals.set(quote.symbol, { sum: totals.sum + quote.volume, count: totals.count + 1 });
  }
  // Jumps are drawn at 0.2% per tick, so about 40 are expected.
  assert.ok(jumps >= 15 && jumps <= 80, `jumps: ${jumps}`);
  assert.ok(smallMoves / moves >= 0.95, `small moves: ${smallMoves} of ${moves}`);
  // Spikes are drawn at 0.5% per tick, so about 100 are expected, plus a few from the noise.
  assert.ok(volumeSpikes >= 50 && volumeSpikes <= 300, `volume spikes: ${volumeSpikes}`);
});

Deno.test("simulateTicks rejects out-of-range options with a RangeError", () => {
  const state = initialSimulatorState();
  const random = createRandom(1);
  assert.throws(
    () => simulateTicks(state, { symbols: ["AAPL"], ticks: 0, now: MONDAY_3PM, random }),
    {
      name: "RangeError",
      message:
        "Cannot simulate ticks as 'ticks' must be an integer from 1 to 100000: current value is 0",
    },
  );
  assert.throws(
    () => simulateTicks(state, { symbols: ["AAPL"], ticks: 1.5, now: MONDAY_3PM, random }),
    RangeError,
  );
  assert.throws(
    () => simulateTicks(state, { symbols: ["AAPL"], ticks: 100_001, now: MONDAY_3PM, random }),
    RangeError,
  );
  assert.throws(
    () => simulateTicks(state, { symbols: [], ticks: 1, now: MONDAY_3PM, random }),
    { name: "RangeError", message: /'symbols' must be a non-empty array/ },
  );
  assert.throws(
    () => simulateTicks(state, { symbols: ["aapl"], ticks: 1, now: MONDAY_3PM, random }),
    { name: "RangeError", message: /'symbols' must match/ },
  );
  assert.throws(
    () => simulateTicks(state, { symbols: ["AAPL", "AAPL"], ticks: 1, now: MONDAY_3PM, random }),
    { name: "RangeError", message: /'symbols' must not repeat a symbol/ },
  );
  assert.throws(
    () => simulateTicks(state, { symbols: ["AAPL"], ticks: 1, now: Number.NaN, random }),
    { name: "RangeError", message: /'now' must be/ },
  );
  assert.throws(() => createRandom(Number.POSITIVE_INFINITY), RangeError);
});

Deno.test("simulateTicks falls back to the default symbols and one tick, and needs a clock", () => {
  const { quotes } = simulateTicks(initialSimulatorState(), { now: MONDAY_3PM });
  assert.deepEqual(quotes.map((q) => q.symbol), ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]);
  assert.deepEqual(
    new Set(quotes.map((q) => q.datetime)),
    new Set([new Date(MONDAY_3PM).toISOString()]),
  );
  assert.throws(
    () => simulateTicks(initialSimulatorState(), {} as { now: number }),
    { name: "RangeError", message: /'now' must be a number of milliseconds/ },
  );
});
