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

/**
 * Rows per INSERT statement: one statement per row spends most of a chunk's
 * write crossing into SQLite; 100 rows bind 700 values, far below SQLite's
 * limit of 32766.
 */
const ROWS_PER_INSERT = 100;

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
  // Prepared multi-row inserts by row count: ROWS_PER_INSERT for full batches, others as met.
  const inserts = new Map<number, StatementSync>();
  let select: StatementSync | undefined;
  function insertOf(handle: DatabaseSync, rows: number): StatementSync {
    let statement = inserts.get(rows);
    if (statement === undefined) {
      const values = Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?, ?)").join(", ");
      statement = handle.prepare(
        `INSERT INTO "${table}" (${COLUMNS.join(", ")}) VALUES ${values}
         ON CONFLICT (symbol, id) DO NOTHING`,
      );
      inserts.set(rows, statement);
    }
    return statement;
  }
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
      // Tables made before partitions have PRIMARY KEY (id): the conflict target needs a
      // unique (symbol, id) index there. Elsewhere the key is that index, and a copy of it
      // (made by earlier versions) would only cost every insert a third b-tree.
      const key = opened.prepare(
        `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`,
      ).all(table).map((row) => row.name).join(",");
      opened.exec(
        key === "symbol,id"
          ? `DROP INDEX IF EXISTS "${table}_symbol_id"`
          : `CREATE UNIQUE INDEX IF NOT EXISTS "${table}_symbol_id" ON "${table}" (symbol, id)`,
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
          for (let start = 0; start < entries.length; start += ROWS_PER_INSERT) {
            const batch = entries.slice(start, start + ROWS_PER_INSERT);
            const values: (string | number | null)[] = [];
            for (const entry of batch) {
              const r = toRow(entry);
              values.push(
                r.id,
                r.symbol,
                r.price,
                r.change_percent,
                r.volume,
                r.timestamp,
                r.datetime,
              );
            }
            added += Number(insertOf(handle, batch.length).run(...values).changes);
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
      inserts.clear();
      select = undefined;
      return Promise.resolve();
    },
  };
}
