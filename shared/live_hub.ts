/**
 * The live feed's reader, shared by the SSE and WebSocket functions: one hub
 * per isolate, Redis URL and pair of streams runs a single blocking XREAD
 * over the quote stream and the alerts stream on a dedicated connection and
 * fans the entries out to every subscriber in memory, so a thousand clients
 * still mean one blocked Redis connection. The hub starts with its first
 * subscriber and stops (disconnecting its connection) when the last leaves.
 *
 * Event ids are cursors over both streams: `"<quoteId>,<alertId>"`, e.g.
 * `"1700000000000-3,1699999999000-0"`: the last quote and the last alert that
 * the subscriber has been given (or that its symbol filter skipped). A
 * subscriber resuming from one gets every matching event after both ids
 * exactly once. A subscriber resuming from behind the hub catches up with its
 * own non-blocking XRANGE reads up to the hub's position at the moment it
 * joined, while the live events past that position wait in its queue; a
 * subscriber whose queue overflows (a slow client) drops it and catches up
 * the same way. Either way no event is missed or repeated.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { alertToJson } from "./market/alerts.ts";
import type { Config } from "./config.ts";
import { BadRequestError } from "./errors.ts";
import type { Deps } from "./http.ts";
import { decodeQuote, quoteToJson, SYMBOL_PATTERN } from "./market/quotes.ts";
import { createRedis, toUnavailable } from "./redis.ts";
import { openStream, readStreams, type StreamEntry } from "./queue/mod.ts";

/** Most symbols one subscription may name. */
export const MAX_SYMBOLS = 100;

const READ_COUNT = 1000;
const BLOCK_MS = 5000;
const CATCH_UP_PAGE = 500;
// Events a subscriber may have queued; past it, it catches up from Redis instead.
const QUEUE_LIMIT = 10000;

/** A stream entry id as two numbers (ms < 2^53, so exact). */
export interface EntryId {
  /** Milliseconds part. */
  ms: number;
  /** Sequence number within the millisecond. */
  seq: number;
}

/** Position in both streams: the last quote and the last alert passed. */
export interface Cursor {
  /** Last quote-stream entry passed. */
  quote: EntryId;
  /** Last alerts-stream entry passed. */
  alert: EntryId;
}

/** Kind of a live event. */
export type LiveKind = "quote" | "alert";

/** One event as the hub fans it out. */
interface LiveEvent {
  kind: LiveKind;
  /** Entry id as Redis wrote it. */
  id: string;
  at: EntryId;
  symbol: string;
  /** JSON payload, serialised once for every subscriber. */
  data: string;
}

/** One event as a subscriber delivers it, stamped with its cursor. */
export interface Delivery {
  /** "quote" or "alert". */
  kind: LiveKind;
  /** Cursor after this event, the SSE id. */
  id: string;
  /** JSON payload: the quote with its entry id, or the alert. */
  data: string;
}

const ZERO: EntryId = { ms: 0, seq: 0 };
const ID_TEXT = /^(\d{1,16})(?:-(\d{1,16}))?$/;

function parseEntryId(text: string): EntryId | null {
  const match = ID_TEXT.exec(text);
  if (match === null) return null;
  const ms = Number(match[1]);
  const seq = Number(match[2] ?? 0);
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms, seq } : null;
}

function idOf(entry: StreamEntry): EntryId {
  return parseEntryId(entry.id) ?? ZERO;
}

function idText(id: EntryId): string {
  return `${id.ms}-${id.seq}`;
}

function isAfter(a: EntryId, b: EntryId): boolean {
  return a.ms > b.ms || (a.ms === b.ms && a.seq > b.seq);
}

function later(a: EntryId, b: EntryId): EntryId {
  return isAfter(a, b) ? a : b;
}

/** Formats a cursor as an event id: `"<quoteId>,<alertId>"`. */
/** Formats a cursor as its event id, `"<quoteId>,<alertId>"`. */
export function cursorText(cursor: Cursor): string {
  return `${idText(cursor.quote)},${idText(cursor.alert)}`;
}

/**
 * Parses a resume point: `"<quoteId>,<alertId>"` or one entry id for both
 * streams; undefined or "" means "from now" (null).
 *
 * @example
 * ```ts
 * parseCursor("1700000000000-3,1699999999000-0"); // both ids
 * parseCursor("1700000000000"); // same id for quotes and alerts
 * ```
 * @throws {BadRequestError} When the text is neither.
 */
export function parseCursor(raw: string | undefined): Cursor | null {
  if (raw === undefined || raw.trim() === "") return null;
  const parts = raw.trim().split(",");
  const ids = parts.map(parseEntryId);
  if (parts.length > 2 || ids.some((id) => id === null)) {
    throw new BadRequestError(
      `Malformed event id: "${raw}": expected "<quoteId>,<alertId>" or one entry id`,
    );
  }
  return { quote: ids[0]!, alert: ids[ids.length - 1]! };
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

function toEvent(kind: LiveKind, entry: StreamEntry): LiveEvent | null {
  if (kind === "alert") {
    const alert = alertToJson(entry);
    return {
      kind,
      id: entry.id,
      at: idOf(entry),
      symbol: alert.symbol,
      data: JSON.stringify(alert),
    };
  }
  try {
    const quote = decodeQuote(entry.fields);
    return {
      kind,
      id: entry.id,
      at: idOf(entry),
      symbol: quote.symbol,
      data: JSON.stringify(quoteToJson(quote, { id: entry.id })),
    };
  } catch {
    // The quote-store and analysis groups dead-letter it; the feed skips it.
    return null;
  }
}

/** Merges quote and alert entries into events in id (time) order. */
function mergeEvents(quotes: StreamEntry[], alerts: StreamEntry[]): LiveEvent[] {
  const out: LiveEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < quotes.length || j < alerts.length) {
    const takeQuote = j >= alerts.length ||
      (i < quotes.length && !isAfter(idOf(quotes[i]), idOf(alerts[j])));
    const event = takeQuote ? toEvent("quote", quotes[i++]) : toEvent("alert", alerts[j++]);
    if (event !== null) out.push(event);
  }
  return out;
}

/** What the live feed needs: settings and the shared command client. */
export type LiveDeps = Pick<Deps, "config" | "redis">;

async function lastIdOf(redis: Redis, key: string): Promise<EntryId> {
  const info = await openStream(redis, key).info();
  return info === null ? ZERO : parseEntryId(info.lastGeneratedId) ?? ZERO;
}

const hubs = new Map<string, LiveHub>();
// Hubs told to stop whose loop or connection has not finished yet.
const stopping = new Set<Promise<void>>();

/** The shared reader: one blocking XREAD loop over both streams, fanned out in memory. */
class LiveHub {
  readonly key: string;
  readonly config: Config;
  readonly commands: () => Redis;
  #subscribers = new Set<LiveSubscription>();
  #position: Cursor = { quote: ZERO, alert: ZERO };
  #ready: Promise<void> | undefined;
  #reader: Redis | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #pause: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;

  constructor(key: string, deps: LiveDeps) {
    this.key = key;
    this.config = deps.config;
    this.commands = () => deps.redis();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Where the reader is: every entry up to here has been pushed to the subscribers. */
  get position(): Cursor {
    return this.#position;
  }

  /** Adds `sub` at once (so it sees every later event) and waits for the reader to run. */
  async join(sub: LiveSubscription): Promise<void> {
    this.#subscribers.add(sub);
    this.#ready ??= this.#start();
    try {
      await this.#ready;
    } catch (error) {
      this.leave(sub);
      throw error;
    }
  }

  leave(sub: LiveSubscription): void {
    this.#subscribers.delete(sub);
    if (this.#subscribers.size === 0) this.stop();
  }

  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#stopped = true;
    if (hubs.get(this.key) === this) hubs.delete(this.key);
    if (this.#pause) {
      clearTimeout(this.#pause.timer);
      this.#pause.resolve();
    }
    const reader = this.#reader;
    const ended = reader === undefined || reader.status === "end"
      ? Promise.resolve()
      : new Promise<void>((resolve) => reader.once("end", () => resolve()));
    // disconnect(), not quit(): QUIT would queue behind the blocked XREAD.
    reader?.disconnect();
    const done = Promise.all([this.#ready?.catch(() => {}), this.#loop, ended]).then(() => {
      stopping.delete(done);
    });
    stopping.add(done);
    this.#stopping = done;
    return done;
  }

  async #start(): Promise<void> {
    const redis = this.commands();
    const [quote, alert] = await Promise.all([
      lastIdOf(redis, this.config.streamKey),
      lastIdOf(redis, this.config.alertsKey),
    ]);
    if (this.#stopped) return;
    this.#position = { quote, alert };
    this.#reader = createRedis(this.config.redisUrl, {
      commandTimeoutMs: 0,
      name: "tickstream-live",
    });
    this.#loop = this.#run(this.#reader);
  }

  async #run(reader: Redis): Promise<void> {
    const { streamKey, alertsKey } = this.config;
    while (!this.#stopped) {
      let read: Map<string, StreamEntry[]>;
      try {
        read = await readStreams(reader, [
          [streamKey, idText(this.#position.quote)],
          [alertsKey, idText(this.#position.alert)],
        ], { count: READ_COUNT, blockMs: BLOCK_MS });
      } catch {
        if (this.#stopped) break;
        // Redis is down or restarting: the client reconnects by itself; the
        // position is kept, so nothing is skipped once it is back.
        await this.#sleep(250);
        continue;
      }
      if (this.#stopped) break;
      const quotes = read.get(streamKey) ?? [];
      const alerts = read.get(alertsKey) ?? [];
      if (quotes.length === 0 && alerts.length === 0) {
        await this.#rewindIfReset();
        continue;
      }
      this.#dispatch(quotes, alerts);
    }
  }

  /** Pushes new entries to every subscriber; moves the position first, in the same tick. */
  #dispatch(quotes: StreamEntry[], alerts: StreamEntry[]): void {
    this.#position = {
      quote: quotes.length > 0 ? idOf(quotes[quotes.length - 1]) : this.#position.quote,
      alert: alerts.length > 0 ? idOf(alerts[alerts.length - 1]) : this.#position.alert,
    };
    const events = mergeEvents(quotes, alerts);
    if (events.length === 0) return;
    for (const sub of this.#subscribers) sub.push(events);
  }

  /** A stream recreated behind the reader (FLUSHALL, DEL) would block it forever: follow it back. */
  async #rewindIfReset(): Promise<void> {
    try {
      const redis = this.commands();
      const [quote, alert] = await Promise.all([
        lastIdOf(redis, this.config.streamKey),
        lastIdOf(redis, this.config.alertsKey),
      ]);
      if (isAfter(this.#position.quote, quote) || isAfter(this.#position.alert, alert)) {
        this.#position = {
          quote: isAfter(this.#position.quote, quote) ? quote : this.#position.quote,
          alert: isAfter(this.#position.alert, alert) ? alert : this.#position.alert,
        };
      }
    } catch {
      // The next read reports the outage.
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pause = undefined;
        resolve();
      }, ms);
      this.#pause = { timer, resolve };
    });
  }
}

/**
 * One client's view of the feed: a symbol filter, a cursor, and a queue the
 * hub pushes to. `next()` returns the next events to send, catching up from
 * Redis first when the client is behind the hub.
 */
export class LiveSubscription {
  /** Symbols it receives, or null for every symbol. */
  readonly symbols: Set<string> | null;
  #hub: LiveHub;
  #cursor: Cursor | null;
  #target: Cursor | null = null;
  #queue: LiveEvent[] = [];
  // Until begin() (and after an overflow) pushes are dropped: catch-up covers them.
  #resync = true;
  #closed = false;
  #interrupted = false;
  #wake: (() => void) | undefined;

  /** Creates a subscription on `hub`; `subscribe()` joins and begins it. */
  constructor(hub: LiveHub, options: SubscribeOptions = {}) {
    const { symbols = null, cursor = null } = options;
    this.#hub = hub;
    this.symbols = symbols;
    this.#cursor = cursor;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Called by the hub, synchronously with its position moving past `events`. */
  push(events: LiveEvent[]): void {
    if (this.#resync || this.#closed) return;
    let added = false;
    for (const event of events) {
      if (this.symbols !== null && !this.symbols.has(event.symbol)) continue;
      if (this.#queue.length >= QUEUE_LIMIT) {
        // A client this slow reads from Redis until it is current again.
        this.#queue = [];
        this.#resync = true;
        break;
      }
      this.#queue.push(event);
      added = true;
    }
    if (added || this.#resync) this.#notify();
  }

  /** Fixes the starting point once joined: from the cursor given, else from the hub's position. */
  begin(): void {
    const position = this.#hub.position;
    this.#queue = [];
    this.#resync = false;
    if (this.#cursor === null) {
      this.#cursor = position;
      this.#target = null;
    } else {
      this.#target = position;
    }
  }

  /**
   * The cursor covering everything given or skipped so far. While the
   * subscriber is live and idle, that is the hub's position, since every
   * matching event up to it would be in the queue.
   */
  settledCursor(): string {
    const cursor = this.#cursor ?? this.#hub.position;
    if (this.#target === null && !this.#resync && this.#queue.length === 0 && !this.#closed) {
      const position = this.#hub.position;
      this.#cursor = {
        quote: later(cursor.quote, position.quote),
        alert: later(cursor.alert, position.alert),
      };
      return cursorText(this.#cursor);
    }
    return cursorText(cursor);
  }

  /** Makes a waiting (or the next) `next()` return at once, with what it has. */
  interrupt(): void {
    this.#interrupted = true;
    this.#notify();
  }

  /** Leaves the hub (stopping it when this was the last subscriber) and ends `next()`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#hub.leave(this);
    this.#notify();
  }

  /**
   * The next events to send; [] when interrupted (see `interrupt()`) or
   * closed. Throws when a catch-up read fails.
   */
  async next(): Promise<Delivery[]> {
    while (!this.#closed) {
      if (this.#interrupted) {
        this.#interrupted = false;
        return [];
      }
      if (this.#resync) this.begin();
      if (this.#target !== null) {
        const out = await this.#catchUp(this.#target);
        if (out.length > 0 || this.#closed) return out;
        continue;
      }
      if (this.#queue.length > 0) {
        const out = this.#take();
        if (out.length > 0) return out;
        continue;
      }
      await this.#wait();
    }
    return [];
  }

  #take(): Delivery[] {
    const batch = this.#queue;
    this.#queue = [];
    // A copy: the cursor may be the hub's position object itself.
    const cursor = { ...this.#cursor! };
    // The cursor's halves as text, so each event id is one concatenation.
    let quoteText = idText(cursor.quote);
    let alertText = idText(cursor.alert);
    const out: Delivery[] = [];
    for (const event of batch) {
      // Only a client that resumed ahead of this hub has events at or before its cursor.
      if (!isAfter(event.at, cursor[event.kind])) continue;
      cursor[event.kind] = event.at;
      if (event.kind === "quote") quoteText = event.id;
      else alertText = event.id;
      out.push({ kind: event.kind, id: `${quoteText},${alertText}`, data: event.data });
    }
    this.#cursor = cursor;
    return out;
  }

  /** One page of catch-up from the cursor to `target`; clears the target when reached. */
  async #catchUp(target: Cursor): Promise<Delivery[]> {
    const cursor = { ...this.#cursor! };
    const { streamKey, alertsKey } = this.#hub.config;
    const redis = this.#hub.commands();
    /** The next page of `kind`'s stream after the cursor, up to the target. */
    function page(kind: LiveKind): Promise<StreamEntry[]> {
      const from = cursor[kind];
      const to = target[kind];
      if (!isAfter(to, from)) return Promise.resolve([]);
      return openStream(redis, kind === "quote" ? streamKey : alertsKey).range({
        start: `(${idText(from)}`,
        end: idText(to),
        count: CATCH_UP_PAGE,
      });
    }
    let quotes: StreamEntry[];
    let alerts: StreamEntry[];
    try {
      [quotes, alerts] = await Promise.all([page("quote"), page("alert")]);
    } catch (error) {
      throw toUnavailable(error);
    }
    if (this.#closed) return [];
    // A full page may end before the other stream's page does: stop both at
    // the earlier end so events stay in time order across the two streams.
    let bound: EntryId | null = null;
    if (quotes.length === CATCH_UP_PAGE) bound = idOf(quotes[quotes.length - 1]);
    if (alerts.length === CATCH_UP_PAGE) {
      const end = idOf(alerts[alerts.length - 1]);
      if (bound === null || isAfter(bound, end)) bound = end;
    }
    const within = (e: StreamEntry) => bound === null || !isAfter(idOf(e), bound);
    const out: Delivery[] = [];
    for (const event of mergeEvents(quotes.filter(within), alerts.filter(within))) {
      cursor[event.kind] = event.at;
      if (this.symbols !== null && !this.symbols.has(event.symbol)) continue;
      out.push({ kind: event.kind, id: cursorText(cursor), data: event.data });
    }
    if (bound === null) {
      // Both streams are read up to the target: the queue continues from there.
      cursor.quote = later(cursor.quote, target.quote);
      cursor.alert = later(cursor.alert, target.alert);
      if (this.#target === target) this.#target = null;
    } else {
      // Entries skipped as undecodable still move the cursor.
      if (quotes.length === CATCH_UP_PAGE) cursor.quote = later(cursor.quote, bound);
      if (alerts.length === CATCH_UP_PAGE) cursor.alert = later(cursor.alert, bound);
    }
    if (out.length > 0) {
      // The last delivery's id must name the cursor after the whole page.
      out[out.length - 1] = { ...out[out.length - 1], id: cursorText(cursor) };
    }
    this.#cursor = cursor;
    return out;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  // No timer per wait: at thousands of batches a second that would be
  // thousands of timers; the connection's one heartbeat interrupts instead.
  #wait(): Promise<void> {
    return new Promise((resolve) => this.#wake = resolve);
  }
}

/** Options of {@linkcode subscribe}. */
export interface SubscribeOptions {
  /**
   * Symbols to receive; null receives every symbol.
   * @default {null}
   */
  symbols?: Set<string> | null;
  /**
   * Where to resume from (exclusive); null starts from now.
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
 */
export async function subscribe(
  deps: LiveDeps,
  options: SubscribeOptions = {},
): Promise<LiveSubscription> {
  const { config } = deps;
  const key = `${config.redisUrl}|${config.streamKey}|${config.alertsKey}`;
  let hub = hubs.get(key);
  if (hub === undefined || hub.stopped) {
    hub = new LiveHub(key, deps);
    hubs.set(key, hub);
  }
  const sub = new LiveSubscription(hub, options);
  try {
    await hub.join(sub);
  } catch (error) {
    throw toUnavailable(error);
  }
  sub.begin();
  return sub;
}

/** Open live connections of this isolate, ended by {@linkcode closeLive}. */

/** Readers running in this isolate (for tests and health checks). */
export function liveReaders(): number {
  return hubs.size;
}

/** Stops every reader of this isolate and waits until their connections are closed. */
export async function stopLiveReaders(): Promise<void> {
  await Promise.all([...hubs.values()].map((hub) => hub.stop()));
  await Promise.all([...stopping]);
}
