/**
 * The PostgreSQL quote store (npm postgres): a small pool, the schema made
 * on first use, and one multi-row insert-or-ignore per chunk.
 *
 * @module
 */

import postgres from "postgres";
import { checkHistory, checkTable, COLUMNS, toRow, toStoredQuotes } from "./_rows.ts";
import { toStoreError } from "./store_errors.ts";
import type { QuoteStore } from "./types.ts";

/** A quote store in the PostgreSQL database at `url`, table `table`. */
export function postgresStore(url: string, table: string): QuoteStore {
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
