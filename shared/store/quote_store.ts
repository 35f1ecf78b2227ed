/**
 * The quote store: every quote persisted as one SQL row keyed by its symbol
 * and stream entry id, in SQLite (node:sqlite, the embedded default,
 * sqlite.ts) or PostgreSQL (npm `postgres`, when DATABASE_URL is a
 * postgres:// URL, postgres.ts). The "quote-store" consumer group that fills
 * it is shared/groups/quote_store.ts.
 *
 * Nothing opens at import time: a store connects, and creates its schema, on
 * its first call.
 *
 * @module
 */

import { resolve } from "node:path";
import type { Config } from "../config.ts";
import { postgresStore } from "./postgres.ts";
import { sqliteStore } from "./sqlite.ts";
import { DEFAULT_QUOTE_TABLE, type QuoteStore } from "./types.ts";

export {
  DEFAULT_QUOTE_TABLE,
  type HistoryOptions,
  MAX_HISTORY_LIMIT,
  type QuoteEntry,
  type QuoteStore,
  type StoredQuote,
} from "./types.ts";

/** Options of {@linkcode createQuoteStore}. */
export interface QuoteStoreOptions {
  /**
   * Table name; PostgreSQL also takes "schema.table" (the schema is created too).
   * @default {"quotes"}
   */
  table?: string;
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
