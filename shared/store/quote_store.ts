/**
 * The quote store: every quote persisted as one SQL row keyed by its stream
 * entry id, in SQLite (node:sqlite, the embedded default) or PostgreSQL (npm
 * `postgres`, when DATABASE_URL is a postgres:// URL). Also the "quote-store"
 * consumer group that fills it, which keeps the latest-quote hash current for
 * quotes that other producers added to the stream.
 *
 * Nothing opens at import time: a store connects, and creates its schema, on
 * its first call.
 *
 * @module
 */

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import postgres from "postgres";
import type { Config } from "../config.ts";
import type { Quote } from "../market/quotes.ts";
import { compareIds } from "../queue/mod.ts";
import { toStoreError } from "./store_errors.ts";

/** A quote to store, with its stream entry id (the primary key). */
export interface QuoteEntry {
  /** Stream entry id. */
  id: string;
  /** The decoded quote. */
  quote: Quote;
}

/** Table the quotes go to unless a store is given another. */
export const DEFAULT_QUOTE_TABLE = "quotes";

/** Most rows one history read returns. */
export const MAX_HISTORY_LIMIT = 1000;

/** One stored quote, as the history endpoint returns it. */
export interface StoredQuote {
  /** Stream entry id, the primary key. */
  id: string;
  /** Ticker symbol. */
  symbol: string;
  /** Price. */
  price: number;
  /** Percent change against the previous close, or null when the producer sent none. */
  change_percent: number | null;
  /** Volume of the tick. */
  volume: number;
  /** Unix time in seconds; the indexed time column. */
  timestamp: number;
  /** ISO 8601 time as the quote carried it. */
  datetime: string;
}

/** Options of {@linkcode QuoteStore.history}. */
export interface HistoryOptions {
  /**
   * Most rows to return, 1 to 1000.
   * @default {100}
   */
  limit?: number;
  /**
   * Oldest timestamp to include, in Unix seconds.
   * @default {undefined}
   */
  from?: number;
  /**
   * Newest timestamp to include, in Unix seconds.
   * @default {undefined}
   */
  to?: number;
}

/** Where quotes are persisted. */
export interface QuoteStore {
  /** Backend: "sqlite" or "postgres". */
  readonly kind: "sqlite" | "postgres";
  /**
   * Writes a chunk in one transaction, ignoring ids already stored, so a
   * redelivered entry never makes a second row. Resolves to the rows added.
   */
  write(entries: QuoteEntry[]): Promise<number>;
  /** Quotes of `symbol`, newest first. */
  history(symbol: string, options?: HistoryOptions): Promise<StoredQuote[]>;
  /** Closes the connection; a later call opens it again. */
  close(): Promise<void>;
}

/** Options of {@linkcode createQuoteStore}. */
export interface QuoteStoreOptions {
  /**
   * Table name; PostgreSQL also takes "schema.table" (the schema is created too).
   * @default {"quotes"}
   */
  table?: string;
}

const PLAIN_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkTable(table: string, qualified: boolean): string[] {
  const parts = table.split(".");
  const ok = parts.length <= (qualified ? 2 : 1) && parts.every((p) => PLAIN_NAME.test(p));
  if (!ok) {
    const shape = qualified ? "a lower-case name or schema.name" : "a lower-case name";
    throw new RangeError(
      `Cannot open the quote store as 'table' must be ${shape}: current value is "${table}"`,
    );
  }
  return parts;
}

function checkHistory(options: HistoryOptions): { limit: number; from: number; to: number } {
  const { limit = 100, from, to } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new RangeError(
      `Cannot read history as 'limit' must be an integer from 1 to ${MAX_HISTORY_LIMIT}: current value is ${limit}`,
    );
  }
  // Quote timestamps are >= 0 (decodeQuote), so 0 and MAX_VALUE mean "unbounded".
  return { limit, from: from ?? 0, to: to ?? Number.MAX_VALUE };
}

// A row is exactly what the history endpoint returns.
type Row = StoredQuote;

function toRow(entry: QuoteEntry): Row {
  const q = entry.quote;
  return {
    id: entry.id,
    symbol: q.symbol,
    price: q.price,
    change_percent: q.changePercent ?? null,
    volume: q.volume,
    timestamp: q.timestamp,
    datetime: q.datetime,
  };
}

function toStoredQuotes(rows: Record<string, unknown>[]): StoredQuote[] {
  const out = rows.map((r) => ({
    id: String(r.id),
    symbol: String(r.symbol),
    price: Number(r.price),
    change_percent: r.change_percent === null ? null : Number(r.change_percent),
    volume: Number(r.volume),
    timestamp: Number(r.timestamp),
    datetime: String(r.datetime),
  }));
  // SQL orders equal timestamps by id as text; stream order needs the numeric compare.
  return out.sort((a, b) => b.timestamp - a.timestamp || compareIds(b.id, a.id));
}

const COLUMNS = [
  "id",
  "symbol",
  "price",
  "change_percent",
  "volume",
  "timestamp",
  "datetime",
] as const;

/** Runs synchronous SQLite work as a promise, so its errors reject (classified) instead of throwing. */
function attempt<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(toStoreError("sqlite", error));
  }
}

function sqliteStore(path: string, table: string): QuoteStore {
  checkTable(table, false);
  let db: DatabaseSync | undefined;
  let insert: StatementSync | undefined;
  let select: StatementSync | undefined;
  function open(): DatabaseSync {
    if (db !== undefined) return db;
    if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
    const opened = new DatabaseSync(path);
    try {
      // WAL lets the API read while a drain writes; busy_timeout makes a
      // second process wait for the write lock instead of failing at once.
      opened.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;");
      // Ids are per partition and a symbol lives in one: (symbol, id) names a quote.
      opened.exec(`CREATE TABLE IF NOT EXISTS "${table}" (
        id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        price REAL NOT NULL,
        change_percent REAL,
        volume REAL NOT NULL,
        timestamp REAL NOT NULL,
        datetime TEXT NOT NULL,
        PRIMARY KEY (symbol, id)
      ) WITHOUT ROWID`);
      opened.exec(
        `CREATE INDEX IF NOT EXISTS "${table}_symbol_timestamp" ON "${table}" (symbol, timestamp)`,
      );
      // Tables made before partitions have PRIMARY KEY (id): the conflict target needs this.
      opened.exec(
        `CREATE UNIQUE INDEX IF NOT EXISTS "${table}_symbol_id" ON "${table}" (symbol, id)`,
      );
      insert = opened.prepare(
        `INSERT INTO "${table}" (${COLUMNS.join(", ")}) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (symbol, id) DO NOTHING`,
      );
      select = opened.prepare(
        `SELECT ${COLUMNS.join(", ")} FROM "${table}"
         WHERE symbol = ? AND timestamp >= ? AND timestamp <= ?
         ORDER BY timestamp DESC, id DESC LIMIT ?`,
      );
    } catch (error) {
      opened.close();
      throw error;
    }
    db = opened;
    return opened;
  }
  return {
    kind: "sqlite",
    write(entries) {
      return attempt(() => {
        if (entries.length === 0) return 0;
        const handle = open();
        let added = 0;
        // IMMEDIATE takes the write lock up front, so the chunk cannot fail halfway on a busy lock.
        handle.exec("BEGIN IMMEDIATE");
        try {
          for (const entry of entries) {
            const r = toRow(entry);
            const result = insert!.run(
              r.id,
              r.symbol,
              r.price,
              r.change_percent,
              r.volume,
              r.timestamp,
              r.datetime,
            );
            added += Number(result.changes);
          }
          handle.exec("COMMIT");
        } catch (error) {
          handle.exec("ROLLBACK");
          throw error;
        }
        return added;
      });
    },
    history(symbol, options = {}) {
      return attempt(() => {
        const { limit, from, to } = checkHistory(options);
        open();
        const rows = select!.all(symbol, from, to, limit) as Record<string, unknown>[];
        return toStoredQuotes(rows);
      });
    },
    close() {
      db?.close();
      db = undefined;
      insert = undefined;
      select = undefined;
      return Promise.resolve();
    },
  };
}

function postgresStore(url: string, table: string): QuoteStore {
  const parts = checkTable(table, true);
  const name = parts[parts.length - 1];
  const quoted = parts.map((p) => `"${p}"`).join(".");
  let sql: postgres.Sql | undefined;
  let ready: Promise<postgres.Sql> | undefined;
  async function createSchema(client: postgres.Sql): Promise<void> {
    if (parts.length === 2) await client.unsafe(`CREATE SCHEMA IF NOT EXISTS "${parts[0]}"`);
    await client.unsafe(`CREATE TABLE IF NOT EXISTS ${quoted} (
      id text NOT NULL,
      symbol text NOT NULL,
      price double precision NOT NULL,
      change_percent double precision,
      volume double precision NOT NULL,
      "timestamp" double precision NOT NULL,
      datetime text NOT NULL,
      PRIMARY KEY (symbol, id)
    )`);
    await client.unsafe(
      `CREATE INDEX IF NOT EXISTS "${name}_symbol_timestamp" ON ${quoted} (symbol, "timestamp")`,
    );
    await client.unsafe(
      `CREATE UNIQUE INDEX IF NOT EXISTS "${name}_symbol_id" ON ${quoted} (symbol, id)`,
    );
  }
  async function openOnce(): Promise<postgres.Sql> {
    const client = postgres(url, {
      max: 4,
      // Idle connections close by themselves, so a quiet isolate holds none.
      idle_timeout: 30,
      connect_timeout: 5,
      // "relation already exists, skipping" on every start is not news.
      onnotice() {},
    });
    try {
      try {
        await createSchema(client);
      } catch (error) {
        // Two isolates creating the table at once: one loses a catalog race
        // (unique_violation / duplicate_table); the table exists after that.
        const code = (error as { code?: string }).code;
        if (code !== "23505" && code !== "42P07") throw error;
        await createSchema(client);
      }
    } catch (error) {
      await client.end({ timeout: 1 }).catch(() => {});
      throw error;
    }
    sql = client;
    return client;
  }
  function open(): Promise<postgres.Sql> {
    ready ??= openOnce().catch((error) => {
      ready = undefined;
      throw error;
    });
    return ready;
  }
  return {
    kind: "postgres",
    async write(entries) {
      if (entries.length === 0) return 0;
      try {
        const client = await open();
        const rows = entries.map(toRow);
        // One multi-row INSERT is one transaction: the chunk is stored whole or not at all.
        const result = await client`
          INSERT INTO ${client(table)} ${client(rows, ...COLUMNS)}
          ON CONFLICT (symbol, id) DO NOTHING`;
        return result.count;
      } catch (error) {
        throw toStoreError("postgres", error);
      }
    },
    async history(symbol, options = {}) {
      const { limit, from, to } = checkHistory(options);
      try {
        const client = await open();
        const rows = await client`
          SELECT ${client([...COLUMNS])} FROM ${client(table)}
          WHERE symbol = ${symbol} AND "timestamp" >= ${from} AND "timestamp" <= ${to}
          ORDER BY "timestamp" DESC, id DESC LIMIT ${limit}`;
        return toStoredQuotes(rows as unknown as Record<string, unknown>[]);
      } catch (error) {
        throw toStoreError("postgres", error);
      }
    },
    async close() {
      const pending = ready;
      ready = undefined;
      if (pending) await pending.catch(() => undefined);
      const client = sql;
      sql = undefined;
      if (client) await client.end({ timeout: 5 });
    },
  };
}

/**
 * Creates the quote store `config` names: PostgreSQL when DATABASE_URL is
 * set, else SQLite at DATABASE_PATH. Opens nothing until its first call.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../config.ts";
 * import type { Quote } from "../market/quotes.ts";
 * declare const quote: Quote;
 * const store = createQuoteStore(loadConfig());
 * await store.write([{ id: "1700000000000-0", quote }]); // 1
 * await store.history("AAPL", { limit: 10 });
 * await store.close();
 * ```
 */
export function createQuoteStore(
  config: Pick<Config, "databaseUrl" | "databasePath">,
  options: QuoteStoreOptions = {},
): QuoteStore {
  const { table = DEFAULT_QUOTE_TABLE } = options;
  return config.databaseUrl !== undefined
    ? postgresStore(config.databaseUrl, table)
    : sqliteStore(config.databasePath, table);
}

const stores = new Map<string, QuoteStore>();

function storeKey(config: Pick<Config, "databaseUrl" | "databasePath">): string {
  return config.databaseUrl ?? `sqlite:${resolve(config.databasePath)}`;
}

/** Returns this isolate's shared store for `config`, created (not opened) on first use. */
export function getQuoteStore(config: Pick<Config, "databaseUrl" | "databasePath">): QuoteStore {
  const key = storeKey(config);
  let store = stores.get(key);
  if (store === undefined) {
    store = createQuoteStore(config);
    stores.set(key, store);
  }
  return store;
}

/** Closes every store this isolate opened through {@linkcode getQuoteStore}. */
export async function closeQuoteStores(): Promise<void> {
  const all = [...stores.values()];
  stores.clear();
  await Promise.all(all.map((store) => store.close()));
}
