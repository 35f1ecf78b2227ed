/**
 * One client's view of the live feed: a symbol filter, a cursor over every
 * stream of every partition, and a queue the hub pushes to. A subscriber
 * resuming from behind the hub catches up with its own non-blocking XRANGE
 * reads up to the hub's position at the moment it joined, while the live
 * events past that position wait in its queue; a subscriber whose queue
 * overflows (a slow client) drops it and catches up the same way. Either way
 * each stream is delivered after the cursor exactly once: per partition, no
 * gap and no duplicate.
 *
 * @module
 */

import { openStream, type StreamEntry } from "../queue/mod.ts";
import { toUnavailable } from "../redis.ts";
import {
  type Cursor,
  cursorIdText,
  cursorText,
  earlier,
  type EntryId,
  idText,
  isAfter,
  joinIdTexts,
  later,
  laterCursor,
} from "./cursor.ts";
import { type Delivery, idOf, type LiveEvent, mergeEvents } from "./events.ts";
import type { LiveHub } from "./hub.ts";

const CATCH_UP_PAGE = 500;
// Events a subscriber may have queued; past it, it catches up from Redis instead.
const QUEUE_LIMIT = 10000;

/** Options of a {@linkcode LiveSubscription}. */
export interface LiveSubscriptionOptions {
  /**
   * Symbols to receive; null receives every symbol.
   * @default {null}
   */
  symbols?: Set<string> | null;
  /**
   * Where to resume from (exclusive), fitted to the hub's streams; null starts from now.
   * @default {null}
   */
  cursor?: Cursor | null;
}

/**
 * One client's subscription: `next()` returns the next events to send,
 * catching up from Redis first when the client is behind the hub.
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
  constructor(hub: LiveHub, options: LiveSubscriptionOptions = {}) {
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
      this.#cursor = laterCursor(cursor, this.#hub.position);
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
    // A copy: the cursor may be the hub's position itself.
    const cursor = [...this.#cursor!];
    // The cursor as per-stream texts, so each event id is one join.
    const texts = cursor.map((id) => cursorIdText(id, cursor.length));
    const out: Delivery[] = [];
    for (const event of batch) {
      // Only a client that resumed ahead of this hub has events at or before its cursor.
      if (!isAfter(event.at, cursor[event.stream])) continue;
      cursor[event.stream] = event.at;
      texts[event.stream] = event.idText;
      out.push({ kind: event.kind, id: joinIdTexts(texts), data: event.data });
    }
    this.#cursor = cursor;
    return out;
  }

  /** One page of catch-up from the cursor to `target`; clears the target when reached. */
  async #catchUp(target: Cursor): Promise<Delivery[]> {
    const cursor: EntryId[] = [...this.#cursor!];
    const streams = this.#hub.streams;
    const redis = this.#hub.commands();
    let reads: StreamEntry[][];
    try {
      reads = await Promise.all(streams.map((s) => {
        const from = cursor[s.index];
        const to = target[s.index];
        if (!isAfter(to, from)) return Promise.resolve([]);
        return openStream(redis, s.key).range({
          start: `(${idText(from)}`,
          end: idText(to),
          count: CATCH_UP_PAGE,
        });
      }));
    } catch (error) {
      throw toUnavailable(error);
    }
    if (this.#closed) return [];
    // A full page may end before another stream's page does: stop every
    // stream at the earliest such end so events stay in time order.
    let bound: EntryId | null = null;
    for (const entries of reads) {
      if (entries.length < CATCH_UP_PAGE) continue;
      const end = idOf(entries[entries.length - 1]);
      if (bound === null || isAfter(bound, end)) bound = end;
    }
    const limit = bound;
    const within = limit === null
      ? reads
      : reads.map((entries) => entries.filter((e) => !isAfter(idOf(e), limit)));
    const out: Delivery[] = [];
    for (const event of mergeEvents(streams, within, streams.length)) {
      cursor[event.stream] = event.at;
      if (this.symbols !== null && !this.symbols.has(event.symbol)) continue;
      out.push({ kind: event.kind, id: cursorText(cursor), data: event.data });
    }
    // Every stream was read up to its target, or up to the bound: entries
    // skipped as undecodable still move the cursor.
    for (let i = 0; i < cursor.length; i++) {
      cursor[i] = later(cursor[i], limit === null ? target[i] : earlier(limit, target[i]));
    }
    if (limit === null && this.#target === target) this.#target = null;
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
