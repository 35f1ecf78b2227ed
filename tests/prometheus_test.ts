import assert from "node:assert/strict";
import { Hono } from "hono";
import { parse } from "yaml";
import { createMetricsApp } from "../functions/metrics.ts";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { counterField } from "../shared/metrics/mod.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import { testDeps } from "./_deps.ts";
import { promtool, startPrometheus } from "./_prometheus.ts";
import { freePort, startRedis } from "./_redis_server.ts";

const ROOT = new URL("../", import.meta.url);
const RULES = new URL("docs/prometheus/alerts.yml", ROOT).pathname;
const DASHBOARD = new URL("docs/prometheus/dashboard.json", ROOT);
const json = { "content-type": "application/json" };

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; type: string }[] };
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await Deno.readTextFile(DASHBOARD));
}

async function ruleExprs(): Promise<{ alert: string; expr: string }[]> {
  const doc = parse(await Deno.readTextFile(RULES));
  return doc.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
}

/** PromQL with Grafana's variables replaced as Grafana would for "all groups". */
function expand(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$group", ".*");
}

/** Metric names an expression uses: tickstream's and Prometheus' own `up`. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(tickstream_[a-z_]+|up)\b/g)].map((m) => m[1]);
}

/**
 * Every sample name /metrics exposes once each kind of data exists: a real
 * emit and drain (gauges, histograms) plus counters seeded with HINCRBY
 * until the engine increments them.
 */
async function exposedNames(): Promise<Set<string>> {
  const redis = await startRedis();
  resetGroupCache();
  try {
    const deps = testDeps(redis.url, redis.client());
    const app = new Hono();
    app.route("/", createApp(deps));
    app.route("/", createMetricsApp(deps));
    await app.request("/emit-quotes", { method: "POST", headers: json, body: "{}" });
    const drained = await app.request("/drain/price-alerts", { method: "POST", headers: json });
    assert.equal(drained.status, 200);
    // One tick may fire no alert; the alerts series must exist for the names below.
    const key = stockKeys(deps.config).counters;
    await redis.client().hincrby(key, counterField.alerts("price-alerts", "price_move"), 1);
    const text = await (await app.request("/metrics")).text();
    const names = new Set<string>(["up"]);
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      names.add(name);
      if (type === "histogram") {
        for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
      }
    }
    return names;
  } finally {
    await redis.stop();
  }
}

Deno.test("promtool check rules accepts the example alert rules, which use only metrics /metrics exposes", async () => {
  const check = await promtool(["check", "rules", RULES]);
  assert.equal(check.code, 0, check.output);
  assert.match(check.output, /SUCCESS: \d+ rules found/);
  const rules = await ruleExprs();
  const names = await exposedNames();
  for (const { alert, expr } of rules) {
    const unknown = metricsIn(expr).filter((m) => !names.has(m));
    assert.deepEqual(unknown, [], `${alert} uses unknown metrics`);
  }
  const exprs = rules.map((r) => r.expr).join("\n");
  for (
    const metric of [
      "tickstream_group_lag",
      "tickstream_group_oldest_pending_age_seconds",
      "tickstream_group_dead_letters",
      "tickstream_group_last_drain_timestamp_seconds",
    ]
  ) {
    assert.ok(exprs.includes(metric), `no rule on ${metric}`);
  }
});

Deno.test("the Grafana dashboard parses, picks its data source and queries only metrics /metrics exposes, each of them", async () => {
  const board = await dashboard();
  assert.ok(board.panels.length >= 10, `${board.panels.length} panels`);
  assert.ok(board.templating.list.some((v) => v.type === "datasource"));
  const names = await exposedNames();
  const used = new Set<string>();
  for (const panel of board.panels) {
    assert.ok(panel.targets.length > 0, `panel ${panel.title} has no query`);
    for (const { expr } of panel.targets) {
      const metrics = metricsIn(expr);
      assert.ok(metrics.length > 0, `${panel.title}: ${expr}`);
      const unknown = metrics.filter((m) => !names.has(m));
      assert.deepEqual(unknown, [], `${panel.title} uses unknown metrics`);
      for (const m of metrics) used.add(m.replace(/_(bucket|sum|count)$/, ""));
    }
  }
  const shown = [...names].filter((n) => !/_(bucket|sum|count)$/.test(n) && !used.has(n));
  assert.deepEqual(shown, [], "metrics the dashboard does not show");
});

Deno.test("a real Prometheus scrapes main.ts with the bearer token: up is 1, tickstream_group_lag has a series per group, and every dashboard and rule query runs", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-prom-app-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const token = "scrape-token-42";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-cron", "main.ts"],
    env: {
      REDIS_URL: redis.url,
      PORT: String(port),
      CRON_ENABLED: "false",
      FUNCTIONS_TOKEN: "functions-token-42",
      METRICS_TOKEN: token,
      DATABASE_PATH: `${dir}/quotes.db`,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    const operator = { ...json, authorization: "Bearer functions-token-42" };
    const deadline = Date.now() + 20000;
    while (true) {
      const res = await fetch(`${base}/emit-quotes`, {
        method: "POST",
        headers: operator,
        body: JSON.stringify({ ticks: 2 }),
      }).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error("main.ts did not answer /emit-quotes");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drain = await fetch(`${base}/drain/price-alerts`, {
      method: "POST",
      headers: operator,
      body: "{}",
    });
    assert.equal(drain.status, 200);
    await drain.body?.cancel();

    prometheus = await startPrometheus(`127.0.0.1:${port}`, { bearerToken: token });
    let lag: { metric: Record<string, string>; value: [number, string] }[] = [];
    let up: typeof lag = [];
    const scraped = Date.now() + 30000;
    while (Date.now() < scraped) {
      up = await prometheus.query('up{job="tickstream"}');
      lag = await prometheus.query("tickstream_group_lag");
      if (up[0]?.value[1] === "1" && lag.length === GROUP_NAMES.length) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(up.length, 1);
    assert.equal(up[0].value[1], "1", "the scrape with the bearer token succeeds");
    assert.deepEqual(lag.map((s) => s.metric.group).sort(), [...GROUP_NAMES].sort());
    const lags = Object.fromEntries(lag.map((s) => [s.metric.group, Number(s.value[1])]));
    assert.equal(lags["price-alerts"], 0);
    assert.equal(lags["quote-store"], 16);
    const length = await prometheus.query('tickstream_stream_length{stream="quotes"}');
    assert.equal(length[0]?.value[1], "16");

    const queries = [
      ...(await dashboard()).panels.flatMap((p) => p.targets.map((t) => expand(t.expr))),
      ...(await ruleExprs()).map((r) => r.expr),
    ];
    for (const query of queries) await prometheus.query(query);
  } finally {
    await prometheus?.stop();
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
