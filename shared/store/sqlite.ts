/**
 * The SQLite quote store (node:sqlite): WAL, a busy timeout, and one
 * transaction of insert-or-ignore per chunk.
 *
 * @module
 */

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { checkHistory, checkTable, COLUMNS, toRow, toStoredQuotes } from "./_rows.ts";
import { toStoreError } from "./store_errors.ts";
import type { QuoteStore } from "./types.ts";

/** Runs synchronous SQLite work as a promise, so its errors reject (classified) instead of throwing. */
function attempt<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(toStoreError("sqlite", error));
  }
}

/** A quote store in the SQLite file `path`, table `table`. */
export function sqliteStore(path: string, table: string): QuoteStore {
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
