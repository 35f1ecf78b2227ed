import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { startRedis } from "./_redis_server.ts";
import { siteConfig, siteDeps } from "./_site.ts";

const JSON_POST = { method: "POST", headers: { "content-type": "application/json" } };

async function usedMemory(client: { info(section: string): Promise<string> }): Promise<number> {
  const info = await client.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

Deno.test("a full Redis refuses emits with 503 while drains still ack, trim and free memory, and emits recover without a restart", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-oom-" });
  const config = siteConfig(redis.url, dir, { STREAM_MAXLEN: "200", MAX_LAG: "100000" });
  const store = createQuoteStore(config);
  const client = redis.client();
  resetGroupCache();
  const errors: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
  try {
    const deps = siteDeps(config, { redis: client, quoteStore: store });
    const app = createApp(deps);
    for (let i = 0; i < 4; i++) {
      const res = await app.request("/emit-quotes", {
        ...JSON_POST,
        body: JSON.stringify({ ticks: 250 }),
      });
      assert.equal(res.status, 200);
    }
    const quotes = 4 * 250 * config.symbols.length;
    assert.equal(await client.xlen(config.streamKey), quotes);
    // Redis is now exactly full: every command that may grow memory is refused.
    await client.config("SET", "maxmemory-policy", "noeviction");
    await client.config("SET", "maxmemory", String(await usedMemory(client)));
    const refused = await app.request("/emit-quotes", {
      ...JSON_POST,
      body: JSON.stringify({ ticks: 1 }),
    });
    assert.equal(refused.status, 503, await refused.clone().text());
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    assert.match((await refused.json()).error, /memory/i);
    assert.equal(await client.xlen(config.streamKey), quotes, "nothing half-written");
    const full = await (await app.request("/health")).json();
    assert.equal(full.status, "degraded");
    assert.equal(full.redis, "memory");
    assert.match(full.reason, /out of memory/);

    for (const group of GROUP_NAMES) {
      const res = await app.request(`/drain/${group}`, {
        ...JSON_POST,
        body: JSON.stringify({ budgetMs: 20000, count: 1000 }),
      });
      assert.equal(res.status, 200, `${group}: ${await res.clone().text()}`);
      const body = await res.json();
      assert.equal(body.acked, quotes, group);
      assert.equal(body.deadLettered, 0);
    }
    // Every group is done with the old entries, so the drains trimmed them.
    assert.ok(await client.xlen(config.streamKey) <= 200 + 1000);
    const health = await app.request("/health");
    assert.equal(health.status, 200);
    const emitted = await app.request("/emit-quotes", {
      ...JSON_POST,
      body: JSON.stringify({ ticks: 1 }),
    });
    assert.equal(emitted.status, 200, await emitted.clone().text());
    // Failures log one short line each, never whole script arguments.
    for (const line of errors) assert.ok(line.length < 1000, line.slice(0, 200));
  } finally {
    console.error = error;
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
