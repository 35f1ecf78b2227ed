/**
 * Function `GET /live` (Server-Sent Events) and `GET /ws` (WebSocket): the
 * live feed of quotes and alerts, resumable without gaps or duplicates. Both
 * subscribe to the isolate's one shared reader in shared/live/mod.ts; event
 * ids are its cursors (`"<quoteId>,<alertId>"`, one such pair per partition
 * joined by `;` when STREAM_PARTITIONS > 1; see shared/live/cursor.ts), which
 * Last-Event-ID, `?since=` or the WebSocket's `since` resume from.
 *
 * @module
 */

import { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { upgradeWebSocket } from "hono/deno";
import type { WSContext } from "hono/ws";
import { loadConfig } from "../shared/config.ts";
import { BadRequestError, HttpError, UnavailableError } from "../shared/errors.ts";
import { defaultDeps, type Deps, installErrorHandling } from "../shared/http.ts";
import {
  type Cursor,
  type Delivery,
  type LiveDeps,
  liveReaders,
  type LiveSubscription,
  parseCursor,
  parseSymbols,
  stopLiveReaders,
  subscribe,
} from "../shared/live/mod.ts";

/** Reconnect delay the feed asks EventSource for, in ms. */
export const RETRY_MS = 500;
/** Quiet time after which the feed sends a keep-alive, in ms. */
export const HEARTBEAT_MS = 15000;

const MAX_WS_MESSAGE = 4096;
// RFC 6455: the key is 16 random bytes in base64, so 22 characters and "==".
const WS_KEY = /^[A-Za-z0-9+/]{22}==$/;
const WS_BUFFER_LIMIT = 4 * 1024 * 1024;

export { liveReaders };

const sessions = new Set<{ end(reason?: string): void; done: Promise<void> }>();

const SHUTDOWN_REASON = "Server is shutting down: reconnect with since";
const MAX_MS_REASON = "LIVE_MAX_MS reached: reconnect with since";

/** Ends every live connection with a final "end" event and stops every reader, e.g. on shutdown. */
export async function closeLive(): Promise<void> {
  const open = [...sessions];
  for (const session of open) session.end(SHUTDOWN_REASON);
  await Promise.all(open.map((s) => s.done));
  await stopLiveReaders();
}

function formatSse(batch: Delivery[]): string {
  let text = "";
  for (const d of batch) text += `event: ${d.kind}\nid: ${d.id}\ndata: ${d.data}\n\n`;
  return text;
}

// How long an ended connection may take to flush its last write before it is cut.
const END_GRACE_MS = 1000;

/** What one SSE connection sends, and for how long at most. */
interface SseFeed {
  /** The subscription whose events it sends. */
  sub: LiveSubscription;
  /** Longest life of the connection, in ms. */
  maxMs: number;
}

async function pumpSse(stream: SSEStreamingApi, feed: SseFeed): Promise<void> {
  const { sub, maxMs } = feed;
  let ended = false;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => finish = resolve);
  let cut: ReturnType<typeof setTimeout> | undefined;
  let reason = MAX_MS_REASON;
  const session = {
    end(why: string = MAX_MS_REASON) {
      if (ended) return;
      ended = true;
      reason = why;
      sub.interrupt();
      // A client that stopped reading would hold a pending write forever.
      cut = setTimeout(() => stream.abort(), END_GRACE_MS);
    },
    done,
  };
  sessions.add(session);
  const timer = setTimeout(() => session.end(MAX_MS_REASON), maxMs);
  const heartbeat = setInterval(() => sub.interrupt(), HEARTBEAT_MS);
  stream.onAbort(() => session.end());
  try {
    await stream.write(`retry: ${RETRY_MS}\n\n`);
    let lastId = "";
    while (!ended && !stream.aborted) {
      const batch = await sub.next();
      if (stream.aborted) break;
      if (batch.length > 0) {
        await stream.write(formatSse(batch));
        lastId = batch[batch.length - 1].id;
      } else if (!ended) {
        // An id-only message moves EventSource's Last-Event-ID past filtered
        // events without firing an event; else a comment keeps proxies open.
        const id = sub.settledCursor();
        await stream.write(id !== lastId ? `id: ${id}\n\n` : ": keep-alive\n\n");
        lastId = id;
      }
    }
    if (!stream.aborted) {
      const id = sub.settledCursor();
      await stream.write(
        `event: end\ndata: ${JSON.stringify({ id, reason })}\nid: ${id}\nretry: ${RETRY_MS}\n\n`,
      );
    }
  } catch (error) {
    // A failed catch-up read ends the connection; the client resumes from its last id.
    if (!stream.aborted) {
      await stream.write(`: ${(error as Error).message.replace(/[\r\n]+/g, " ")}\n\n`);
    }
  } finally {
    clearTimeout(timer);
    clearInterval(heartbeat);
    clearTimeout(cut);
    sub.close();
    sessions.delete(session);
    finish();
  }
}

/** One WebSocket connection: its current subscription and the pump that sends it. */
class WsSession {
  #deps: LiveDeps;
  #release: () => void;
  #ws: WSContext | undefined;
  #sub: LiveSubscription | undefined;
  #pump: Promise<void> = Promise.resolve();
  #work: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ended = false;
  #finish!: () => void;
  readonly done = new Promise<void>((resolve) => this.#finish = resolve);

  constructor(deps: LiveDeps, release: () => void) {
    this.#deps = deps;
    this.#release = release;
  }

  open(ws: WSContext): void {
    this.#ws = ws;
    this.#timer = setTimeout(() => this.#close(1000, MAX_MS_REASON), this.#deps.config.liveMaxMs);
  }

  message(data: unknown): void {
    // One message at a time, so subscriptions replace each other in order.
    this.#work = this.#work.then(() => this.#handle(data));
  }

  end(reason: string = SHUTDOWN_REASON): void {
    this.#close(1001, reason);
  }

  closed(): void {
    if (this.#ended) {
      return;
    }
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#sub?.close();
    this.#release();
    this.#pump.then(() => this.#finish());
  }

  #send(text: string): boolean {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(text);
    return true;
  }

  #error(message: string): void {
    this.#send(JSON.stringify({ event: "error", error: message }));
  }

  #close(code: number, reason: string): void {
    const sub = this.#sub;
    if (sub !== undefined && !this.#ended) {
      this.#send(JSON.stringify({ event: "end", id: sub.settledCursor(), reason }));
    }
    try {
      this.#ws?.close(code, reason);
    } catch {
      // Already closing.
    }
    this.closed();
  }

  async #handle(data: unknown): Promise<void> {
    if (this.#ended) return;
    let request: { symbols: Set<string> | null; cursor: Cursor | null | undefined };
    try {
      request = parseWsMessage(data);
    } catch (error) {
      this.#error((error as Error).message);
      return;
    }
    const previous = this.#sub;
    // Without `since`, a new subscription goes on from where the last one was.
    const cursor = request.cursor !== undefined
      ? request.cursor
      : previous !== undefined
      ? parseCursor(previous.settledCursor())
      : null;
    previous?.close();
    await this.#pump;
    let sub: LiveSubscription;
    try {
      sub = await subscribe(this.#deps, { symbols: request.symbols, cursor });
    } catch (error) {
      this.#error((error as Error).message);
      return;
    }
    if (this.#ended) {
      sub.close();
      return;
    }
    this.#sub = sub;
    this.#send(JSON.stringify({
      event: "subscribed",
      symbols: request.symbols === null ? null : [...request.symbols],
      // The cursor fitted to every partition (a single pair applies to each).
      id: sub.settledCursor(),
    }));
    this.#pump = this.#run(sub);
  }

  async #run(sub: LiveSubscription): Promise<void> {
    const heartbeat = setInterval(() => sub.interrupt(), HEARTBEAT_MS);
    try {
      while (!sub.closed && !this.#ended) {
        const batch = await sub.next();
        if (sub.closed && batch.length === 0) break;
        const raw = this.#ws?.raw as WebSocket | undefined;
        for (const d of batch) {
          if (!this.#send(`{"event":"${d.kind}","id":"${d.id}","data":${d.data}}`)) return;
        }
        if (batch.length === 0) this.#send(JSON.stringify({ event: "ping" }));
        // A client that stops reading lets the socket buffer grow; wait for it.
        while (raw !== undefined && raw.bufferedAmount > WS_BUFFER_LIMIT && !this.#ended) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } catch (error) {
      this.#error((error as Error).message);
      this.#close(1011, "Live feed read failed: reconnect with since");
    } finally {
      clearInterval(heartbeat);
    }
  }
}

/**
 * Validates a WebSocket message: `{"subscribe": ["AAPL"], "since": "<id>"}`,
 * both optional (no `subscribe` means every symbol; no `since` means from now,
 * or from where the previous subscription was).
 *
 * @throws {BadRequestError} With the reason, sent back as an error message.
 */
export function parseWsMessage(
  data: unknown,
): { symbols: Set<string> | null; cursor: Cursor | null | undefined } {
  if (typeof data !== "string") throw new BadRequestError("Messages must be JSON text");
  if (data.length > MAX_WS_MESSAGE) {
    throw new BadRequestError(`Message exceeds ${MAX_WS_MESSAGE} characters`);
  }
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    throw new BadRequestError("Message is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new BadRequestError("Message must be a JSON object");
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).find((k) => k !== "subscribe" && k !== "since");
  if (unknown !== undefined) {
    throw new BadRequestError(`Unknown field "${unknown}": allowed fields are subscribe, since`);
  }
  const { subscribe: list, since } = record;
  if (
    list !== undefined && (!Array.isArray(list) || list.some((s) => typeof s !== "string"))
  ) {
    throw new BadRequestError(`Field "subscribe" must be an array of symbols`);
  }
  if (since !== undefined && typeof since !== "string") {
    throw new BadRequestError(`Field "since" must be an event id string`);
  }
  return {
    symbols: parseSymbols(list as string[] | undefined),
    cursor: since === undefined ? undefined : parseCursor(since) ?? undefined,
  };
}

/** Builds the live feed's app: GET /live (SSE) and GET /ws (WebSocket). */
export function createLiveApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  const { config } = deps;
  let active = 0;
  const releases = new WeakMap<Request, () => void>();
  function reserve(): () => void {
    if (active >= config.liveMaxClients) {
      throw new UnavailableError(
        `Too many live connections: LIVE_MAX_CLIENTS is ${config.liveMaxClients}`,
      );
    }
    active += 1;
    let released = false;
    return function release() {
      if (!released) active -= 1;
      released = true;
    };
  }

  app.get("/live", async function live(c) {
    const symbols = parseSymbols(c.req.query("symbols"));
    const resume = c.req.header("Last-Event-ID");
    const cursor = parseCursor(
      resume !== undefined && resume !== "" ? resume : c.req.query("since"),
    );
    const release = reserve();
    let sub: LiveSubscription;
    try {
      sub = await subscribe(deps, { symbols, cursor });
    } catch (error) {
      release();
      throw error;
    }
    // Proxies such as nginx would otherwise buffer the stream.
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, async function feed(stream) {
      try {
        await pumpSse(stream, { sub, maxMs: config.liveMaxMs });
      } finally {
        release();
      }
    });
  });

  app.get(
    "/ws",
    async function wsGate(c, next) {
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HttpError(426, "Expected a WebSocket upgrade request", {
          headers: { Upgrade: "websocket" },
        });
      }
      // Checked here, before a slot is taken: Deno refuses such an upgrade
      // with an error that would otherwise surface as a 500.
      const key = c.req.header("sec-websocket-key") ?? "";
      if (!WS_KEY.test(key)) {
        throw new BadRequestError(
          "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455): the upgrade is refused",
        );
      }
      const version = c.req.header("sec-websocket-version");
      if (version !== undefined && version.trim() !== "13") {
        throw new HttpError(
          426,
          `Sec-WebSocket-Version must be 13: got "${version.slice(0, 20)}"`,
          {
            headers: { "Sec-WebSocket-Version": "13" },
          },
        );
      }
      const release = reserve();
      releases.set(c.req.raw, release);
      try {
        await next();
      } catch (error) {
        release();
        throw error;
      }
      // A failed upgrade reaches onError, not this catch: give the slot back.
      if (c.error !== undefined || c.res.status !== 101) release();
    },
    upgradeWebSocket(function events(c) {
      const release = releases.get(c.req.raw) ?? (() => {});
      const session = new WsSession(deps, release);
      const entry = { end: () => session.end(), done: session.done };
      return {
        onOpen(_event, ws) {
          sessions.add(entry);
          session.open(ws);
        },
        onMessage(event) {
          session.message(event.data);
        },
        onClose() {
          session.closed();
          session.done.then(() => sessions.delete(entry));
        },
        onError() {
          session.closed();
        },
      };
    }),
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createLiveApp(defaultDeps(config)).fetch);
}
