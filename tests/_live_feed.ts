/**
 * Test helper for the partitioned live feed: writes quotes and alerts into a
 * partition's streams as emits and drains do, picks symbols per partition,
 * and reads what an SSE client received.
 *
 * @module
 */

import type { Config } from "../shared/config.ts";
import { encodeQuote } from "../shared/market/quotes.ts";
import { partitionOf } from "../shared/partitions.ts";
import type { RedisClient } from "../shared/queue/mod.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import type { SseReader } from "./_sse.ts";

const CANDIDATES = [
  "AAPL",
  "MSFT",
  "TSLA",
  "NVDA",
  "AMZN",
  "GOOG",
  "META",
  "NFLX",
  "AMD",
  "INTC",
  "ORCL",
  "IBM",
  "SAP",
  "CSCO",
  "ADBE",
  "CRM",
  "QCOM",
  "TXN",
  "AVGO",
  "SHOP",
];

/** `perPartition` symbols of each of `count` partitions: result[p] all map to p. */
export function symbolsByPartition(count: number, perPartition = 2): string[][] {
  const out: string[][] = Array.from({ length: count }, () => []);
  // Real names first, then made-up ones until every partition has enough.
  const generated = Array.from({ length: 500 }, (_, i) => `X${i}`);
  for (const symbol of [...CANDIDATES, ...generated]) {
    const list = out[partitionOf(symbol, count)];
    if (list.length < perPartition) list.push(symbol);
  }
  if (out.some((list) => list.length < perPartition)) {
    throw new Error(`Too few candidate symbols for ${count} partitions`);
  }
  return out;
}

/** Options of {@linkcode addQuote} and {@linkcode addAlert}. */
export interface AddOptions {
  /**
   * Entry id to write; "*" lets Redis pick.
   * @default {"*"}
   */
  id?: string;
}

/** Adds a quote of `symbol` to its partition's stream, as an emit would; returns its entry id. */
export async function addQuote(
  redis: RedisClient,
  config: Config,
  symbol: string,
  options: AddOptions = {},
): Promise<string> {
  const { id = "*" } = options;
  const now = Date.now();
  const fields = encodeQuote({
    symbol,
    price: 100 + (now % 50),
    volume: 100,
    timestamp: now / 1000,
    datetime: new Date(now).toISOString(),
  });
  const key = stockKeys(config, partitionOf(symbol, config.streamPartitions)).stream;
  return String(await redis.call("XADD", key, id, ...fields));
}

/** Adds an alert of `symbol` to its partition's alerts stream, as a drain would; returns its id. */
export async function addAlert(
  redis: RedisClient,
  config: Config,
  symbol: string,
  options: AddOptions = {},
): Promise<string> {
  const { id = "*" } = options;
  const key = stockKeys(config, partitionOf(symbol, config.streamPartitions)).alerts;
  return String(
    await redis.call(
      "XADD",
      key,
      id,
      ...[
        ["type", "price_move"],
        ["symbol", symbol],
        ["message", `${symbol} moved`],
        ["value", "2.5"],
        ["source_id", "0-1"],
        ["group", "price-alerts"],
        ["datetime", new Date().toISOString()],
      ].flat(),
    ),
  );
}

/** What an SSE client received, as "<kind>:<symbol>:<entry id>" keys. */
export function receivedKeys(reader: SseReader): string[] {
  return reader.events.map((e) => {
    const data = JSON.parse(e.data);
    return `${e.event}:${data.symbol}:${data.id}`;
  });
}

/** Waits until `check()` holds; throws after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("Timed out waiting for a condition");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
