import assert from "node:assert/strict";
import { ANALYSES } from "../shared/groups/registry.ts";
import { analysisSettings } from "../shared/market/settings.ts";
import type { AlertDraft } from "../shared/market/analysis.ts";
import { loadConfig } from "../shared/config.ts";
import type { Quote } from "../shared/market/quotes.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";

const config = loadConfig({});
const settings = analysisSettings(config);
const SEEDS = [1, 2, 3];
const TICKS = 500;

interface Fired {
  /** The quote that fired it. */
  quote: Quote;
  /** Its index among the quotes of its symbol and session, from 1. */
  sessionTick: number;
  alert: AlertDraft;
}

/** The default simulation (default symbols and tick interval), every analysis run purely over it. */
function defaultRun(seed: number): { quotes: Quote[]; fired: Fired[] } {
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: config.symbols,
    ticks: TICKS,
    now: Date.UTC(2024, 2, 4, 15, 0, 0),
    intervalMs: config.tickIntervalMs,
    random: createRandom(seed),
  });
  const fired: Fired[] = [];
  const sessionTicks = new Map<string, number>();
  const ticksOf = quotes.map((quote) => {
    const key = `${quote.symbol} ${quote.datetime.slice(0, 10)}`;
    const n = (sessionTicks.get(key) ?? 0) + 1;
    sessionTicks.set(key, n);
    return n;
  });
  for (const analysis of ANALYSES) {
    const states = new Map<string, unknown>();
    quotes.forEach((quote, i) => {
      const result = analysis.step(states.get(quote.symbol), { quote, settings });
      states.set(quote.symbol, result.state);
      for (const alert of result.alerts) fired.push({ quote, sessionTick: ticksOf[i], alert });
    });
  }
  return { quotes, fired };
}

const runs = SEEDS.map(defaultRun);

Deno.test("with default settings alerts stay under 5% of quotes and no type above 2%", () => {
  assert.equal(config.symbols.length, 8);
  for (const [i, { quotes, fired }] of runs.entries()) {
    assert.equal(quotes.length, TICKS * 8);
    const byType = new Map<string, number>();
    for (const { alert } of fired) byType.set(alert.type, (byType.get(alert.type) ?? 0) + 1);
    const summary = [...byType].map(([type, n]) => `${type}=${n}`).join(" ");
    assert.ok(
      fired.length < 0.05 * quotes.length,
      `seed ${SEEDS[i]}: ${fired.length} alerts for ${quotes.length} quotes (${summary})`,
    );
    for (const [type, n] of byType) {
      assert.ok(n <= 0.02 * quotes.length, `seed ${SEEDS[i]}: ${n} ${type} alerts (${summary})`);
    }
  }
});

Deno.test("with default settings every kind of alert still fires on the default simulation", () => {
  const seen = new Set(runs.flatMap((r) => r.fired.map((f) => f.alert.type)));
  for (
    const type of [
      "price_move",
      "volume_spike",
      "golden_cross",
      "death_cross",
      "rsi_overbought",
      "rsi_oversold",
      "session_open",
      "new_session_high",
      "new_session_low",
    ]
  ) {
    assert.ok(seen.has(type), `no ${type} alert in ${SEEDS.length} runs`);
  }
});

Deno.test("no alert compares numbers that are equal at the precision it prints", () => {
  let checked = 0;
  for (const { alert } of runs.flatMap((r) => r.fired)) {
    const { type, message } = alert;
    let match: RegExpMatchArray | null;
    if ((match = message.match(/SMA\(5\) (\S+) crossed (above|below) SMA\(20\) (\S+)$/))) {
      const [, fast, side, slow] = match;
      assert.ok(
        side === "above" ? Number(fast) > Number(slow) : Number(fast) < Number(slow),
        message,
      );
    } else if ((match = message.match(/RSI\(14\) (\S+) crossed (above|below) (\S+)$/))) {
      const [, rsi, side, level] = match;
      assert.ok(
        side === "above" ? Number(rsi) > Number(level) : Number(rsi) < Number(level),
        message,
      );
    } else if ((match = message.match(/new session (high|low) (\S+) \(previous (\S+)\)$/))) {
      const [, side, price, previous] = match;
      assert.ok(
        side === "high" ? Number(price) > Number(previous) : Number(price) < Number(previous),
        message,
      );
    } else if ((match = message.match(/moved [+-](\S+)% .*\(threshold (\S+)%\)$/))) {
      assert.ok(Number(match[1]) > Number(match[2]), message);
    } else if ((match = message.match(/trades (\S+)% (above|below) .*\(threshold (\S+)%\)$/))) {
      assert.ok(Number(match[1]) > Number(match[3]), message);
    } else {
      assert.ok(["volume_spike", "session_open"].includes(type), `unchecked message: ${message}`);
      continue;
    }
    checked += 1;
  }
  assert.ok(checked > 50, `only ${checked} messages compared numbers`);
});

Deno.test("session highs and lows fire only after the warm-up and at most once per symbol per 50 ticks", () => {
  assert.equal(settings.sessionAlertGapTicks, 50);
  for (const { fired } of runs) {
    const last = new Map<string, number>();
    for (const { quote, sessionTick, alert } of fired) {
      if (alert.type !== "new_session_high" && alert.type !== "new_session_low") continue;
      assert.ok(sessionTick > settings.sessionWarmupTicks, `${alert.message} during the warm-up`);
      const previous = last.get(quote.symbol);
      if (previous !== undefined) {
        assert.ok(
          sessionTick - previous >= 50,
          `${alert.message}: ${sessionTick - previous} ticks`,
        );
      }
      last.set(quote.symbol, sessionTick);
    }
  }
});
