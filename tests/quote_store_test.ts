import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { createQuoteStore, type QuoteEntry, type QuoteStore } from "../shared/store/quote_store.ts";
import { encodeQuote, type Quote } from "../shared/market/quotes.ts";
import { openStream } from "../shared/queue/mod.ts";
import { drainDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { siteConfig } from "./_site.ts";
import { drainStockGroup } from "./_deps.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import { stockKeys, stockQueue } from "../shared/stock_queue.ts";
import { groupContext } from "../shared/groups/context.ts";
import { QUOTE_STORE_GROUP, quoteStore } from "../shared/groups/quote_store.ts";

const PG_URL = Deno.env.get("TEST_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
const inCi = Deno.env.get("CI") === "true";

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  try {
    const conn = await Deno.connect({ hostname, port: Number(port || 5432) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

const pgUp = await reachable(PG_URL);
// Locally a missing PostgreSQL skips its tests; in CI they run and fail instead.
const pgIgnore = !pgUp && !inCi;
const pgNote = pgIgnore ? ` (ignored: no PostgreSQL at ${PG_URL})` : "";

function quote(symbol: string, seconds: number, price: number, changePercent?: number): Quote {
  return {
    symbol,
    price,
    volume: 1000 + seconds % 7,
    timestamp: seconds,
    datetime: new Date(seconds * 1000).toISOString(),
    changePercent,
  };
}

/** A chunk of quotes: 3 AAPL and 2 MSFT, one per minute from 1700000000. */
function chunk(): QuoteEntry[] {
  return [
    { id: "1700000000000-0", quote: quote("AAPL", 1700000000, 190) },
    { id: "1700000060000-0", quote: quote("MSFT", 1700000060, 410) },
    { id: "1700000120000-0", quote: quote("AAPL", 1700000120, 191, 0.5) },
    { id: "1700000180000-0", quote: quote("AAPL", 1700000180, 192) },
    { id: "1700000240000-0", quote: quote("MSFT", 1700000240, 411) },
  ];
}

/** Checks replay, history order and bounds on any store; `count` counts rows by SQL. */
async function checkStore(store: QuoteStore, count: () => Promise<number>): Promise<void> {
  assert.equal(await store.write(chunk()), 5);
  // The same chunk again (a redelivery): no second row for any entry.
  assert.equal(await store.write(chunk()), 0);
  assert.equal(await store.write(chunk().slice(2)), 0);
  assert.equal(await count(), 5);

  const aapl = await store.history("AAPL");
  assert.deepEqual(aapl.map((q) => q.id), [
    "1700000180000-0",
    "1700000120000-0",
    "1700000000000-0",
  ]);
  assert.deepEqual(aapl[0], {
    id: "1700000180000-0",
    symbol: "AAPL",
    price: 192,
    change_percent: null,
    volume: 1000 + 1700000180 % 7,
    timestamp: 1700000180,
    datetime: "2023-11-14T22:16:20.000Z",
  });
  assert.equal(aapl[1].change_percent, 0.5);
  assert.deepEqual((await store.history("AAPL", { limit: 1 })).map((q) => q.price), [192]);
  assert.deepEqual(
    (await store.history("AAPL", { from: 1700000100, to: 1700000150 })).map((q) => q.price),
    [191],
  );
  assert.deepEqual((await store.history("MSFT", { to: 1700000060 })).map((q) => q.price), [410]);
  assert.deepEqual(await store.history("TSLA"), []);
  await assert.rejects(() => store.history("AAPL", { limit: 0 }), RangeError);
  await assert.rejects(() => store.history("AAPL", { limit: 1001 }), RangeError);
}

Deno.test("the SQLite store creates its file and schema on first use, not when created", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const path = `${dir}/nested/quotes.db`;
  const store = createQuoteStore({ databasePath: path, databaseUrl: undefined });
  try {
    assert.equal(store.kind, "sqlite");
    assert.equal(existsSync(path), false);
    assert.equal(await store.write(chunk().slice(0, 1)), 1);
    assert.equal(existsSync(path), true);
    const db = new DatabaseSync(path);
    try {
      const columns = db.prepare("PRAGMA table_info(quotes)").all().map((c) => c.name);
      assert.deepEqual(columns, [
        "id",
        "symbol",
        "price",
        "change_percent",
        "volume",
        "timestamp",
        "datetime",
      ]);
      const indexes = db.prepare("PRAGMA index_list(quotes)").all().map((i) => i.name);
      assert.ok(indexes.includes("quotes_symbol_timestamp"), JSON.stringify(indexes));
      const key = db.prepare("PRAGMA index_info(quotes_symbol_timestamp)").all();
      assert.deepEqual(key.map((k) => k.name), ["symbol", "timestamp"]);
    } finally {
      db.close();
    }
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replaying the same chunk twice on SQLite leaves one row per entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const path = `${dir}/quotes.db`;
  const store = createQuoteStore({ databasePath: path, databaseUrl: undefined }, {
    table: "replay_quotes",
  });
  try {
    await checkStore(store, () => {
      const db = new DatabaseSync(path);
      try {
        return Promise.resolve(
          Number(db.prepare("SELECT count(*) AS n FROM replay_quotes").get()!.n),
        );
      } finally {
        db.close();
      }
    });
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SQLite chunk that fails halfway leaves none of its rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const store = createQuoteStore({ databasePath: `${dir}/quotes.db`, databaseUrl: undefined });
  try {
    const bad = chunk();
    // NOT NULL price: the third insert fails after two succeeded.
    bad[2] = { ...bad[2], quote: { ...bad[2].quote, price: null as unknown as number } };
    await assert.rejects(() => store.write(bad));
    assert.deepEqual(await store.history("AAPL"), []);
    assert.deepEqual(await store.history("MSFT"), []);
    assert.equal(await store.write(chunk()), 5);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SQLite table keyed by (symbol, id) keeps no second copy of its key, and a table keyed by id alone gets one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const path = `${dir}/quotes.db`;
  const setup = new DatabaseSync(path);
  // As an earlier version left them: a table with the copy, and a table keyed by id.
  setup.exec(`CREATE TABLE quotes (id TEXT NOT NULL, symbol TEXT NOT NULL, price REAL NOT NULL,
    change_percent REAL, volume REAL NOT NULL, timestamp REAL NOT NULL, datetime TEXT NOT NULL,
    PRIMARY KEY (symbol, id)) WITHOUT ROWID`);
  setup.exec(`CREATE UNIQUE INDEX quotes_symbol_id ON quotes (symbol, id)`);
  setup.exec(`CREATE TABLE old_quotes (id TEXT PRIMARY KEY, symbol TEXT NOT NULL,
    price REAL NOT NULL, change_percent REAL, volume REAL NOT NULL, timestamp REAL NOT NULL,
    datetime TEXT NOT NULL)`);
  setup.close();
  const config = { databasePath: path, databaseUrl: undefined };
  const current = createQuoteStore(config);
  const old = createQuoteStore(config, { table: "old_quotes" });
  try {
    assert.equal(await current.write(chunk()), 5);
    assert.equal(await old.write(chunk()), 5);
    assert.equal(await old.write(chunk()), 0);
    const db = new DatabaseSync(path);
    try {
      const names = (table: string) =>
        db.prepare(`PRAGMA index_list(${table})`).all().map((i) => String(i.name)).sort();
      assert.deepEqual(names("quotes"), ["quotes_symbol_timestamp", "sqlite_autoindex_quotes_1"]);
      assert.ok(names("old_quotes").includes("old_quotes_symbol_id"), names("old_quotes").join());
    } finally {
      db.close();
    }
  } finally {
    await current.close();
    await old.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store table name that is not a plain identifier is refused", () => {
  const config = { databasePath: ":memory:", databaseUrl: undefined };
  assert.throws(() => createQuoteStore(config, { table: "quotes; DROP TABLE x" }), RangeError);
  assert.throws(() => createQuoteStore(config, { table: "main.quotes" }), RangeError);
  assert.throws(
    () => createQuoteStore({ databasePath: "", databaseUrl: PG_URL }, { table: "A.b.c" }),
    RangeError,
  );
});

Deno.test({
  name: `replaying the same chunk twice on PostgreSQL leaves one row per entry${pgNote}`,
  ignore: pgIgnore,
  async fn() {
    const schema = `tickstream_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const table = `${schema}.quotes`;
    const store = createQuoteStore({ databasePath: "", databaseUrl: PG_URL }, { table });
    const admin = postgres(PG_URL, { max: 1, onnotice() {} });
    try {
      assert.equal(store.kind, "postgres");
      // Created on first use: the schema does not exist before the first call.
      const before = await admin`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
      assert.equal(before.length, 0);
      await checkStore(store, async () => {
        const [row] = await admin`SELECT count(*)::int AS n FROM ${admin(table)}`;
        return row.n;
      });
      const indexes = await admin`
        SELECT indexdef FROM pg_indexes WHERE schemaname = ${schema} AND tablename = 'quotes'`;
      assert.ok(
        indexes.some((i) => /\(symbol, "timestamp"\)/.test(i.indexdef)),
        JSON.stringify(indexes),
      );
      // A quote is named by (symbol, id): ids are per partition, and a symbol lives in one.
      const unique = indexes.filter((i) => /UNIQUE/.test(i.indexdef)).map((i) => i.indexdef);
      assert.ok(unique.some((d) => /\(symbol, id\)/.test(d)), JSON.stringify(unique));
      // A store opened again (another isolate) finds the schema and the rows.
      await store.close();
      assert.equal((await store.history("AAPL")).length, 3);
    } finally {
      await store.close();
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  },
});

Deno.test({
  name: "a write to an unreachable PostgreSQL rejects instead of hanging",
  async fn() {
    const store = createQuoteStore({
      databasePath: "",
      databaseUrl: "postgres://postgres@127.0.0.1:1/nowhere",
    });
    try {
      await assert.rejects(() => store.write(chunk()));
    } finally {
      await store.close();
    }
  },
});

Deno.test("the quote-store group drains last and stores every drained quote once", async () => {
  assert.equal(GROUP_NAMES.at(-1), QUOTE_STORE_GROUP);
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const config = siteConfig(redis.url, dir, { CLAIM_IDLE_MS: "10" });
  const store = createQuoteStore(config);
  const client = redis.client();
  resetGroupCache();
  try {
    assert.equal(GROUPS.at(-1)?.group, QUOTE_STORE_GROUP);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const q = quote(i % 2 ? "AAPL" : "MSFT", 1700000000 + i, 100 + i);
      ids.push((await client.xadd(config.streamKey, "*", ...encodeQuote(q)))!);
    }
    // The first attempt commits to the store, then dies before the ack.
    let crash = true;
    const flaky: QuoteStore = {
      kind: store.kind,
      async write(entries) {
        const added = await store.write(entries);
        if (crash) throw new Error("killed after the commit");
        return added;
      },
      history: (symbol, options) => store.history(symbol, options),
      close: () => store.close(),
    };
    const flakyDeps = { ...drainDeps(config, client), quoteStore: flaky };
    // One chunk: a single delivery that commits to the store and then fails.
    const failed = await drainStockGroup(flakyDeps, quoteStore, {
      count: 20,
      budgetMs: 2000,
      maxChunks: 1,
    });
    assert.equal(failed.acked, 0);
    assert.equal(failed.failed, 20);
    assert.equal(
      (await openStream(client, config.streamKey).group(QUOTE_STORE_GROUP).pending()).count,
      20,
    );
    assert.equal((await store.history("AAPL")).length, 10);

    crash = false;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const result = await drainStockGroup(flakyDeps, quoteStore, {
      count: 20,
      budgetMs: 5000,
    });
    assert.equal(result.acked, 30);
    assert.equal(
      (await openStream(client, config.streamKey).group(QUOTE_STORE_GROUP).pending()).count,
      0,
    );
    const stored = [...await store.history("AAPL"), ...await store.history("MSFT")];
    assert.equal(stored.length, 30);
    assert.deepEqual(stored.map((q) => q.id).sort(), [...ids].sort());
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the quote-store sink points the latest-quote hash at other producers' quotes, never back", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-store-" });
  const config = siteConfig(redis.url, dir);
  const store = createQuoteStore(config);
  const client = redis.client();
  resetGroupCache();
  try {
    const key = stockKeys(config).latest;
    const a1 = (await client.xadd(config.streamKey, "*", ...encodeQuote(quote("ZZZ", 1, 10))))!;
    const a2 = (await client.xadd(config.streamKey, "*", ...encodeQuote(quote("ZZZ", 2, 11))))!;
    const b1 = (await client.xadd(config.streamKey, "*", ...encodeQuote(quote("YYY", 3, 20))))!;
    // Emit already wrote a newer YYY quote than the one this drain will see.
    const newer = `${Number(b1.split("-")[0]) + 5000}-0`;
    await client.hset(key, "YYY", `{"id":"${newer}","symbol":"YYY","price":21}`);
    const deps = { ...drainDeps(config, client), quoteStore: store };
    const result = await drainStockGroup(deps, quoteStore, { budgetMs: 2000 });
    assert.equal(result.acked, 3);
    const zzz = JSON.parse((await client.hget(key, "ZZZ"))!);
    assert.equal(zzz.id, a2);
    assert.notEqual(zzz.id, a1);
    assert.equal(zzz.price, 11);
    assert.equal(zzz.symbol, "ZZZ");
    // Same JSON shape as emit's: id first, then quoteToJson's fields.
    assert.match((await client.hget(key, "ZZZ"))!, new RegExp(`^\\{"id":"${a2}","symbol":"ZZZ",`));
    assert.equal(JSON.parse((await client.hget(key, "YYY"))!).id, newer);
    // A redelivered (older) chunk never moves the hash back.
    const context = groupContext(deps, stockQueue(deps));
    await quoteStore.write(context, [{ id: a1, item: quote("ZZZ", 1, 10) }]);
    assert.equal(JSON.parse((await client.hget(key, "ZZZ"))!).id, a2);
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
