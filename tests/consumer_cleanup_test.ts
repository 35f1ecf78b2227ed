import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { createApp } from "../shared/app.ts";
import type { Config } from "../shared/config.ts";
import { type DrainResult, resetGroupCache } from "../shared/queue/mod.ts";
import type { Deps } from "../shared/http.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { openStream } from "../shared/queue/mod.ts";
import { testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";

const server = await startRedis();

/** The smallest CONSUMER_IDLE_MS the config accepts. */
const IDLE_MS = 1000;
const GROUP = "price-alerts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function fresh(env: Record<string, string> = {}): Promise<
  { deps: Deps; redis: Redis; config: Config }
> {
  await server.flush();
  resetGroupCache();
  const deps = testDeps(server.url, server.client(), {
    env: { CONSUMER_IDLE_MS: String(IDLE_MS), DATABASE_PATH: ":memory:", ...env },
  });
  // Two ticks of 8 symbols, and every group created.
  await emitQuotes(deps, { ticks: 2 });
  return { deps, redis: server.client(), config: deps.config };
}

async function consumerNames(redis: Redis, config: Config): Promise<string[]> {
  return (await openStream(redis, config.streamKey).group(GROUP).consumers()).map((c) => c.name)
    .sort();
}

/** Reads `count` entries as `consumer`, acking them when `ack` (which leaves it empty). */
async function take(
  redis: Redis,
  config: Config,
  consumer: string,
  count: number,
  ack: boolean,
): Promise<string[]> {
  const entries = await openStream(redis, config.streamKey).group(GROUP).read(consumer, { count });
  assert.equal(entries.length, count);
  const ids = entries.map((e) => e.id);
  if (ack) assert.equal(await openStream(redis, config.streamKey).group(GROUP).ack(ids), count);
  return ids;
}

Deno.test("idle consumers with pending entries survive cleanup and empty idle ones go", async () => {
  const { redis, config } = await fresh();
  assert.equal(config.consumerIdleMs, IDLE_MS);
  const held = await take(redis, config, "holder", 4, false);
  await take(redis, config, "acked-1", 4, true);
  await take(redis, config, "acked-2", 4, true);
  await sleep(IDLE_MS + 100);
  // Recently active consumers stay whatever they hold.
  await take(redis, config, "recent-empty", 2, true);
  await take(redis, config, "recent-holder", 2, false);
  assert.deepEqual(await consumerNames(redis, config), [
    "acked-1",
    "acked-2",
    "holder",
    "recent-empty",
    "recent-holder",
  ]);

  const removed = await openStream(redis, config.streamKey).group(GROUP)
    .deleteIdleConsumers(config.consumerIdleMs);
  assert.deepEqual(removed.sort(), ["acked-1", "acked-2"]);
  assert.deepEqual(await consumerNames(redis, config), ["holder", "recent-empty", "recent-holder"]);
  // The survivor still owns its entries: nothing it held was dropped from the group.
  const pending = await openStream(redis, config.streamKey).group(GROUP).pendingEntries({
    consumer: "holder",
  });
  assert.deepEqual(pending.map((p) => p.id), held);
  assert.ok(pending[0].idleMs > IDLE_MS);

  // A second pass later removes the consumer that became empty and idle, and no other.
  await sleep(IDLE_MS + 100);
  const later = await openStream(redis, config.streamKey).group(GROUP)
    .deleteIdleConsumers(config.consumerIdleMs, { keep: "recent-empty" });
  assert.deepEqual(later, []);
  assert.deepEqual(await consumerNames(redis, config), ["holder", "recent-empty", "recent-holder"]);
  const final = await openStream(redis, config.streamKey).group(GROUP)
    .deleteIdleConsumers(config.consumerIdleMs);
  assert.deepEqual(final, ["recent-empty"]);
  assert.deepEqual(await consumerNames(redis, config), ["holder", "recent-holder"]);
});

Deno.test("a drain removes empty idle consumers but never one holding entries it cannot claim yet", async () => {
  const { deps, redis, config } = await fresh();
  const app = createApp(deps);
  const held = await take(redis, config, "holder", 3, false);
  await take(redis, config, "acked", 3, true);
  await sleep(IDLE_MS + 100);
  // CLAIM_IDLE_MS is 60 s, so the drain must leave the holder's entries where they are.
  const res = await app.request(`/drain/${GROUP}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200);
  const result = await res.json() as DrainResult;
  assert.equal(result.read, 0);
  assert.equal(result.more, true);
  assert.deepEqual(await consumerNames(redis, config), ["holder"]);
  const pending = await openStream(redis, config.streamKey).group(GROUP).pendingEntries();
  assert.deepEqual(pending.map((p) => [p.id, p.consumer]), held.map((id) => [id, "holder"]));
});

Deno.test("a consumer whose entries were claimed away goes once idle, and the drain keeps its own", async () => {
  const { deps, redis, config } = await fresh({ CLAIM_IDLE_MS: "200" });
  const app = createApp(deps);
  const held = await take(redis, config, "crashed", 5, false);
  await sleep(IDLE_MS + 100);
  const res = await app.request(`/drain/${GROUP}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ budgetMs: 2000 }),
  });
  const result = await res.json() as DrainResult;
  assert.equal(result.claimed, held.length);
  assert.equal(result.acked, 16);
  assert.equal(result.more, false);
  // The crashed consumer is empty and idle: gone. The drain's own consumer is kept.
  assert.deepEqual(await consumerNames(redis, config), [result.consumer]);
  assert.deepEqual(await openStream(redis, config.streamKey).group(GROUP).pendingEntries(), []);

  await sleep(IDLE_MS + 100);
  await emitQuotes(deps, { ticks: 1 });
  const next = await (await app.request(`/drain/${GROUP}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
  })).json();
  assert.equal(next.acked, 8);
  // The process drains under one stable name, which cleanup never removes from under itself.
  assert.equal(next.consumer, result.consumer);
  assert.deepEqual(await consumerNames(redis, config), [next.consumer]);
});

Deno.test("consumer cleanup tests close their redis-server", async () => {
  await closeQuoteStores();
  await server.stop();
});
