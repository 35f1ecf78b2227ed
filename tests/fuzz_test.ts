import assert from "node:assert/strict";
import { closeLive } from "../functions/live.ts";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { createRandom } from "../shared/market/simulator.ts";
import { startRedis } from "./_redis_server.ts";
import { serve, siteConfig, siteDeps } from "./_site.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261202);
const REQUESTS = 2400;

const PATHS = [
  "/",
  "/health",
  "/emit-quotes",
  "/drain/price-alerts",
  "/drain/quote-store",
  "/drain/nope",
  "/drain/%00",
  "/drain/" + "x".repeat(300),
  "/report",
  "/dead-letters",
  "/dead-letters/price-alerts/replay",
  "/dead-letters/unknown/replay",
  "/api/stocks",
  "/api/stocks/AAPL",
  "/api/stocks/aapl",
  "/api/stocks/%F0%9F%92%A5",
  "/api/stocks/AAPL/history",
  "/api/alerts",
  "/api/queue",
  "/live",
  "/ws",
  "/static/dashboard.js",
  "/nowhere",
  "//double//slash",
  "/%2e%2e/etc/passwd",
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const QUERY_KEYS = ["limit", "from", "to", "symbol", "type", "symbols", "since", "group", "ticks"];
const ODD_VALUES = [
  "",
  "-1",
  "0",
  "1e309",
  "NaN",
  "Infinity",
  "9007199254740993",
  "18446744073709551616-0",
  "18446744073709551615-18446744073709551615",
  "-1-0",
  "1-",
  "1-2-3",
  "0-0,0-0,0-0",
  "AAPL,,,",
  "%",
  "%00",
  "💥",
  "a".repeat(5000),
  "<script>",
  "null",
  "[]",
  "{}",
];
const BODIES = [
  "",
  "{",
  "null",
  "[]",
  "[1,2]",
  '"text"',
  "123",
  "{}",
  '{"ticks": "5"}',
  '{"ticks": 1e309}',
  '{"ticks": -1}',
  '{"ticks": 1.5}',
  '{"ticks": 100000}',
  '{"symbols": ["aapl"]}',
  '{"symbols": "AAPL"}',
  '{"symbols": []}',
  '{"symbols": [null]}',
  '{"count": 0}',
  '{"count": 1001}',
  '{"budgetMs": -5}',
  '{"budgetMs": 99999999}',
  '{"ids": []}',
  '{"ids": ["18446744073709551616-0"]}',
  '{"ids": ["1-"]}',
  '{"ids": [1]}',
  '{"ids": "0-1"}',
  '{"unknown": true}',
  '{"__proto__": {"x": 1}}',
  '{"a": {"b": {"c": {"d": [[[[[]]]]]}}}}',
  "\u0000\u0001\u0002",
  "💥".repeat(100),
];
const CONTENT_TYPES = [
  undefined,
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
];
const TOKEN = "fuzz-token-123";
const EXTRA_HEADERS: Record<string, string>[] = [
  {},
  { authorization: `Bearer ${TOKEN}` },
  { authorization: `Bearer ${TOKEN}` },
  { authorization: `Bearer ${TOKEN}` },
  { authorization: "Bearer" },
  { authorization: "Basic Zm9vOmJhcg==" },
  { authorization: "Bearer " + "x".repeat(2000) },
  { "last-event-id": "18446744073709551616-0" },
  { "last-event-id": "garbage" },
  { "idempotency-key": "" },
  { "idempotency-key": "k".repeat(500) },
  { "idempotency-key": "é" },
  { upgrade: "websocket", connection: "Upgrade" },
  { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "bad" },
  { "if-none-match": "*" },
  { accept: "text/event-stream" },
];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)];
}

/** One malformed request, derived from the PRNG. */
function randomRequest(random: () => number): { path: string; init: RequestInit } {
  let path = pick(random, PATHS);
  const params: string[] = [];
  const count = Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    params.push(`${pick(random, QUERY_KEYS)}=${encodeURIComponent(pick(random, ODD_VALUES))}`);
  }
  if (params.length > 0) path += `?${params.join("&")}`;
  const method = random() < 0.5
    ? (path.startsWith("/api") ? "GET" : "POST")
    : pick(random, METHODS);
  const headers: Record<string, string> = { ...pick(random, EXTRA_HEADERS) };
  const type = pick(random, CONTENT_TYPES);
  if (type !== undefined) headers["content-type"] = type;
  const init: RequestInit = { method, headers };
  if (method !== "GET" && method !== "HEAD") init.body = pick(random, BODIES);
  return { path, init };
}

/** Checks one answer: never a 5xx, and every error a JSON object with a message. */
async function checkAnswer(label: string, res: Response): Promise<void> {
  assert.ok(res.status < 500, `${label} answered ${res.status}: ${await res.clone().text()}`);
  if (res.status >= 400) {
    const text = await res.text();
    if (text === "") return; // HEAD and some Hono 404s carry no body
    const body = JSON.parse(text);
    assert.equal(typeof body.error, "string", label);
    assert.match(body.error, /^[A-Z"]/, `${label}: ${body.error}`);
  } else {
    await res.body?.cancel();
  }
}

Deno.test(`${REQUESTS} malformed requests over every route give no 5xx and only JSON errors (seed ${SEED})`, async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-fuzz-" });
  // A short live feed, so requests that open one end quickly.
  const config = siteConfig(redis.url, dir, {
    LIVE_MAX_MS: "100",
    MAX_LAG: "1000000000",
    FUNCTIONS_TOKEN: TOKEN,
  });
  const store = createQuoteStore(config);
  resetGroupCache();
  const deps = siteDeps(config, { redis: redis.client(), quoteStore: store });
  const app = createApp(deps);
  const server = serve(app);
  const random = createRandom(SEED);
  const errors: string[] = [];
  const statuses = new Map<number, number>();
  const error = console.error;
  console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const { path, init } = randomRequest(random);
      const label = `#${i} ${init.method} ${path.slice(0, 120)}`;
      // Most go through app.request; every tenth over a real socket.
      const res = i % 10 === 0
        ? await fetch(`${server.url}${path}`, init).catch((e) => {
          throw new Error(`${label} failed on the socket (seed ${SEED})`, { cause: e });
        })
        : await app.request(path, init);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      await checkAnswer(`${label} (seed ${SEED})`, res);
    }
    // The storm reached the handlers, not only the front door.
    for (const status of [200, 400, 401, 404, 415]) {
      assert.ok(
        (statuses.get(status) ?? 0) > 0,
        `no ${status} among ${JSON.stringify([...statuses])}`,
      );
    }
    assert.deepEqual(errors.filter((e) => e.startsWith("Unhandled")), [], "no unhandled error");
    // The app still works after the storm.
    const ok = await app.request("/emit-quotes", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: '{"ticks": 1}',
    });
    assert.equal(ok.status, 200);
  } finally {
    console.error = error;
    await closeLive();
    await server.close();
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay refuses ids beyond 64 bits with 400 instead of 500", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-fuzz-" });
  const config = siteConfig(redis.url, dir);
  const store = createQuoteStore(config);
  resetGroupCache();
  try {
    const app = createApp(siteDeps(config, { redis: redis.client(), quoteStore: store }));
    for (
      const id of ["18446744073709551616-0", "0-18446744073709551616", "99999999999999999999-1"]
    ) {
      const res = await app.request("/dead-letters/price-alerts/replay", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ids: [id] }),
      });
      assert.equal(res.status, 400, id);
      assert.match((await res.json()).error, /stream ids/);
    }
    const max = await app.request("/dead-letters/price-alerts/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ids: ["18446744073709551615-18446744073709551615"] }),
    });
    assert.equal(max.status, 404);
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
