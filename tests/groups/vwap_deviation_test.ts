import assert from "node:assert/strict";
import { loadConfig } from "../../shared/config.ts";
import { GROUP_NAMES, GROUPS } from "../../shared/groups/registry.ts";
import {
  VWAP_DEVIATION_PERCENT,
  VWAP_MIN_TICKS,
  vwapDeviation,
  vwapOf,
  type VwapState,
} from "../../shared/groups/vwap_deviation.ts";
import type { Quote } from "../../shared/market/quotes.ts";
import { analysisSettings } from "../../shared/market/settings.ts";
import { resetGroupCache } from "../../shared/queue/mod.ts";
import { createQuoteStore } from "../../shared/store/quote_store.ts";
import { startRedis } from "../_redis_server.ts";
import { createSiteApp, siteConfig, siteDeps } from "../_site.ts";

const settings = analysisSettings(loadConfig({}));

function quote(price: number, volume = 100): Quote {
  return { symbol: "ACME", price, volume, timestamp: 1700000000, datetime: "2023-11-14T22:13:20Z" };
}

function run(prices: number[]): { alerts: string[]; state: VwapState | undefined } {
  let state: VwapState | undefined;
  const alerts: string[] = [];
  for (const price of prices) {
    const result = vwapDeviation.step(state, { quote: quote(price), settings });
    state = result.state;
    alerts.push(...result.alerts.map((a) => a.message));
  }
  return { alerts, state };
}

Deno.test("the VWAP weighs each price by its volume", () => {
  assert.equal(vwapOf([[10, 1], [20, 3]]), 17.5);
  assert.equal(vwapOf([[10, 0]]), 10);
});

Deno.test("the VWAP group alerts once per excursion beyond the threshold and re-arms on the way back", () => {
  const flat = Array(VWAP_MIN_TICKS).fill(100);
  // Within the threshold: nothing.
  assert.deepEqual(run([...flat, 100 + VWAP_DEVIATION_PERCENT - 0.01]).alerts, []);
  // Beyond it: one alert, not one per tick while the price stays out.
  const out = run([...flat, 103, 103.5, 104]);
  assert.equal(out.alerts.length, 1);
  assert.match(out.alerts[0], /^ACME trades 3\.00% above its 20-tick VWAP of 100\.00/);
  // Back near the VWAP, then out again below: a second alert.
  const back = run([...flat, 103, 100, 100, 100, 100, 100, 100, 100, 100, 96]);
  assert.equal(back.alerts.length, 2);
  assert.match(back.alerts[1], /below/);
});

Deno.test("the VWAP group waits for enough ticks before it alerts", () => {
  assert.deepEqual(run([100, 120]).alerts, []);
});

Deno.test("the example group joins by one file and one registry line, and drains through the app like the others", async () => {
  assert.ok(GROUP_NAMES.includes(vwapDeviation.group));
  assert.equal(GROUPS.find((g) => g.group === vwapDeviation.group), vwapDeviation);
  // It declares no start, so it starts at the end of the stream, as a new group should.
  assert.equal(vwapDeviation.start, undefined);
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-vwap-" });
  const config = siteConfig(redis.url, dir);
  const store = createQuoteStore(config);
  resetGroupCache();
  try {
    const app = createSiteApp(siteDeps(config, { redis: redis.client(), quoteStore: store }));
    const post = (path: string, body: unknown) =>
      app.request(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    assert.equal((await post("/emit-quotes", { ticks: 300 })).status, 200);
    const drained = await post(`/drain/${vwapDeviation.group}`, { count: 1000, budgetMs: 5000 });
    assert.equal(drained.status, 200);
    const result = await drained.json();
    assert.equal(result.acked, 300 * config.symbols.length);
    assert.ok(result.alerts > 0, "300 ticks of 8 symbols never strayed 1.5% from their VWAP");
    const listed = await (await app.request("/api/alerts?type=vwap_deviation&limit=5")).json();
    const alerts = Array.isArray(listed) ? listed : listed.alerts;
    assert.ok(alerts.length > 0);
    assert.equal(alerts[0].group, vwapDeviation.group);
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
