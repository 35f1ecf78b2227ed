/**
 * The live feed, shared by the SSE and WebSocket functions: one hub per
 * isolate and stream layout reads every partition's quote and alert streams
 * and fans the entries out to its subscribers in memory (./hub.ts); each
 * subscriber resumes from a cursor over every stream, gap-free and
 * duplicate-free per partition (./subscription.ts, ./cursor.ts has the format).
 *
 * @module
 */

import { BadRequestError } from "../errors.ts";
import { SYMBOL_PATTERN } from "../market/quotes.ts";
import { toUnavailable } from "../redis.ts";
import { type Cursor, resolveCursor } from "./cursor.ts";
import { hubKey, type LiveDeps, LiveHub } from "./hub.ts";
import { LiveSubscription } from "./subscription.ts";

export { type Cursor, cursorText, type EntryId, parseCursor, resolveCursor } from "./cursor.ts";
export type { Delivery, LiveEvent, LiveKind } from "./events.ts";
export type { LiveDeps } from "./hub.ts";
export { LiveSubscription } from "./subscription.ts";

/** Most symbols one subscription may name. */
export const MAX_SYMBOLS = 100;

const hubs = new Map<string, LiveHub>();
// Hubs told to stop whose loops or connections have not finished yet.
const stopping = new Set<Promise<void>>();

function forget(hub: LiveHub): void {
  if (hubs.get(hub.key) === hub) hubs.delete(hub.key);
}

/**
 * Parses a symbol filter ("AAPL,MSFT" or a list); empty means every symbol (null).
 *
 * @throws {BadRequestError} When a symbol is malformed or there are too many.
 */
export function parseSymbols(raw: string | string[] | undefined): Set<string> | null {
  if (raw === undefined) return null;
  const list = (Array.isArray(raw) ? raw : raw.split(",")).map((s) => s.trim()).filter((s) =>
    s !== ""
  );
  if (list.length === 0) return null;
  if (list.length > MAX_SYMBOLS) {
    throw new BadRequestError(`Too many symbols: at most ${MAX_SYMBOLS}, got ${list.length}`);
  }
  for (const symbol of list) {
    if (!SYMBOL_PATTERN.test(symbol)) {
      throw new BadRequestError(
        `Malformed symbol: "${symbol}": a symbol must match ${SYMBOL_PATTERN.source}`,
      );
    }
  }
  return new Set(list);
}

/** Options of {@linkcode subscribe}. */
export interface SubscribeOptions {
  /**
   * Symbols to receive; null receives every symbol.
   * @default {null}
   */
  symbols?: Set<string> | null;
  /**
   * Where to resume from (exclusive), as parsed by `parseCursor`: a pair per
   * partition, or one pair for every partition; null starts from now.
   * @default {null}
   */
  cursor?: Cursor | null;
}

/**
 * Subscribes to the feed of `deps`' streams, starting the shared reader if
 * none runs; from `cursor` (exclusive) or, when null, from now.
 *
 * @example
 * ```ts
 * declare const deps: LiveDeps;
 * const sub = await subscribe(deps, { symbols: new Set(["AAPL"]) });
 * const events = await sub.next();
 * sub.close();
 * ```
 * @throws {BadRequestError} When the cursor names another number of partitions.
 */
export async function subscribe(
  deps: LiveDeps,
  options: SubscribeOptions = {},
): Promise<LiveSubscription> {
  const { config } = deps;
  const { symbols = null } = options;
  const cursor = options.cursor == null
    ? null
    : resolveCursor(options.cursor, config.streamPartitions);
  const key = hubKey(config);
  let hub = hubs.get(key);
  if (hub === undefined || hub.stopped) {
    hub = new LiveHub(key, deps, function onStop(stopped, done) {
      forget(stopped);
      const settled = done.then(() => {
        stopping.delete(settled);
      });
      stopping.add(settled);
    });
    hubs.set(key, hub);
  }
  const sub = new LiveSubscription(hub, { symbols, cursor });
  try {
    await hub.join(sub);
  } catch (error) {
    throw toUnavailable(error);
  }
  sub.begin();
  return sub;
}

/** Readers running in this isolate (for tests and health checks). */
export function liveReaders(): number {
  return hubs.size;
}

/** Stops every reader of this isolate and waits until their connections are closed. */
export async function stopLiveReaders(): Promise<void> {
  await Promise.all([...hubs.values()].map((hub) => hub.stop()));
  await Promise.all([...stopping]);
}
