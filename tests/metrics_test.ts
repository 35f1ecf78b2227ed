import assert from "node:assert/strict";
import { Hono } from "hono";
import type { Redis } from "ioredis";
import { createMetricsApp } from "../functions/metrics.ts";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { counterField, readQueueSnapshot } from "../shared/metrics/mod.ts";
import { createRedis } from "../shared/redis.ts";
import { testDeps } from "./_deps.ts";
import { parseExposition, promtool, samples, value } from "./_prometheus.ts";
import { startRedis } from "./_redis_server.ts";

const server = await startRedis();
const json = { "content-type": "application/json" };

async function fresh(env: Record<string, string> = {}) {
  await server.flush();
  resetGroupCache();
  const deps = testDeps(server.url, server.client(), { env });
  const app = new Hono();
  app.route("/", createApp(deps));
  app.route("/", createMetricsApp(deps));
  return { deps, app };
}

async function scrape(app: Hono, headers: Record<string, string> = {}) {
  const res = await app.request("/metrics", { headers });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return { res, text, all: parseExposition(text) };
}

Deno.test("after a real emit and drain, /metrics shows each group's lag, pending, consumers and the stream lengths, and promtool accepts it", async () => {
  const { app } = await fresh();
  const emit = await app.request("/emit-quotes", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ ticks: 5 }),
  });
  assert.equal(emit.status, 200);
  const emitted = (await emit.json()).emitted;
  assert.equal(emitted, 40);
  const drain = await app.request("/drain/price-alerts", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ count: 10 }),
  });
  assert.equal(drain.status, 200, await drain.clone().text());
  assert.equal((await drain.json()).acked, 10);

  const { res, text, all } = await scrape(app);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const group of GROUP_NAMES) {
    assert.equal(value(all, "tickstream_group_exists", { group }), 1, group);
    assert.equal(value(all, "tickstream_group_pending", { group }), 0, group);
    assert.equal(value(all, "tickstream_group_oldest_pending_age_seconds", { group }), 0, group);
    assert.equal(value(all, "tickstream_group_dead_letters", { group }), 0, group);
    const lag = value(all, "tickstream_group_lag", { group });
    assert.equal(lag, group === "price-alerts" ? 30 : 40, group);
    const consumers = value(all, "tickstream_group_consumers", { group });
    assert.equal(consumers, group === "price-alerts" ? 1 : 0, group);
  }
  assert.equal(value(all, "tickstream_stream_length", { stream: "quotes" }), 40);
  assert.equal(value(all, "tickstream_stream_length", { stream: "dead_letters" }), 0);
  assert.ok(value(all, "tickstream_stream_length", { stream: "alerts" }) >= 0);
  assert.ok(
    value(all, "tickstream_drain_duration_seconds_count", { group: "price-alerts" }) >= 1,
  );
  assert.ok(value(all, "tickstream_drain_entries_sum", { group: "price-alerts" }) >= 10);
  assert.ok(value(all, "tickstream_emit_duration_seconds_count") >= 1);

  const check = await promtool(["check", "metrics"], text);
  assert.equal(check.code, 0, check.output);
  assert.equal(check.output.trim(), "", `promtool lint findings:\n${check.output}`);
});

Deno.test("entries read and left unacknowledged show as pending, with the oldest one's idle time", async () => {
  const { app } = await fresh();
  await app.request("/emit-quotes", { method: "POST", headers: json, body: "{}" });
  const client = server.client();
  await client.xreadgroup(
    "GROUP",
    "volume-analysis",
    "stuck@test",
    "COUNT",
    3,
    "STREAMS",
    "stock_quotes",
    ">",
  );
  await new Promise((resolve) => setTimeout(resolve, 120));
  const { all } = await scrape(app);
  assert.equal(value(all, "tickstream_group_pending", { group: "volume-analysis" }), 3);
  assert.equal(value(all, "tickstream_group_consumers", { group: "volume-analysis" }), 1);
  const age = value(all, "tickstream_group_oldest_pending_age_seconds", {
    group: "volume-analysis",
  });
  assert.ok(age >= 0.1 && age < 60, `oldest pending age ${age}`);
  assert.equal(value(all, "tickstream_group_lag", { group: "volume-analysis" }), 5);
});

Deno.test("every field of the counters hash is exposed per group and alert type, and foreign fields are ignored", async () => {
  const { app, deps } = await fresh();
  const client = server.client();
  const key = stockKeys(deps.config).counters;
  assert.equal(key, "stock_quotes:counters");
  await client.hincrby(key, counterField.emitted(), 120);
  await client.hincrby(key, counterField.acked("price-alerts"), 100);
  await client.hincrby(key, counterField.failed("price-alerts"), 7);
  await client.hincrby(key, counterField.claimed("quote-store"), 3);
  await client.hincrby(key, counterField.deadLettered("price-alerts"), 2);
  await client.hincrby(key, counterField.replayed("price-alerts"), 1);
  await client.hincrby(key, counterField.alerts("price-alerts", "price_move"), 4);
  await client.hincrby(key, counterField.alerts("technical-analysis", "rsi_overbought"), 5);
  const drainedAt = Date.UTC(2025, 0, 2, 3, 4, 5);
  await client.hset(key, counterField.lastDrainMs("price-alerts"), drainedAt);
  await client.hset(key, "future:field", 9, "acked:", 1, "outputs:broken", 1);
  await client.hset(stockKeys(deps.config).deadCount, "price-alerts", 2);

  const { text, all } = await scrape(app);
  assert.equal(value(all, "tickstream_emitted_total"), 120);
  assert.equal(value(all, "tickstream_acked_total", { group: "price-alerts" }), 100);
  assert.equal(value(all, "tickstream_failed_total", { group: "price-alerts" }), 7);
  assert.equal(value(all, "tickstream_claimed_total", { group: "quote-store" }), 3);
  assert.equal(value(all, "tickstream_dead_lettered_total", { group: "price-alerts" }), 2);
  assert.equal(value(all, "tickstream_replayed_total", { group: "price-alerts" }), 1);
  assert.equal(
    value(all, "tickstream_alerts_total", { group: "price-alerts", type: "price_move" }),
    4,
  );
  assert.equal(
    value(all, "tickstream_alerts_total", { group: "technical-analysis", type: "rsi_overbought" }),
    5,
  );
  assert.equal(samples(all, "tickstream_alerts_total").length, 2);
  // Every registered group starts at 0, so rate() sees its first increment.
  for (const group of GROUP_NAMES) {
    assert.equal(samples(all, "tickstream_failed_total", { group }).length, 1, group);
  }
  assert.equal(value(all, "tickstream_acked_total", { group: "quote-store" }), 0);
  assert.equal(
    value(all, "tickstream_group_last_drain_timestamp_seconds", { group: "price-alerts" }),
    drainedAt / 1000,
  );
  assert.equal(value(all, "tickstream_group_dead_letters", { group: "price-alerts" }), 2);
  assert.doesNotMatch(text, /future/);
  const check = await promtool(["check", "metrics"], text);
  assert.equal(check.code, 0, check.output);
});

Deno.test("after an emit of 100 ticks and drains of every group, the counters kept by the scripts equal the quotes, from any process", async () => {
  const { app, deps } = await fresh();
  const emit = await app.request("/emit-quotes", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ ticks: 100 }),
  });
  assert.equal(emit.status, 200);
  const emitted = (await emit.json()).emitted;
  assert.equal(emitted, 100 * deps.config.symbols.length);
  for (const group of GROUP_NAMES) {
    const drain = await app.request(`/drain/${group}`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ count: 1000, budgetMs: 10000 }),
    });
    assert.equal(drain.status, 200, await drain.clone().text());
  }
  const { all } = await scrape(app);
  assert.equal(value(all, "tickstream_emitted_total"), emitted);
  for (const group of GROUP_NAMES) {
    assert.equal(value(all, "tickstream_acked_total", { group }), emitted, group);
    assert.equal(value(all, "tickstream_group_lag", { group }), 0, group);
    assert.equal(value(all, "tickstream_failed_total", { group }), 0, group);
  }
  // The alerts counted per group and type are the alerts the stream holds.
  const alerts = samples(all, "tickstream_alerts_total").reduce((n, s) => n + s.value, 0);
  assert.equal(alerts, await server.client().xlen(stockKeys(deps.config).alerts));
  assert.ok(alerts > 0);
  // Another process (a new client and app, as after a restart) reads the same numbers.
  const other = createRedis(server.url);
  try {
    const restarted = new Hono();
    restarted.route("/", createMetricsApp(testDeps(server.url, other)));
    const again = await scrape(restarted);
    assert.equal(value(again.all, "tickstream_emitted_total"), emitted);
    assert.equal(value(again.all, "tickstream_acked_total", { group: "price-alerts" }), emitted);
  } finally {
    other.disconnect();
  }
});

Deno.test("a fresh Redis scrapes as missing groups (exists 0, no lag series) with zero lengths and counters", async () => {
  const { app } = await fresh();
  const { all } = await scrape(app);
  for (const group of GROUP_NAMES) {
    assert.equal(value(all, "tickstream_group_exists", { group }), 0, group);
    assert.equal(samples(all, "tickstream_group_lag", { group }).length, 0, group);
    assert.equal(value(all, "tickstream_group_pending", { group }), 0, group);
  }
  assert.equal(value(all, "tickstream_stream_length", { stream: "quotes" }), 0);
  assert.equal(value(all, "tickstream_emitted_total"), 0);
  assert.equal(samples(all, "tickstream_group_last_drain_timestamp_seconds").length, 0);
});

Deno.test("a scrape reads Redis through one pipeline and no other command", async () => {
  const { deps } = await fresh();
  await deps.redis().xadd("stock_quotes", "*", "symbol", "AAPL");
  const calls: string[] = [];
  const real = deps.redis();
  // A real client; the proxy only records which of its methods the scrape calls.
  const watched = new Proxy(real, {
    get(target, name, receiver) {
      const member = Reflect.get(target, name, receiver);
      if (typeof member !== "function" || typeof name !== "string") return member;
      return function recorded(...args: unknown[]) {
        calls.push(name);
        return member.apply(target, args);
      };
    },
  }) as Redis;
  const snapshot = await readQueueSnapshot(watched, stockKeys(deps.config));
  assert.deepEqual(calls, ["pipeline"]);
  assert.equal(snapshot.streams.quotes, 1);
  assert.deepEqual(snapshot.groups.map((g) => g.name), [...GROUP_NAMES]);
});

Deno.test("GET /metrics takes METRICS_TOKEN when set, else FUNCTIONS_TOKEN, and nothing else", async () => {
  const both = await fresh({
    FUNCTIONS_TOKEN: "functions-token-1",
    METRICS_TOKEN: "scrape-token-2",
  });
  assert.equal((await both.app.request("/metrics")).status, 401);
  const wrong = await both.app.request("/metrics", {
    headers: { authorization: "Bearer functions-token-1" },
  });
  assert.equal(wrong.status, 401);
  await scrape(both.app, { authorization: "Bearer scrape-token-2" });

  const one = await fresh({ FUNCTIONS_TOKEN: "functions-token-1" });
  assert.equal((await one.app.request("/metrics")).status, 401);
  await scrape(one.app, { authorization: "Bearer functions-token-1" });
});

Deno.test("a scrape while Redis is down answers 503 with Retry-After and names Redis", async () => {
  const down = await startRedis();
  const client = createRedis(down.url);
  const deps: Deps = testDeps(down.url, client);
  const app = createMetricsApp(deps);
  try {
    await down.kill();
    const res = await app.request("/metrics");
    const body = await res.json();
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.match(body.error, /Redis is unavailable/);
  } finally {
    client.disconnect();
    await down.stop();
  }
});

Deno.test("metrics tests stop their redis-server", async () => {
  await server.stop();
});
