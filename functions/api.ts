/**
 * Function `GET /api/*`: the public, read-only REST API of the stock website.
 * No token: it exposes quotes, indicators, alerts and queue counts, nothing
 * an operator route would change.
 *
 * - `GET /api/stocks`: the latest quote of every symbol seen.
 * - `GET /api/stocks/:symbol`: its latest quote and technical indicators.
 * - `GET /api/stocks/:symbol/history?limit=&from=&to=`: stored quotes, newest first.
 * - `GET /api/alerts?limit=&symbol=&type=`: recent alerts, newest first.
 * - `GET /api/queue`: per group lag, pending, dead letters and consumers.
 *
 * The latest quotes come from the hash that emit updates atomically with its
 * XADD and the quote-store group updates for other producers' quotes: one
 * HGET (or HGETALL over the symbols), never a scan of the stream.
 *
 * @module
 */

import { Hono } from "hono";
import { cors } from "hono/cors";
import { type AlertJson, alertToJson } from "../shared/market/alerts.ts";
import {
  indicatorsOf,
  technicalAnalysis,
  type TechnicalState,
} from "../shared/groups/technical_analysis.ts";
import { loadConfig } from "../shared/config.ts";
import { BadRequestError, NotFoundError, UnavailableError } from "../shared/errors.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { defaultDeps, type Deps, installErrorHandling } from "../shared/http.ts";
import {
  getQuoteStore,
  type HistoryOptions,
  MAX_HISTORY_LIMIT,
  type StoredQuote,
} from "../shared/store/quote_store.ts";
import { SYMBOL_PATTERN } from "../shared/market/quotes.ts";
import { compareIds, openStream } from "../shared/queue/mod.ts";
import { parseLatest } from "../shared/market/latest.ts";
import { allStockKeys, stockKeys } from "../shared/stock_queue.ts";
import { partitionOf } from "../shared/partitions.ts";

/** Largest `limit` of GET /api/alerts. */
export const MAX_ALERTS_LIMIT = 500;

// A filtered alert read stops after this many entries so its cost stays
// bounded even when the filter matches nothing (the stream keeps ~ALERTS_MAXLEN).
const MAX_ALERT_SCAN = 20000;
const ALERT_TYPE = /^[a-z][a-z0-9_]{0,39}$/;

/** One group as GET /api/queue shows it: counts only. */
export interface QueueGroup {
  /** Group name. */
  name: string;
  /** Entries not yet delivered, or null when Redis cannot tell (or the group is not created). */
  lag: number | null;
  /** Entries delivered and not acknowledged. */
  pending: number;
  /** Entries of the group in the dead-letter stream. */
  deadLetters: number;
  /** Consumers in the group. */
  consumers: number;
}

/** Validates a path or query symbol; 400 when malformed. */
export function parseSymbol(raw: string): string {
  if (!SYMBOL_PATTERN.test(raw)) {
    throw new BadRequestError(
      `Malformed symbol: "${raw}": a symbol must match ${SYMBOL_PATTERN.source}`,
    );
  }
  return raw;
}

function parseLimit(
  raw: string | undefined,
  { max, fallback }: { max: number; fallback: number },
): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > max) {
    throw new BadRequestError(`Query "limit" must be an integer from 1 to ${max}: got "${raw}"`);
  }
  return value;
}

/** Reads a time bound: Unix seconds ("1700000000", "1700000000.5") or ISO 8601; undefined when absent. */
export function parseTimeBound(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (/^\d{1,12}(\.\d+)?$/.test(raw)) return Number(raw);
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw)
    ? Date.parse(raw)
    : NaN;
  if (Number.isNaN(ms)) {
    throw new BadRequestError(
      `Query "${name}" must be ISO 8601 or Unix seconds: got "${raw}"`,
    );
  }
  return ms / 1000;
}

/** The latest quote of every symbol seen, sorted by symbol. */
export async function latestQuotes(deps: Deps): Promise<Record<string, unknown>[]> {
  // One hash per partition; a symbol lives in exactly one of them.
  const hashes = await Promise.all(
    allStockKeys(deps.config).map((keys) => deps.redis().hgetall(keys.latest)),
  );
  const all = Object.assign({}, ...hashes) as Record<string, string>;
  return Object.keys(all).sort().flatMap((symbol) => {
    const quote = parseLatest(all[symbol]);
    return quote === null ? [] : [quote];
  });
}

/** The latest quote and indicators of `symbol`; 404 for a symbol never seen. */
export async function stockDetail(
  deps: Deps,
  symbol: string,
): Promise<{ symbol: string; quote: Record<string, unknown>; indicators: unknown }> {
  // O(1): the symbol's partition is known from its name.
  const keys = stockKeys(deps.config, partitionOf(symbol, deps.config.streamPartitions));
  const redis = deps.redis();
  const [rawQuote, rawState] = await Promise.all([
    redis.hget(keys.latest, symbol),
    redis.hget(keys.state(technicalAnalysis.group), symbol),
  ]);
  const quote = rawQuote === null ? null : parseLatest(rawQuote);
  if (quote === null) throw new NotFoundError(`Unknown symbol: "${symbol}"`);
  const state = rawState === null ? undefined : JSON.parse(rawState) as TechnicalState;
  return { symbol, quote, indicators: indicatorsOf(state) };
}

/** Stored quotes of `symbol`, newest first; 404 when none is stored and the symbol was never seen. */
export async function quoteHistory(
  deps: Deps,
  symbol: string,
  options: HistoryOptions = {},
): Promise<StoredQuote[]> {
  const store = deps.quoteStore ?? getQuoteStore(deps.config);
  let quotes: StoredQuote[];
  try {
    quotes = await store.history(symbol, options);
  } catch (error) {
    throw new UnavailableError(
      `Quote store is unavailable: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (quotes.length === 0) {
    const keys = stockKeys(deps.config, partitionOf(symbol, deps.config.streamPartitions));
    const seen = await deps.redis().hexists(keys.latest, symbol);
    if (!seen) throw new NotFoundError(`Unknown symbol: "${symbol}"`);
  }
  return quotes;
}

/** Options of {@linkcode recentAlerts}. */
export interface RecentAlertsOptions {
  /**
   * Most alerts to return, 1 to {@linkcode MAX_ALERTS_LIMIT}.
   * @default {50}
   */
  limit?: number;
  /**
   * Only alerts about this symbol.
   * @default {undefined}
   */
  symbol?: string;
  /**
   * Only alerts of this type, e.g. "price_move".
   * @default {undefined}
   */
  type?: string;
}

/** Recent alerts, newest first, optionally of one symbol and/or type. */
export async function recentAlerts(
  deps: Deps,
  options: RecentAlertsOptions = {},
): Promise<AlertJson[]> {
  const { limit = 50, symbol, type } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ALERTS_LIMIT) {
    throw new RangeError(
      `Cannot read alerts as 'limit' must be an integer from 1 to ${MAX_ALERTS_LIMIT}: current value is ${limit}`,
    );
  }
  const streams = symbol === undefined
    ? allStockKeys(deps.config).map((keys) => openStream(deps.redis(), keys.alerts))
    : [
      openStream(
        deps.redis(),
        stockKeys(deps.config, partitionOf(symbol, deps.config.streamPartitions)).alerts,
      ),
    ];
  const filtered = symbol !== undefined || type !== undefined;
  // Newest first from each partition's alerts stream, then merged by id.
  const perStream = await Promise.all(streams.map(async function newestOf(alertsStream) {
    const found: AlertJson[] = [];
    let end = "+";
    let scanned = 0;
    while (found.length < limit && scanned < MAX_ALERT_SCAN) {
      const count = filtered ? 500 : limit - found.length;
      const page = await alertsStream.range({ reverse: true, end, count });
      for (const entry of page) {
        const alert = alertToJson(entry);
        if (symbol !== undefined && alert.symbol !== symbol) continue;
        if (type !== undefined && alert.type !== type) continue;
        found.push(alert);
        if (found.length === limit) break;
      }
      scanned += page.length;
      if (page.length < count) break;
      end = `(${page[page.length - 1].id}`;
    }
    return found;
  }));
  const out = perStream.flat().sort((x, y) => compareIds(y.id, x.id)).slice(0, limit);
  return out;
}

/** Per-group counts for the dashboard's queue-health panel, in GROUP_NAMES order. */
export async function queueCounts(deps: Deps): Promise<QueueGroup[]> {
  const redis = deps.redis();
  const readings = await Promise.all(
    allStockKeys(deps.config).map((keys) =>
      Promise.all([openStream(redis, keys.stream).groups(), redis.hgetall(keys.deadCount)])
    ),
  );
  return GROUP_NAMES.map((name) => {
    const parts = readings.map(([groups]) => groups.find((info) => info.name === name));
    const lags = parts.map((g) => g ? g.lag : null);
    return {
      name,
      lag: lags.some((lag) => lag === null) ? null : lags.reduce((n, lag) => n! + lag!, 0),
      pending: parts.reduce((n, g) => n + (g?.pending ?? 0), 0),
      deadLetters: readings.reduce((n, [, dead]) => n + Number(dead[name] ?? 0), 0),
      consumers: Math.max(0, ...parts.map((g) => g?.consumers ?? 0)),
    };
  });
}

/** Builds the public API's app (absolute routes under /api). */
export function createApiApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  // Public and read-only, so any origin may read it.
  app.use("/api/*", cors({ origin: "*", allowMethods: ["GET"] }));
  app.use("/api/*", async function noStore(c, next) {
    await next();
    c.header("Cache-Control", "no-store");
  });
  app.get("/api/stocks", async function stocks(c) {
    return c.json(await latestQuotes(deps));
  });
  app.get("/api/stocks/:symbol", async function stock(c) {
    const symbol = parseSymbol(c.req.param("symbol"));
    return c.json(await stockDetail(deps, symbol));
  });
  app.get("/api/stocks/:symbol/history", async function history(c) {
    const symbol = parseSymbol(c.req.param("symbol"));
    const limit = parseLimit(c.req.query("limit"), { max: MAX_HISTORY_LIMIT, fallback: 100 });
    const from = parseTimeBound("from", c.req.query("from"));
    const to = parseTimeBound("to", c.req.query("to"));
    if (from !== undefined && to !== undefined && from > to) {
      throw new BadRequestError(`Query "from" must not be after "to": got ${from} > ${to}`);
    }
    return c.json(await quoteHistory(deps, symbol, { limit, from, to }));
  });
  app.get("/api/alerts", async function alerts(c) {
    const limit = parseLimit(c.req.query("limit"), { max: MAX_ALERTS_LIMIT, fallback: 50 });
    const rawSymbol = c.req.query("symbol");
    const symbol = rawSymbol === undefined || rawSymbol === "" ? undefined : parseSymbol(rawSymbol);
    const rawType = c.req.query("type");
    let type: string | undefined;
    if (rawType !== undefined && rawType !== "") {
      if (!ALERT_TYPE.test(rawType)) {
        throw new BadRequestError(
          `Query "type" must match ${ALERT_TYPE.source}: got "${rawType}"`,
        );
      }
      type = rawType;
    }
    return c.json(await recentAlerts(deps, { limit, symbol, type }));
  });
  app.get("/api/queue", async function queue(c) {
    return c.json({ groups: await queueCounts(deps) });
  });
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createApiApp(defaultDeps(config)).fetch);
}
