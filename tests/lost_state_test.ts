import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { siteConfig, siteDeps } from "./_site.ts";

const JSON_POST = { method: "POST", headers: { "content-type": "application/json" } };

interface Harness {
  redis: TestRedis;
  deps: Deps;
  app: ReturnType<typeof createApp>;
  warnings: string[];
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-lost-" });
  const config = siteConfig(redis.url, dir, { CLAIM_IDLE_MS: "30000" });
  const store = createQuoteStore(config);
  const deps = siteDeps(config, { redis: redis.client(), quoteStore: store });
  resetGroupCache();
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(" "));
  return {
    redis,
    deps,
    app: createApp(deps),
    warnings,
    async close() {
      console.warn = warn;
      await store.close();
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function emit(h: Harness, ticks: number): Promise<Response> {
  return await h.app.request("/emit-quotes", { ...JSON_POST, body: JSON.stringify({ ticks }) });
}

async function drainEvery(h: Harness): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const group of GROUP_NAMES) {
    const res = await h.app.request(`/drain/${group}`, {
      ...JSON_POST,
      body: JSON.stringify({ budgetMs: 5000, count: 500 }),
    });
    assert.equal(res.status, 200, `drain ${group}: ${await res.clone().text()}`);
    out[group] = await res.json();
  }
  return out;
}

async function report(h: Harness): Promise<Record<string, unknown>> {
  const res = await h.app.request("/report");
  assert.equal(res.status, 200);
  return await res.json();
}

Deno.test("after FLUSHALL emits and drains go on without a 5xx and every new quote is processed once", async () => {
  const h = await harness();
  try {
    assert.equal((await emit(h, 5)).status, 200);
    await drainEvery(h);
    await h.redis.client().flushall();
    // The process still believes every group exists.
    const before = await report(h);
    assert.deepEqual(before.missingGroups, [...GROUP_NAMES]);
    assert.ok(
      (before.warnings as string[]).some((w) => w.includes("neither does the stream")),
      JSON.stringify(before.warnings),
    );
    assert.equal((await emit(h, 3)).status, 200);
    const drained = await drainEvery(h);
    const quotes = 3 * h.deps.config.symbols.length;
    for (const group of GROUP_NAMES) {
      assert.equal(drained[group].acked, quotes, `${group} acked`);
      assert.equal(drained[group].lag, 0);
    }
    const after = await report(h);
    assert.deepEqual(after.missingGroups, []);
    for (const g of after.groups as { pending: number; lag: number }[]) {
      assert.equal(g.pending, 0);
      assert.equal(g.lag, 0);
    }
  } finally {
    await h.close();
  }
});

Deno.test("a destroyed group is recreated at 0 by the next drain, which processes what the stream holds", async () => {
  const h = await harness();
  try {
    assert.equal((await emit(h, 4)).status, 200);
    await drainEvery(h);
    const client = h.redis.client();
    const key = h.deps.config.streamKey;
    await client.xgroup("DESTROY", key, "price-alerts");
    const before = await report(h);
    assert.deepEqual(before.missingGroups, ["price-alerts"]);
    assert.ok((before.warnings as string[]).some((w) => /"price-alerts" is missing/.test(w)));
    const res = await h.app.request("/drain/price-alerts", {
      ...JSON_POST,
      body: JSON.stringify({ budgetMs: 5000, count: 500 }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = await res.json();
    assert.equal(body.acked, await client.xlen(key));
    assert.equal(body.lag, 0);
    // Once per group and process, with the reason.
    const logged = h.warnings.filter((w) => w.includes('Recreated consumer group "price-alerts"'));
    assert.equal(logged.length, 1);
    assert.match(logged[0], /XGROUP DESTROY/);
    await client.xgroup("DESTROY", key, "price-alerts");
    const again = await h.app.request("/drain/price-alerts", { ...JSON_POST, body: "{}" });
    assert.equal(again.status, 200);
    assert.equal(
      h.warnings.filter((w) => w.includes('Recreated consumer group "price-alerts"')).length,
      1,
    );
  } finally {
    await h.close();
  }
});

Deno.test("a Redis restarted without persistence loses the groups, and emit and drain recreate them", async () => {
  const h = await harness();
  try {
    assert.equal((await emit(h, 2)).status, 200);
    await drainEvery(h);
    await h.redis.kill();
    await h.redis.restart();
    // The shared client reconnects by itself; the first command may still see the old socket.
    for (let i = 0; i < 50; i++) {
      try {
        await h.redis.client().ping();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    assert.equal(await h.redis.client().exists(h.deps.config.streamKey), 0);
    // A drain before any emit: the group comes back on an empty stream.
    const first = await h.app.request("/drain/market-events", { ...JSON_POST, body: "{}" });
    assert.equal(first.status, 200, await first.clone().text());
    assert.equal((await first.json()).acked, 0);
    assert.equal((await emit(h, 2)).status, 200);
    const drained = await drainEvery(h);
    for (const group of GROUP_NAMES) {
      assert.equal(drained[group].acked, 2 * h.deps.config.symbols.length, group);
    }
  } finally {
    await h.close();
  }
});
