import assert from "node:assert/strict";
import { createApiApp } from "../functions/api.ts";
import { drainOne } from "../functions/drain.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { indicatorsOf } from "../shared/groups/technical_analysis.ts";
import type { Config } from "../shared/config.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { createQuoteStore, type QuoteStore } from "../shared/store/quote_store.ts";
import { startRedis } from "./_redis_server.ts";
import { createSiteApp, serve, siteConfig, siteDeps } from "./_site.ts";
import { stockKeys } from "../shared/stock_queue.ts";

const redis = await startRedis();
const dir = await Deno.makeTempDir({ prefix: "tickstream-api-" });
const stores: QuoteStore[] = [];

async function setup(
  env: Record<string, string> = {},
  now: () => number = Date.now,
): Promise<{ config: Config; deps: Deps; get(path: string): Promise<Response> }> {
  await redis.flush();
  resetGroupCache();
  const name = `quotes_${stores.length}`;
  const config = siteConfig(redis.url, dir, env);
  const store = createQuoteStore(config, { table: name });
  stores.push(store);
  const deps = { ...siteDeps(config, { redis: redis.client(), quoteStore: store }), now };
  const app = createApiApp(deps);
  return { config, deps, get: (path) => Promise.resolve(app.request(path)) };
}

async function json(response: Response): Promise<unknown> {
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  return await response.json();
}

Deno.test("GET /api/stocks lists the latest quote of every emitted symbol at once, without a drain", async () => {
  const { deps, get } = await setup();
  assert.deepEqual(await json(await get("/api/stocks")), []);
  await emitQuotes(deps, { ticks: 3, symbols: ["MSFT", "AAPL"] });
  const second = await emitQuotes(deps, { ticks: 1, symbols: ["MSFT", "AAPL"] });
  const response = await get("/api/stocks");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("cache-control"), "no-store");
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  const quotes = await json(response) as Record<string, unknown>[];
  assert.deepEqual(quotes.map((q) => q.symbol), ["AAPL", "MSFT"]);
  // The batch is MSFT then AAPL, so AAPL's quote is the batch's last entry.
  assert.equal(quotes[0].id, second.lastId);
  assert.deepEqual(Object.keys(quotes[0]), [
    "id",
    "symbol",
    "price",
    "change",
    "change_percent",
    "volume",
    "session_volume",
    "timestamp",
    "datetime",
    "open",
    "high",
    "low",
    "prev_close",
  ]);
  assert.equal(typeof quotes[1].price, "number");
});

Deno.test("a quote from another producer reaches GET /api/stocks after the quote-store drain", async () => {
  const { config, deps, get } = await setup();
  await emitQuotes(deps, { ticks: 1, symbols: ["AAPL"] });
  const fields = ["symbol", "ZZZ", "price", "12.5", "volume", "300", "timestamp", "1700000000"];
  const id = await redis.client().xadd(config.streamKey, "*", ...fields);
  assert.deepEqual(
    (await json(await get("/api/stocks")) as { symbol: string }[]).map((q) => q.symbol),
    [
      "AAPL",
    ],
  );
  const drained = await drainOne(deps, "quote-store", { budgetMs: 2000 });
  assert.equal(drained.acked, 2);
  const quotes = await json(await get("/api/stocks")) as Record<string, unknown>[];
  assert.deepEqual(quotes.map((q) => q.symbol), ["AAPL", "ZZZ"]);
  assert.equal(quotes[1].id, id);
  assert.equal(quotes[1].price, 12.5);
  assert.equal(quotes[1].datetime, "2023-11-14T22:13:20.000Z");
  const detail = await json(await get("/api/stocks/ZZZ")) as { quote: { id: string } };
  assert.equal(detail.quote.id, id);
});

Deno.test("GET /api/stocks/:symbol returns the latest quote and its indicators", async () => {
  const { config, deps, get } = await setup();
  const last = await emitQuotes(deps, { ticks: 25, symbols: ["AAPL", "MSFT"] });
  type Detail = { symbol: string; quote: { id: string }; indicators: Record<string, unknown> };
  let detail = await json(await get("/api/stocks/MSFT")) as Detail;
  assert.equal(detail.symbol, "MSFT");
  assert.equal(detail.quote.id, last.lastId);
  // Before the technical-analysis group ran, every indicator is null.
  assert.deepEqual(detail.indicators, {
    sma5: null,
    sma20: null,
    ema12: null,
    ema26: null,
    macd: null,
    rsi14: null,
  });
  await drainOne(deps, "technical-analysis", { budgetMs: 2000 });
  detail = await json(await get("/api/stocks/MSFT")) as Detail;
  const state = JSON.parse(
    (await redis.client().hget(stockKeys(config).state("technical-analysis"), "MSFT"))!,
  );
  assert.deepEqual(detail.indicators, indicatorsOf(state));
  for (const name of ["sma5", "sma20", "ema12", "rsi14"]) {
    assert.equal(typeof detail.indicators[name], "number", name);
  }
  assert.equal(detail.indicators.ema26, null);

  const unknown = await get("/api/stocks/XYZ");
  assert.equal(unknown.status, 404);
  assert.deepEqual(await json(unknown), { error: 'Unknown symbol: "XYZ"' });
  for (const bad of ["aapl", "TOOLONGSYMBOL", "1ABC", "A%20B"]) {
    const response = await get(`/api/stocks/${bad}`);
    assert.equal(response.status, 400, bad);
    assert.match((await json(response) as { error: string }).error, /^Malformed symbol: /);
  }
});

Deno.test("GET /api/stocks/:symbol/history reads the store newest first with limit, from and to", async () => {
  // One batch per minute, so each quote has its own timestamp.
  let minute = 0;
  const start = Date.UTC(2024, 0, 2, 15, 0, 0);
  const { deps, get } = await setup({}, () => start + 60000 * minute);
  for (minute = 0; minute < 5; minute++) {
    await emitQuotes(deps, { ticks: 1, symbols: ["AAPL", "MSFT"] });
  }
  // Not drained yet: the store is empty, but the symbol is known.
  assert.deepEqual(await json(await get("/api/stocks/AAPL/history")), []);
  await drainOne(deps, "quote-store", { budgetMs: 2000 });
  const all = await json(await get("/api/stocks/AAPL/history")) as Record<string, unknown>[];
  assert.equal(all.length, 5);
  assert.deepEqual(Object.keys(all[0]), [
    "id",
    "symbol",
    "price",
    "change_percent",
    "volume",
    "timestamp",
    "datetime",
  ]);
  const times = all.map((q) => q.timestamp as number);
  assert.deepEqual(times, [...times].sort((a, b) => b - a));
  assert.equal(all[4].datetime, "2024-01-02T15:00:00.000Z");

  const limited = await json(await get("/api/stocks/AAPL/history?limit=2")) as unknown[];
  assert.deepEqual(limited, all.slice(0, 2));
  const from = start / 1000 + 60;
  const to = start / 1000 + 180;
  const bySeconds = await json(
    await get(`/api/stocks/AAPL/history?from=${from}&to=${to + 1}`),
  ) as { timestamp: number }[];
  assert.deepEqual(bySeconds, all.slice(1, 4));
  const byIso = await json(
    await get(
      "/api/stocks/AAPL/history?from=2024-01-02T15:01:00Z&to=2024-01-02T15:03:00.500Z",
    ),
  );
  assert.deepEqual(byIso, bySeconds);

  for (
    const query of [
      "limit=0",
      "limit=1001",
      "limit=abc",
      "limit=2.5",
      "from=yesterday",
      "to=2024-13-45",
      `from=${to}&to=${from}`,
    ]
  ) {
    const response = await get(`/api/stocks/AAPL/history?${query}`);
    assert.equal(response.status, 400, query);
  }
  assert.equal((await get("/api/stocks/AAPL/history?limit=1000")).status, 200);
  const never = await get("/api/stocks/NOPE/history");
  assert.equal(never.status, 404);
  assert.deepEqual(await json(never), { error: 'Unknown symbol: "NOPE"' });
  assert.equal((await get("/api/stocks/nope/history")).status, 400);
});

Deno.test("GET /api/alerts returns recent alerts newest first, filtered by symbol and type", async () => {
  const { config, get } = await setup();
  const ids: string[] = [];
  const kinds = [["AAPL", "price_move"], ["MSFT", "volume_spike"], ["AAPL", "golden_cross"]];
  for (let i = 0; i < 9; i++) {
    const [symbol, type] = kinds[i % 3];
    ids.push(
      (await redis.client().xadd(
        config.alertsKey,
        "*",
        ...[
          "type",
          type,
          "symbol",
          symbol,
          "message",
          `${symbol} ${type} ${i}`,
          "value",
          String(i + 0.5),
          "source_id",
          `1-${i}`,
          "group",
          "price-alerts",
          "datetime",
          "2024-01-02T15:00:00.000Z",
          "quote_timestamp",
          String(1704207595 + i),
        ],
      ))!,
    );
  }
  const all = await json(await get("/api/alerts")) as Record<string, unknown>[];
  assert.deepEqual(all.map((a) => a.id), [...ids].reverse());
  assert.deepEqual(all[0], {
    id: ids[8],
    type: "golden_cross",
    symbol: "AAPL",
    message: "AAPL golden_cross 8",
    value: 8.5,
    source_id: "1-8",
    group: "price-alerts",
    datetime: "2024-01-02T15:00:00.000Z",
    quote_timestamp: 1704207603,
  });
  const two = await json(await get("/api/alerts?limit=2")) as { id: string }[];
  assert.deepEqual(two.map((a) => a.id), [ids[8], ids[7]]);
  const aapl = await json(await get("/api/alerts?symbol=AAPL&limit=3")) as { id: string }[];
  assert.deepEqual(aapl.map((a) => a.id), [ids[8], ids[6], ids[5]]);
  const spikes = await json(await get("/api/alerts?type=volume_spike")) as { id: string }[];
  assert.deepEqual(spikes.map((a) => a.id), [ids[7], ids[4], ids[1]]);
  assert.deepEqual(await json(await get("/api/alerts?symbol=MSFT&type=price_move")), []);
  for (const query of ["limit=0", "limit=501", "symbol=aapl", "type=Price-Move"]) {
    assert.equal((await get(`/api/alerts?${query}`)).status, 400, query);
  }
});

Deno.test("GET /api/queue shows per-group counts only, and needs no token", async () => {
  const { config, deps, get } = await setup({ FUNCTIONS_TOKEN: "secret" });
  let body = await json(await get("/api/queue")) as { groups: Record<string, unknown>[] };
  // No group exists before the first emit.
  assert.deepEqual(body.groups.map((g) => g.name), GROUP_NAMES);
  assert.deepEqual(body.groups[0], {
    name: "price-alerts",
    lag: null,
    pending: 0,
    deadLetters: 0,
    consumers: 0,
  });
  await emitQuotes(deps, { ticks: 2, symbols: ["AAPL", "MSFT"] });
  await drainOne(deps, "price-alerts", { count: 3 });
  await redis.client().hset(stockKeys(config).deadCount, "market-events", "2");
  const response = await get("/api/queue");
  assert.equal(response.status, 200);
  body = await json(response) as { groups: Record<string, unknown>[] };
  // Every group of the registry is listed; only price-alerts has drained.
  assert.deepEqual(body, {
    groups: GROUP_NAMES.map((name) => ({
      name,
      lag: name === "price-alerts" ? 1 : 4,
      pending: 0,
      deadLetters: name === "market-events" ? 2 : 0,
      consumers: name === "price-alerts" ? 1 : 0,
    })),
  });
});

Deno.test("the API answers through a real server, next to the operator routes", async () => {
  const { deps } = await setup({ FUNCTIONS_TOKEN: "secret" });
  await emitQuotes(deps, { ticks: 1, symbols: ["AAPL"] });
  const server = serve(createSiteApp(deps));
  try {
    const stocks = await fetch(`${server.url}/api/stocks`);
    assert.equal(stocks.status, 200);
    assert.equal((await stocks.json())[0].symbol, "AAPL");
    const detail = await fetch(`${server.url}/api/stocks/AAPL`);
    assert.equal((await detail.json()).symbol, "AAPL");
    const queue = await fetch(`${server.url}/api/queue`);
    assert.equal(queue.status, 200);
    await queue.body?.cancel();
    // The operator routes still want the token; the public API does not.
    const emit = await fetch(`${server.url}/emit-quotes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    assert.equal(emit.status, 401);
    await emit.body?.cancel();
    const missing = await fetch(`${server.url}/api/nothing`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("GET /api answers 503 while Redis is down", async () => {
  const { get } = await setup();
  await redis.kill();
  try {
    const response = await get("/api/stocks");
    assert.equal(response.status, 503);
    assert.match((await json(response) as { error: string }).error, /Redis is unavailable/);
  } finally {
    await redis.restart();
  }
});

Deno.test("API tests clean up their stores and Redis server", async () => {
  await Promise.all(stores.map((store) => store.close()));
  await redis.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});
