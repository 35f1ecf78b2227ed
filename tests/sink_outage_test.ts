import assert from "node:assert/strict";
import postgres from "postgres";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import type { Deps } from "../shared/http.ts";
import { createQuoteStore, type QuoteStore } from "../shared/store/quote_store.ts";
import { freePort, startRedis } from "./_redis_server.ts";
import { siteConfig, siteDeps } from "./_site.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import { QUOTE_STORE_GROUP } from "../shared/groups/quote_store.ts";

const JSON_POST = { method: "POST", headers: { "content-type": "application/json" } };
const PG_URL = Deno.env.get("TEST_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
// Short settings keep the back-off after a failing sink around a second.
const FAST = { CLAIM_IDLE_MS: "1500", DRAIN_BUDGET_MS: "500", RETRY_DELAY_MS: "200" };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type App = ReturnType<typeof createApp>;

async function drainStore(app: App, budgetMs: number): Promise<Response> {
  return await app.request(`/drain/${QUOTE_STORE_GROUP}`, {
    ...JSON_POST,
    body: JSON.stringify({ budgetMs, count: 100 }),
  });
}

/** Checks a failing-sink drain answer: 503, Retry-After, the group and the dependency named. */
async function assertStalled(res: Response, dependency: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.ok(Number(res.headers.get("retry-after")) >= 1, "Retry-After");
  const body = JSON.parse(text);
  assert.equal(body.group, QUOTE_STORE_GROUP);
  assert.equal(body.dependency, dependency);
  assert.match(body.error, new RegExp(`${QUOTE_STORE_GROUP}.*${dependency}`));
}

/** Runs the outage scenario: stalled drains, no dead letters, then every quote stored once. */
async function outageScenario(
  deps: Deps,
  sink: { dependency: string; store: QuoteStore; fix(): Promise<void> },
): Promise<void> {
  const app = createApp(deps);
  const client = deps.redis();
  const { config } = deps;
  const emitted = await app.request("/emit-quotes", {
    ...JSON_POST,
    body: JSON.stringify({ ticks: 5 }),
  });
  assert.equal(emitted.status, 200);
  const quotes = 5 * config.symbols.length;
  for (let attempt = 0; attempt < 3; attempt++) {
    // The budget lets each drain wait for the back-off of the one before.
    await assertStalled(await drainStore(app, 1800), sink.dependency);
  }
  const pending = await client.xpending(config.streamKey, QUOTE_STORE_GROUP, "-", "+", 1000) as [
    string,
    string,
    number,
    number,
  ][];
  assert.equal(pending.length, quotes);
  // A failing sink spends no delivery: no entry is closer to the dead letters.
  assert.ok(pending.every(([, , , deliveries]) => deliveries <= 1), JSON.stringify(pending[0]));
  assert.equal(await client.xlen(config.deadLetterKey), 0);
  const report = await (await app.request("/report")).json();
  const group = report.groups.find((g: { name: string }) => g.name === QUOTE_STORE_GROUP);
  assert.equal(group.status, "stalled");
  assert.equal(group.stall.dependency, sink.dependency);
  assert.ok(group.stall.failures >= 3);
  assert.ok(report.warnings.some((w: string) => w.includes("is stalled")));

  await sink.fix();
  const res = await drainStore(app, 5000);
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  assert.equal(body.acked, quotes);
  assert.equal(body.deadLettered, 0);
  assert.equal(body.lag, 0);
  assert.equal(await client.hexists(stockKeys(config).stalled, QUOTE_STORE_GROUP), 0);
  let stored = 0;
  const ids = new Set<string>();
  for (const symbol of config.symbols) {
    const rows = await sink.store.history(symbol, { limit: 1000 });
    stored += rows.length;
    for (const row of rows) ids.add(row.id);
  }
  assert.equal(stored, quotes, "0 rows lost");
  assert.equal(ids.size, quotes, "0 duplicates");
  assert.equal(await client.xlen(config.deadLetterKey), 0, "0 dead letters");
  const after = await (await app.request("/report")).json();
  assert.equal(
    after.groups.find((g: { name: string }) => g.name === QUOTE_STORE_GROUP).status,
    "ok",
  );
}

Deno.test("a SQLite store whose folder is a regular file stalls its group with 503 until fixed, then stores every quote once", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-sink-" });
  const blocker = `${dir}/data`;
  await Deno.writeTextFile(blocker, "not a folder");
  const config = siteConfig(redis.url, dir, { ...FAST, DATABASE_PATH: `${blocker}/quotes.db` });
  const store = createQuoteStore(config);
  resetGroupCache();
  try {
    const deps = siteDeps(config, { redis: redis.client(), quoteStore: store });
    await outageScenario(deps, {
      dependency: "sqlite",
      store,
      async fix() {
        await Deno.remove(blocker);
        await Deno.mkdir(blocker);
      },
    });
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A TCP proxy to PostgreSQL that the test stops and starts on the same port. */
function pgProxy(target: { hostname: string; port: number }) {
  const port = freePort();
  let listener: Deno.Listener | undefined;
  const open = new Set<Deno.Conn>();
  async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    try {
      await from.readable.pipeTo(to.writable);
    } catch {
      // One side closed: the other follows below.
    }
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      open.delete(conn);
    }
  }
  async function accept(l: Deno.Listener): Promise<void> {
    for await (const client of l) {
      let server: Deno.Conn;
      try {
        server = await Deno.connect(target);
      } catch {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      pipe(client, server);
      pipe(server, client);
    }
  }
  return {
    port,
    start() {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      accept(listener).catch(() => {});
    },
    stop() {
      listener?.close();
      listener = undefined;
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      open.clear();
    },
  };
}

async function pgReachable(): Promise<boolean> {
  const { hostname, port } = new URL(PG_URL);
  try {
    (await Deno.connect({ hostname, port: Number(port || 5432) })).close();
    return true;
  } catch {
    return false;
  }
}

const pgUp = await pgReachable();
if (!pgUp) console.log(`PostgreSQL outage test skipped: no PostgreSQL at ${PG_URL}`);

Deno.test({
  name:
    "a PostgreSQL store behind a stopped proxy stalls its group with 503, then stores every quote once when the proxy is back",
  ignore: !pgUp,
  async fn() {
    const target = new URL(PG_URL);
    const proxy = pgProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    const table = `outage_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "tickstream-sink-" });
    const config = siteConfig(redis.url, dir, { ...FAST, DATABASE_URL: viaProxy.href });
    const store = createQuoteStore(config, { table });
    resetGroupCache();
    proxy.start();
    try {
      // The store connects and creates its table while PostgreSQL is reachable.
      await store.write([]);
      assert.equal((await store.history("AAPL")).length, 0);
      proxy.stop();
      const deps = siteDeps(config, { redis: redis.client(), quoteStore: store });
      await outageScenario(deps, {
        dependency: "postgresql",
        store,
        async fix() {
          proxy.start();
          await sleep(50);
        },
      });
    } finally {
      proxy.stop();
      await store.close();
      const sql = postgres(PG_URL, { onnotice() {} });
      await sql.unsafe(`DROP TABLE IF EXISTS "${table}"`);
      await sql.end();
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
