import assert from "node:assert/strict";
import type { Hono } from "hono";
import type { Redis } from "ioredis";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { drainDeps, testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { drainStockGroup, ensureStockGroups } from "./_deps.ts";
import { findGroup } from "../shared/groups/registry.ts";
import { queueKeys } from "../shared/queue/mod.ts";

const server = await startRedis();

/** Quotes per emit in these tests: 2 ticks of the 8 default symbols. */
const BATCH = 16;
const BODY = { ticks: 2 };

function emit(key: string | undefined, body: unknown = BODY): RequestInit {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== undefined) headers["Idempotency-Key"] = key;
  return { method: "POST", headers, body: JSON.stringify(body) };
}

async function fresh(env: Record<string, string> = {}): Promise<
  { deps: Deps; app: Hono; redis: Redis }
> {
  await server.flush();
  resetGroupCache();
  const deps = testDeps(server.url, server.client(), {
    env: { DATABASE_PATH: ":memory:", ...env },
  });
  return { deps, app: createApp(deps), redis: server.client() };
}

/** Keys of the idempotency records in Redis. */
async function idempotencyRecords(redis: Redis): Promise<string[]> {
  return await redis.keys("stock_quotes:idem:*");
}

Deno.test("ten concurrent emits with one key and body add the batch once and answer alike", async () => {
  const { app, redis } = await fresh();
  const responses = await Promise.all(
    Array.from({ length: 10 }, () => app.request("/emit-quotes", emit("order-42"))),
  );
  const answers = await Promise.all(
    responses.map(async (res) => ({ status: res.status, text: await res.text() })),
  );
  const ok = answers.filter((a) => a.status === 200);
  const busy = answers.filter((a) => a.status === 409);
  assert.equal(ok.length + busy.length, 10, JSON.stringify(answers.map((a) => a.status)));
  assert.ok(ok.length >= 1);
  for (const a of ok) assert.equal(a.text, ok[0].text, "every 200 carries the first response");
  for (const a of busy) {
    assert.match(JSON.parse(a.text).error, /still running: "order-42"/);
  }
  assert.equal(await redis.xlen("stock_quotes"), BATCH, "the batch was added once");
  assert.equal(
    await redis.hget(queueKeys("stock_quotes").related("stock_quotes:sim"), "version"),
    "1",
  );
  const first = JSON.parse(ok[0].text);
  assert.equal(first.emitted, BATCH);
  const entries = await redis.xrange("stock_quotes", "-", "+");
  assert.equal(first.firstId, entries[0][0]);
  assert.equal(first.lastId, entries[BATCH - 1][0]);

  // A repeat afterwards answers the first response, byte for byte, and adds nothing.
  for (let i = 0; i < 3; i++) {
    const again = await app.request("/emit-quotes", emit("order-42"));
    assert.equal(again.status, 200);
    assert.equal(await again.text(), ok[0].text);
  }
  assert.equal(await redis.xlen("stock_quotes"), BATCH);
  const [record] = await idempotencyRecords(redis);
  const ttl = await redis.pttl(record);
  assert.ok(ttl > 23 * 3600 * 1000 && ttl <= 24 * 3600 * 1000, `record expires in ${ttl} ms`);

  // Another key is another request.
  const other = await app.request("/emit-quotes", emit("order-43"));
  assert.equal(other.status, 200);
  assert.notEqual(await other.text(), ok[0].text);
  assert.equal(await redis.xlen("stock_quotes"), 2 * BATCH);
});

Deno.test("a used key with a different body answers 422 and adds nothing", async () => {
  const { app, redis } = await fresh();
  const res = await app.request("/emit-quotes", emit("k-1"));
  assert.equal(res.status, 200);
  const text = await res.text();
  for (const body of [{ ticks: 3 }, { ticks: 2, symbols: ["AAPL"] }, {}]) {
    const other = await app.request("/emit-quotes", emit("k-1", body));
    assert.equal(other.status, 422, JSON.stringify(body));
    assert.equal(
      (await other.json()).error,
      'Idempotency key was used for a different request: "k-1"',
    );
  }
  assert.equal(await redis.xlen("stock_quotes"), BATCH);
  // The refusals did not disturb the stored response.
  const again = await app.request("/emit-quotes", emit("k-1"));
  assert.equal(await again.text(), text);
});

Deno.test("invalid idempotency keys answer 400 and a 200-character key is accepted", async () => {
  const { app, redis } = await fresh();
  const invalid = ["", "k".repeat(201), "\x01abc", "tab\there", "with space", "caf\xe9", "del\x7f"];
  for (const key of invalid) {
    const res = await app.request("/emit-quotes", emit(key));
    assert.equal(res.status, 400, JSON.stringify(key));
    assert.match(
      (await res.json()).error,
      /^Idempotency-Key must be 1 to 200 printable characters/,
    );
  }
  assert.equal(await redis.xlen("stock_quotes"), 0, "no invalid request added anything");
  assert.deepEqual(await idempotencyRecords(redis), []);
  const longest = await app.request("/emit-quotes", emit("k".repeat(200)));
  assert.equal(longest.status, 200);
  const printable = await app.request("/emit-quotes", emit("!~{}[]<>=:;/?#@&%$"));
  assert.equal(printable.status, 200);
  assert.equal(await redis.xlen("stock_quotes"), 2 * BATCH);
});

Deno.test("a key whose first attempt was refused by backpressure can be retried", async () => {
  const { deps, app, redis } = await fresh({ MAX_LAG: "5" });
  await ensureStockGroups(drainDeps(deps.config, redis), GROUP_NAMES);
  assert.equal((await app.request("/emit-quotes", emit(undefined))).status, 200);
  const refused = await app.request("/emit-quotes", emit("retry-me"));
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("Retry-After"), "30");
  await refused.body?.cancel();
  assert.deepEqual(await idempotencyRecords(redis), [], "the failed attempt freed its key");
  for (const group of GROUP_NAMES) {
    await drainStockGroup(drainDeps(deps.config, redis), findGroup(group)!);
  }
  const retried = await app.request("/emit-quotes", emit("retry-me"));
  assert.equal(retried.status, 200);
  const text = await retried.text();
  assert.equal(await redis.xlen("stock_quotes"), 2 * BATCH);
  for (const group of GROUP_NAMES) {
    await drainStockGroup(drainDeps(deps.config, redis), findGroup(group)!);
  }
  const repeat = await app.request("/emit-quotes", emit("retry-me"));
  assert.equal(await repeat.text(), text);
  assert.equal(await redis.xlen("stock_quotes"), 2 * BATCH);
});

Deno.test("a key whose first attempt failed while Redis was down can be retried", async () => {
  const down = await startRedis();
  const client = createRedis(down.url);
  try {
    resetGroupCache();
    const deps = testDeps(down.url, client, { env: { DATABASE_PATH: ":memory:" } });
    const app = createApp(deps);
    assert.equal((await app.request("/emit-quotes", emit("before"))).status, 200);
    await down.kill();
    const failed = await app.request("/emit-quotes", emit("while-down"));
    assert.equal(failed.status, 503);
    assert.match((await failed.json()).error, /^Redis is unavailable/);
    await down.restart();
    resetGroupCache();
    let retried: Response | undefined;
    for (let i = 0; i < 50; i++) {
      retried = await app.request("/emit-quotes", emit("while-down"));
      if (retried.status !== 503) break;
      await retried.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(retried!.status, 200);
    const text = await retried!.text();
    const body = JSON.parse(text);
    assert.equal(body.emitted, BATCH);
    assert.equal(
      (await client.xrange("stock_quotes", body.firstId, body.lastId)).length,
      BATCH,
    );
    const repeat = await app.request("/emit-quotes", emit("while-down"));
    assert.equal(await repeat.text(), text);
  } finally {
    await closeRedis(client);
    await down.stop();
  }
});

Deno.test("idempotency tests close their redis-server", async () => {
  await closeQuoteStores();
  await server.stop();
});
