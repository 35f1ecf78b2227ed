import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { drainAll } from "../functions/drain.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { fieldsToRecord } from "../shared/market/quotes.ts";
import { startRedis } from "./_redis_server.ts";
import { testDeps } from "./_deps.ts";

const server = await startRedis();

async function fresh(env: Record<string, string> = {}) {
  await server.flush();
  resetGroupCache();
  const deps = testDeps(server.url, server.client(), { env });
  return { deps, app: createApp(deps) };
}

function post(_path: string, body?: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  };
}

Deno.test("emit-quotes adds one quote per symbol by default and names the ids", async () => {
  const { app, deps } = await fresh();
  const res = await app.request("/emit-quotes", post("/emit-quotes"));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.stream, "stock_quotes");
  assert.equal(body.emitted, deps.config.symbols.length);
  const entries = await server.client().xrange("stock_quotes", "-", "+");
  assert.equal(entries.length, body.emitted);
  assert.equal(body.firstId, entries[0][0]);
  assert.equal(body.lastId, entries.at(-1)![0]);
  const first = fieldsToRecord(entries[0][1]);
  for (
    const field of [
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
    ]
  ) {
    assert.ok(field in first, `field ${field} is written`);
  }
  // The tutorial's formats: int(fields['timestamp']) and an ISO 8601 datetime with milliseconds.
  assert.match(first.timestamp, /^\d+$/);
  assert.match(first.datetime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

Deno.test("emit continues the random walk stored in Redis across invocations", async () => {
  const { deps } = await fresh();
  await emitQuotes(deps, { ticks: 1, symbols: ["AAPL"] });
  const sim = JSON.parse((await server.client().hget("stock_quotes:sim", "state"))!);
  const lastPrice = sim.symbols.AAPL.price;
  // A fresh isolate (new deps, same Redis) goes on from the stored price.
  const other = testDeps(server.url, server.client(), { seed: 99 });
  await emitQuotes(other, { ticks: 1, symbols: ["AAPL"] });
  const [, fields] = (await server.client().xrevrange("stock_quotes", "+", "-", "COUNT", 1))[0];
  const price = Number(fieldsToRecord(fields).price);
  assert.ok(Math.abs(price / lastPrice - 1) < 0.06, `${price} continues from ${lastPrice}`);
  assert.equal(await server.client().hget("stock_quotes:sim", "version"), "2");
});

Deno.test("50 ticks drained per group leave every group with pending 0 and lag 0", async () => {
  const { app } = await fresh();
  const emitted = await app.request("/emit-quotes", post("/emit-quotes", { ticks: 50 }));
  assert.equal(emitted.status, 200);
  for (const group of GROUP_NAMES) {
    for (let i = 0; i < 20; i++) {
      const res = await app.request(`/drain/${group}`, post("/drain", { count: 100 }));
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.group, group);
      for (const key of ["consumer", "read", "acked", "failed", "lag", "durationMs"]) {
        assert.ok(key in body, `drain response has ${key}`);
      }
      assert.equal(body.failed, 0);
      if (body.lag === 0 && !body.more) break;
    }
  }
  const report = await (await app.request("/report")).json();
  assert.equal(report.stream.length, 400);
  assert.equal(report.stream.entriesAdded, 400);
  assert.deepEqual(
    report.groups.map((g: { name: string }) => g.name).sort(),
    [...GROUP_NAMES].sort(),
  );
  for (const group of report.groups) {
    assert.equal(group.pending, 0, `${group.name} pending`);
    assert.equal(group.lag, 0, `${group.name} lag`);
  }
  const alerts = await server.client().xrange("stock_alerts", "-", "+");
  assert.ok(alerts.length > 0, "50 ticks of the simulator produce alerts");
  assert.equal(report.alerts.length, alerts.length);
  for (const [, fields] of alerts) {
    const alert = fieldsToRecord(fields);
    for (
      const key of [
        "type",
        "symbol",
        "message",
        "value",
        "source_id",
        "group",
        "datetime",
        "quote_timestamp",
      ]
    ) {
      assert.ok(key in alert, `alert has ${key}`);
    }
    const source = await server.client().xrange("stock_quotes", alert.source_id, alert.source_id);
    assert.equal(source.length, 1, `source_id ${alert.source_id} is a real entry`);
    // The quote's market time beside the time the alert was made.
    assert.equal(alert.quote_timestamp, fieldsToRecord(source[0][1]).timestamp);
  }
});

Deno.test("a tutorial-style quote with change_percent 5.0 yields exactly one price alert", async () => {
  const { app } = await fresh();
  await app.request("/emit-quotes", post("/emit-quotes", { ticks: 1, symbols: ["MSFT"] }));
  await app.request("/drain/price-alerts", post("/drain"));
  const before = await server.client().xlen("stock_alerts");
  const id = await server.client().xadd(
    "stock_quotes",
    "*",
    "symbol",
    "IBM",
    "price",
    "150.25",
    "volume",
    "1000",
    "timestamp",
    "1700000000.123",
    "change_percent",
    "5.0",
  );
  for (const group of GROUP_NAMES) {
    const res = await app.request(`/drain/${group}`, post("/drain"));
    const body = await res.json();
    assert.equal(body.failed, 0, `${group} consumed the tutorial entry`);
    assert.equal(body.deadLettered, 0, `${group} did not dead-letter it`);
  }
  const alerts = (await server.client().xrange("stock_alerts", "-", "+")).slice(before)
    .map(([, f]) => fieldsToRecord(f));
  const priceAlerts = alerts.filter((a) => a.group === "price-alerts");
  assert.equal(priceAlerts.length, 1);
  assert.equal(priceAlerts[0].source_id, id);
  assert.equal(priceAlerts[0].symbol, "IBM");
  assert.equal(Number(priceAlerts[0].value), 5);
});

Deno.test("bad input gets a clear 4xx JSON error and adds nothing", async () => {
  const { app } = await fresh();
  const cases: [string, RequestInit, number, RegExp][] = [
    ["/emit-quotes", post("", "{not json"), 400, /not valid JSON/],
    ["/emit-quotes", post("", "[1,2]"), 400, /JSON object/],
    ["/emit-quotes", post("", { ticks: 0 }), 400, /"ticks".*1 to 1000.*0/],
    ["/emit-quotes", post("", { ticks: 1001 }), 400, /"ticks"/],
    ["/emit-quotes", post("", { ticks: "5" }), 400, /"ticks"/],
    ["/emit-quotes", post("", { ticks: 1.5 }), 400, /"ticks"/],
    ["/emit-quotes", post("", { symbols: ["aapl"] }), 400, /Symbol must match.*"aapl"/],
    ["/emit-quotes", post("", { symbols: [] }), 400, /"symbols"/],
    ["/emit-quotes", post("", { symbols: "AAPL" }), 400, /"symbols"/],
    ["/emit-quotes", post("", { tick: 5 }), 400, /Unknown field "tick"/],
    ["/emit-quotes", post("", "x".repeat(70 * 1024)), 413, /exceeds/],
    ["/drain/price-alerts", post("", { count: 0 }), 400, /"count"/],
    ["/drain/price-alerts", post("", { count: 1001 }), 400, /"count"/],
    ["/drain/price-alerts", post("", { budgetMs: 60000 }), 400, /"budgetMs"/],
    ["/drain/price-alerts", post("", "{"), 400, /not valid JSON/],
    ["/drain/no-such-group", post(""), 404, /Unknown consumer group: "no-such-group"/],
    ["/nowhere", { method: "GET" }, 404, /Route not found/],
    ["/dead-letters?limit=0", { method: "GET" }, 400, /"limit"/],
    ["/dead-letters/price-alerts/replay", post("", { ids: ["nope"] }), 400, /"ids"/],
    ["/dead-letters/price-alerts/replay", post("", { ids: ["1-0"] }), 404, /not found.*"1-0"/],
    ["/dead-letters/no-such-group/replay", post(""), 404, /Unknown consumer group/],
  ];
  for (const [path, init, status, message] of cases) {
    const res = await app.request(path, init);
    assert.equal(res.status, status, `${init.method} ${path} ${String(init.body).slice(0, 40)}`);
    const body = await res.json();
    assert.match(body.error, message);
    assert.doesNotMatch(JSON.stringify(body), /at .*\.ts:\d+/, "no stack trace");
  }
  assert.equal(await server.client().xlen("stock_quotes"), 0, "nothing was emitted");
});

Deno.test("FUNCTIONS_TOKEN guards the operator routes with a bearer token", async () => {
  const { app } = await fresh({ FUNCTIONS_TOKEN: "s3cret" });
  for (
    const [path, init] of [["/emit-quotes", post("")], ["/drain/price-alerts", post("")]] as const
  ) {
    const missing = await app.request(path, init);
    assert.equal(missing.status, 401);
    const wrong = await app.request(path, post("", undefined, { authorization: "Bearer nope" }));
    assert.equal(wrong.status, 401);
  }
  assert.equal((await app.request("/report")).status, 401);
  const ok = await app.request("/report", { headers: { authorization: "Bearer s3cret" } });
  assert.equal(ok.status, 200);
  const emit = await app.request(
    "/emit-quotes",
    post("", undefined, { authorization: "Bearer s3cret" }),
  );
  assert.equal(emit.status, 200);
  assert.equal((await app.request("/health")).status, 200, "health stays public");
});

Deno.test("on Deno Deploy without FUNCTIONS_TOKEN the operator routes answer 503", async () => {
  const { app } = await fresh({ DENO_DEPLOYMENT_ID: "dep-1" });
  const res = await app.request("/emit-quotes", post(""));
  assert.equal(res.status, 503);
  assert.match((await res.json()).error, /FUNCTIONS_TOKEN is not set/);
  assert.equal((await app.request("/report")).status, 503);
});

Deno.test("the cron bodies emit and drain every group when called directly", async () => {
  const { deps } = await fresh();
  await emitQuotes(deps, { ticks: 3 });
  const results = await drainAll(deps, { budgetMs: 2000 });
  assert.deepEqual(results.map((r) => r.group).sort(), [...GROUP_NAMES].sort());
  for (const result of results) {
    assert.ok(!("error" in result), JSON.stringify(result));
    assert.equal(result.acked, 3 * deps.config.symbols.length);
    assert.equal(result.more, false);
  }
});

Deno.test("Redis stopped mid-test gives a quick 503 and the same app recovers after restart", async () => {
  const durable = await startRedis({ durable: true });
  const client = createRedis(durable.url);
  try {
    resetGroupCache();
    const deps = testDeps(durable.url, client);
    const app = createApp(deps);
    assert.equal((await app.request("/emit-quotes", post("", { ticks: 2 }))).status, 200);
    await durable.kill();
    for (
      const [path, init] of [
        ["/emit-quotes", post("", { ticks: 2 })],
        ["/drain/price-alerts", post("")],
        ["/report", { method: "GET" }],
        ["/dead-letters", { method: "GET" }],
        ["/dead-letters/price-alerts/replay", post("")],
        ["/api/queue", { method: "GET" }],
        ["/api/stocks/AAPL", { method: "GET" }],
        ["/health", { method: "GET" }],
      ] as const
    ) {
      const started = performance.now();
      const res = await app.request(path, init);
      const elapsed = performance.now() - started;
      assert.equal(res.status, 503, path);
      const body = await res.json();
      assert.ok(Number(res.headers.get("retry-after")) >= 1, `${path} Retry-After`);
      if (path === "/health") {
        assert.deepEqual(body, {
          status: "degraded",
          redis: "down",
          reason: "Redis is unavailable: it cannot be reached",
          stalled: [],
        });
      } else assert.match(body.error, /Redis is unavailable/);
      assert.ok(elapsed < 2500, `${path} answered in ${elapsed.toFixed(0)} ms`);
    }
    await durable.restart();
    let health = 0;
    for (let i = 0; i < 50 && health !== 200; i++) {
      health = (await app.request("/health")).status;
      if (health !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(health, 200);
    assert.equal((await app.request("/emit-quotes", post("", { ticks: 2 }))).status, 200);
    assert.equal(await client.xlen("stock_quotes"), 32, "both successful emits survived");
    const drained = await (await app.request("/drain/price-alerts", post(""))).json();
    assert.equal(drained.acked, 32);
  } finally {
    await closeRedis(client);
    await durable.stop();
  }
});

Deno.test({
  name: "function tests close their redis-server",
  async fn() {
    await server.stop();
  },
});
