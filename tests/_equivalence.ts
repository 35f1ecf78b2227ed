/**
 * Test helper: runs one fixed list of simulated quotes through the queue
 * (written into each symbol's partition, then every group drained to the
 * end) and returns what the groups made of it, without ids, so runs with
 * different partition counts or on different Redis setups can be compared.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { checkBackpressure } from "../functions/emit_quotes.ts";
import { drainAll } from "../functions/drain.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { encodeQuote, type Quote } from "../shared/market/quotes.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";
import { partitionOf } from "../shared/partitions.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import { getQuoteStore } from "../shared/store/quote_store.ts";
import { actualOutcome, assertMatchesReference } from "./_reference.ts";

/** What the groups made of the quotes: alerts, states and stored quotes, without ids. */
export interface Made {
  /** "group symbol type value" per alert, sorted. */
  alerts: string[];
  /** Each group's per-symbol state. */
  states: Record<string, Record<string, unknown>>;
  /** "symbol timestamp price volume" per stored quote, sorted. */
  stored: string[];
}

/** 400 ticks of the 8 default symbols, the same on every call. */
export function fixedQuotes(): Quote[] {
  return simulateTicks(initialSimulatorState(), {
    symbols: ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA", "NFLX"],
    ticks: 400,
    now: Date.UTC(2024, 0, 3, 21),
    random: createRandom(11),
  }).quotes;
}

/** Writes `quotes` into their partitions under `deps`, drains every group, reads the outcome. */
export async function runQuotes(deps: Deps, quotes: readonly Quote[]): Promise<Made> {
  const redis = deps.redis() as Redis;
  const { config } = deps;
  await checkBackpressure(deps); // creates every group of every partition
  for (const quote of quotes) {
    const keys = stockKeys(config, partitionOf(quote.symbol, config.streamPartitions));
    await redis.xadd(keys.stream, "*", ...encodeQuote(quote));
  }
  for (let round = 0; round < 20; round++) {
    const results = await drainAll(deps, { budgetMs: 5000, count: 200 });
    if (results.every((r) => !("error" in r) && !r.more)) break;
  }
  await assertMatchesReference({ redis, config }, GROUPS);
  const outcome = await actualOutcome({ redis, config }, GROUPS.map((g) => g.group));
  // Ids differ between runs; what each alert says may not.
  const alerts = Object.values(outcome).flatMap((g) =>
    g.alerts.map((a) => `${a.group} ${a.symbol} ${a.type} ${a.value}`)
  ).sort();
  const states = Object.fromEntries(Object.entries(outcome).map(([g, o]) => [g, o.states]));
  const history = await Promise.all(
    config.symbols.map((s) => getQuoteStore(config).history(s, { limit: 1000 })),
  );
  const stored = history.flat().map((q) => `${q.symbol} ${q.timestamp} ${q.price} ${q.volume}`)
    .sort();
  return { alerts, states, stored };
}
