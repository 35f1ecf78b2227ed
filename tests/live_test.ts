import assert from "node:assert/strict";
import { closeLive, createLiveApp, liveReaders } from "../functions/live.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import type { Config } from "../shared/config.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import type { Deps } from "../shared/http.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { encodeQuote } from "../shared/market/quotes.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { readThenDrop, SseReader } from "./_sse.ts";
import { serve, siteConfig, siteDeps } from "./_site.ts";

const redis: TestRedis = await startRedis();
const dir = await Deno.makeTempDir({ prefix: "tickstream-live-" });

function setup(env: Record<string, string> = {}): { config: Config; deps: Deps } {
  const config = siteConfig(redis.url, dir, env);
  return {
    config,
    deps: siteDeps(config, { redis: redis.client(), quoteStore: createQuoteStore(config) }),
  };
}

async function fresh(): Promise<void> {
  await closeLive();
  await redis.flush();
  resetGroupCache();
}

let clock = 1_700_000_000_000;

/** Adds a quote as another producer would; returns its entry id. */
async function addQuote(config: Config, symbol: string): Promise<string> {
  clock += 1000;
  const fields = encodeQuote({
    symbol,
    price: 100 + (clock / 1000) % 50,
    volume: 100,
    timestamp: clock / 1000,
    datetime: new Date(clock).toISOString(),
  });
  return (await redis.client().xadd(config.streamKey, "*", ...fields))!;
}

/** Adds an alert as the drain engine would; returns its entry id. */
async function addAlert(config: Config, symbol: string): Promise<string> {
  return (await redis.client().xadd(
    config.alertsKey,
    "*",
    ...[
      "type",
      "price_move",
      "symbol",
      symbol,
      "message",
      `${symbol} moved`,
      "value",
      "2.5",
      "source_id",
      "0-1",
      "group",
      "price-alerts",
      "datetime",
      new Date().toISOString(),
    ],
  ))!;
}

function keysOf(reader: SseReader): string[] {
  return reader.events.map((e) => `${e.event}:${JSON.parse(e.data).id}`);
}

async function liveConnections(): Promise<number> {
  const list = await redis.client().client("LIST") as string;
  return list.split("\n").filter((line) => line.includes("name=tickstream-live ")).length;
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("Timed out waiting for a condition");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A WebSocket client that records every message. */
async function openWs(url: string) {
  const ws = new WebSocket(url);
  const messages: Record<string, unknown>[] = [];
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  ws.onmessage = (event) => messages.push(JSON.parse(event.data));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`Cannot open ${url}`));
  });
  return {
    ws,
    messages,
    closed,
    of(event: string) {
      return messages.filter((m) => m.event === event);
    },
    async until(check: () => boolean, timeoutMs = 5000) {
      await waitFor(check, timeoutMs);
    },
    async close() {
      if (ws.readyState === WebSocket.OPEN) ws.close();
      await closed;
    },
  };
}

Deno.test("GET /live streams the quotes and alerts of the requested symbols only", async () => {
  await fresh();
  const { config, deps } = setup();
  const app = createLiveApp(deps);
  const response = await app.request("/live?symbols=AAPL,MSFT");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const reader = new SseReader(response.body!);
  try {
    await emitQuotes(deps, { ticks: 2, symbols: ["AAPL", "TSLA", "MSFT", "NVDA"] });
    const tslaAlert = await addAlert(config, "TSLA");
    const aaplAlert = await addAlert(config, "AAPL");
    assert.ok(await reader.readUntil(() => reader.events.length >= 5));
    await reader.readUntil(() => false, { timeoutMs: 200 });
    const quotes = reader.json<{ symbol: string; price: number; id: string }>("quote");
    const alerts = reader.json<{ symbol: string; id: string; type: string }>("alert");
    assert.deepEqual(quotes.map((q) => q.symbol), ["AAPL", "MSFT", "AAPL", "MSFT"]);
    assert.deepEqual(alerts.map((a) => a.id), [aaplAlert]);
    assert.notEqual(alerts[0].id, tslaAlert);
    assert.equal(alerts[0].type, "price_move");
    assert.equal(reader.retry, 500);
    // Each event's id is the cursor "<quoteId>,<alertId>" after it.
    const last = reader.events[reader.events.length - 1];
    assert.equal(last.id, `${quotes[3].id},${aaplAlert}`);
    assert.equal(reader.events[0].id.split(",")[0], quotes[0].id);
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("GET /live rejects malformed symbols and event ids with 400", async () => {
  await fresh();
  const { deps } = setup();
  const app = createLiveApp(deps);
  for (
    const path of [
      "/live?symbols=aapl",
      "/live?symbols=AAPL,TOOLONGSYMBOL1",
      "/live?since=yesterday",
      "/live?since=1-0,2-0,3-0",
    ]
  ) {
    const response = await app.request(path);
    assert.equal(response.status, 400, path);
    assert.match((await response.json()).error, /Malformed/);
  }
  const response = await app.request("/live", { headers: { "Last-Event-ID": "nope" } });
  assert.equal(response.status, 400);
  assert.equal(liveReaders(), 0);
});

Deno.test("SSE resume with Last-Event-ID across forced disconnects yields every event once", async () => {
  await fresh();
  const { config, deps } = setup();
  const server = serve(createLiveApp(deps));
  const expected: string[] = [];
  const received: string[] = [];
  let producing = true;
  let lastId = "";
  let connections = 0;
  async function connectOnce(): Promise<void> {
    connections += 1;
    // Read a few events, then drop the connection mid-stream.
    const dropped = await readThenDrop(`${server.url}/live`, {
      lastId,
      target: 7 + (connections % 5),
    });
    received.push(...keysOf(dropped.reader));
    lastId = dropped.lastId;
  }

  try {
    // The first connection starts "from now", so it must exist before the first quote.
    const first = connectOnce();
    await waitFor(() => liveReaders() === 1);
    const producer = (async () => {
      for (let i = 0; i < 60; i++) {
        for (const symbol of ["AAPL", "MSFT", "TSLA"]) {
          expected.push(`quote:${await addQuote(config, symbol)}`);
        }
        if (i % 4 === 0) expected.push(`alert:${await addAlert(config, "AAPL")}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      producing = false;
    })();
    await first;
    while (producing || received.length < expected.length) {
      await connectOnce();
      if (connections > 200) break;
    }
    await producer;
    assert.ok(connections >= 5, `only ${connections} connections`);
    assert.equal(new Set(received).size, received.length, "an event was delivered twice");
    // Each stream arrives in its own order; a quote and an alert written in the
    // same millisecond may be merged either way, as their ids do not order them.
    for (const kind of ["quote:", "alert:"]) {
      assert.deepEqual(
        received.filter((key) => key.startsWith(kind)),
        expected.filter((key) => key.startsWith(kind)),
      );
    }
    assert.equal(received.length, expected.length);
  } finally {
    await closeLive();
    await server.close();
  }
});

Deno.test("a client resuming from far behind catches up from Redis in order, then goes live", async () => {
  await fresh();
  const { config, deps } = setup();
  const expected: string[] = [];
  // More than one catch-up page of quotes, and alerts interleaved.
  for (let i = 0; i < 1300; i++) {
    expected.push(`quote:${await addQuote(config, i % 2 ? "AAPL" : "MSFT")}`);
    if (i % 100 === 0) expected.push(`alert:${await addAlert(config, "AAPL")}`);
  }
  const app = createLiveApp(deps);
  const response = await app.request("/live?since=0-0,0-0");
  const reader = new SseReader(response.body!);
  try {
    for (let i = 0; i < 5; i++) {
      expected.push(`quote:${await addQuote(config, "AAPL")}`);
    }
    assert.ok(
      await reader.readUntil(() => reader.events.length >= expected.length, { timeoutMs: 10000 }),
    );
    await reader.readUntil(() => false, { timeoutMs: 100 });
    // Each stream in its order; across the two, order is by time (ids of one ms may tie).
    const got = keysOf(reader);
    assert.equal(got.length, expected.length);
    for (const kind of ["quote:", "alert:"]) {
      assert.deepEqual(
        got.filter((k) => k.startsWith(kind)),
        expected.filter((k) => k.startsWith(kind)),
      );
    }
    const times = got.map((k) => Number(k.split(":")[1].split("-")[0]));
    assert.ok(times.every((t, i) => i === 0 || t >= times[i - 1]), "events out of time order");
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("a client too slow for its queue catches up from Redis without a gap", async () => {
  await fresh();
  const { config, deps } = setup();
  const app = createLiveApp(deps);
  const response = await app.request("/live");
  // The body is not read yet, so the server's writes wait and the queue overflows.
  const client = redis.client();
  const ids: string[] = [];
  for (let batch = 0; batch < 12; batch++) {
    const pipeline = client.pipeline();
    for (let i = 0; i < 1000; i++) {
      clock += 1;
      pipeline.xadd(
        config.streamKey,
        "*",
        ...encodeQuote({
          symbol: "AAPL",
          price: 100,
          volume: 1,
          timestamp: clock / 1000,
          datetime: new Date(clock).toISOString(),
        }),
      );
    }
    for (const [error, id] of (await pipeline.exec())!) {
      assert.equal(error, null);
      ids.push(`quote:${id}`);
    }
  }
  // Let the shared reader fan all of them out before the client reads anything.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const reader = new SseReader(response.body!);
  try {
    assert.ok(
      await reader.readUntil(() => reader.events.length >= ids.length, { timeoutMs: 20000 }),
    );
    await reader.readUntil(() => false, { timeoutMs: 100 });
    assert.equal(reader.events.length, ids.length);
    assert.deepEqual(keysOf(reader), ids);
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("many live clients share one Redis reader, which stops when the last one leaves", async () => {
  await fresh();
  const { config, deps } = setup();
  const app = createLiveApp(deps);
  const readers: SseReader[] = [];
  try {
    for (const symbols of ["AAPL", "MSFT", "AAPL,MSFT", "", "TSLA"]) {
      const response = await app.request(`/live?symbols=${symbols}`);
      readers.push(new SseReader(response.body!));
    }
    assert.equal(liveReaders(), 1);
    await waitFor(async () => (await liveConnections()) === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await liveConnections(), 1);
    await addQuote(config, "AAPL");
    for (const [i, reader] of readers.entries()) {
      const wanted = i === 1 || i === 4 ? 0 : 1;
      await reader.readUntil(() => reader.events.length >= 1, {
        timeoutMs: wanted ? 3000 : 200,
      });
      assert.equal(reader.events.length, wanted, `client ${i}`);
    }
    for (const reader of readers) await reader.cancel();
    await waitFor(() => liveReaders() === 0);
    await closeLive();
    await waitFor(async () => (await liveConnections()) === 0);
  } finally {
    for (const reader of readers) await reader.cancel();
    await closeLive();
  }
});

Deno.test("a live connection ends by itself after LIVE_MAX_MS with a retry hint and its cursor", async () => {
  await fresh();
  const { config, deps } = setup({ LIVE_MAX_MS: "400" });
  const app = createLiveApp(deps);
  const started = Date.now();
  const response = await app.request("/live?symbols=MSFT");
  const reader = new SseReader(response.body!);
  try {
    const id = await addQuote(config, "AAPL");
    assert.ok(await reader.readUntil(() => reader.done, { timeoutMs: 3000 }));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 350 && elapsed < 2500, `ended after ${elapsed} ms`);
    // Only the final "end" event: the AAPL quote is filtered out.
    assert.deepEqual(reader.events.map((e) => e.event), ["end"]);
    assert.match(reader.json<{ reason: string }>("end")[0].reason, /LIVE_MAX_MS reached/);
    assert.match(reader.text, /id: [\d-]+,[\d-]+\nretry: 500\n\n$/);
    // The filtered AAPL quote is behind the final cursor, so a resume skips it.
    assert.equal(reader.lastId, `${id},0-0`);
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("past LIVE_MAX_CLIENTS the live feed answers 503", async () => {
  await fresh();
  const { deps } = setup({ LIVE_MAX_CLIENTS: "2" });
  const server = serve(createLiveApp(deps));
  const readers: SseReader[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${server.url}/live`);
      assert.equal(response.status, 200);
      readers.push(new SseReader(response.body!));
    }
    const refused = await fetch(`${server.url}/live`);
    assert.equal(refused.status, 503);
    assert.match((await refused.json()).error, /LIVE_MAX_CLIENTS is 2/);
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/ws`);
    const failed = await new Promise<boolean>((resolve) => {
      ws.onerror = () => resolve(true);
      ws.onopen = () => resolve(false);
    });
    assert.ok(failed, "the WebSocket upgrade must be refused");
    if (ws.readyState !== WebSocket.CLOSED) {
      await new Promise((resolve) => ws.onclose = resolve);
    }
    // A slot frees when a client leaves.
    await readers.pop()!.cancel();
    await waitFor(async () => {
      const response = await fetch(`${server.url}/live`);
      if (response.status !== 200) {
        await response.body?.cancel();
        return false;
      }
      readers.push(new SseReader(response.body!));
      return true;
    });
  } finally {
    for (const reader of readers) await reader.cancel();
    await closeLive();
    await server.close();
  }
});

Deno.test("the WebSocket subscription filters symbols and resumes from since", async () => {
  await fresh();
  const { config, deps } = setup();
  const server = serve(createLiveApp(deps));
  const url = `${server.url.replace("http", "ws")}/ws`;
  try {
    const first = await openWs(url);
    first.ws.send(JSON.stringify({ subscribe: ["AAPL", "TSLA"] }));
    await first.until(() => first.of("subscribed").length === 1);
    assert.deepEqual(first.of("subscribed")[0].symbols, ["AAPL", "TSLA"]);
    const before: string[] = [];
    for (const symbol of ["AAPL", "MSFT", "TSLA", "MSFT"]) {
      before.push(await addQuote(config, symbol));
    }
    const alert = await addAlert(config, "TSLA");
    await addAlert(config, "MSFT");
    await first.until(() => first.of("quote").length + first.of("alert").length === 3);
    const got = first.messages.filter((m) => m.event === "quote" || m.event === "alert");
    assert.deepEqual(
      got.map((m) => (m.data as { id: string; symbol: string }).symbol),
      ["AAPL", "TSLA", "TSLA"],
    );
    assert.deepEqual(got.map((m) => (m.data as { id: string }).id), [before[0], before[2], alert]);
    const since = got[1].id as string;
    await first.close();

    // While disconnected: more quotes; the resume gets exactly those after `since`.
    const after: string[] = [];
    for (const symbol of ["AAPL", "MSFT", "TSLA"]) {
      after.push(await addQuote(config, symbol));
    }
    const second = await openWs(url);
    second.ws.send(JSON.stringify({ subscribe: ["AAPL", "TSLA"], since }));
    await second.until(() => second.of("quote").length + second.of("alert").length === 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const resumed = second.messages.filter((m) => m.event === "quote" || m.event === "alert");
    assert.deepEqual(
      resumed.map((m) => `${m.event}:${(m.data as { id: string }).id}`),
      [`alert:${alert}`, `quote:${after[0]}`, `quote:${after[2]}`],
    );
    await second.close();
  } finally {
    await closeLive();
    await server.close();
  }
});

Deno.test("a bad WebSocket message gets an error message and the connection stays open", async () => {
  await fresh();
  const { config, deps } = setup();
  const server = serve(createLiveApp(deps));
  try {
    const ws = await openWs(`${server.url.replace("http", "ws")}/ws`);
    const bad = [
      "not json",
      "[1, 2]",
      JSON.stringify({ subscribe: "AAPL" }),
      JSON.stringify({ subscribe: ["aapl"] }),
      JSON.stringify({ subscribe: ["AAPL"], since: "yesterday" }),
      JSON.stringify({ unsubscribe: ["AAPL"] }),
    ];
    for (const message of bad) ws.ws.send(message);
    await ws.until(() => ws.of("error").length === bad.length);
    assert.deepEqual(ws.of("error").map((m) => m.error), [
      "Message is not valid JSON",
      "Message must be a JSON object",
      `Field "subscribe" must be an array of symbols`,
      `Malformed symbol: "aapl": a symbol must match ^[A-Z][A-Z0-9.-]{0,9}$`,
      `Malformed event id: "yesterday": expected "<quoteId>,<alertId>" per partition joined by ";", or one entry id`,
      `Unknown field "unsubscribe": allowed fields are subscribe, since`,
    ]);
    assert.equal(ws.ws.readyState, WebSocket.OPEN);
    ws.ws.send(JSON.stringify({ subscribe: ["MSFT"] }));
    await ws.until(() => ws.of("subscribed").length === 1);
    const id = await addQuote(config, "MSFT");
    await ws.until(() => ws.of("quote").length === 1);
    assert.equal((ws.of("quote")[0].data as { id: string }).id, id);
    await ws.close();
  } finally {
    await closeLive();
    await server.close();
  }
});

Deno.test("a WebSocket ends after LIVE_MAX_MS with its cursor, so the client can resume", async () => {
  await fresh();
  const { config, deps } = setup({ LIVE_MAX_MS: "400" });
  const server = serve(createLiveApp(deps));
  try {
    const ws = await openWs(`${server.url.replace("http", "ws")}/ws`);
    ws.ws.send(JSON.stringify({ subscribe: ["AAPL"] }));
    await ws.until(() => ws.of("subscribed").length === 1);
    const id = await addQuote(config, "AAPL");
    const closed = await ws.closed;
    assert.equal(closed.code, 1000);
    assert.match(closed.reason, /LIVE_MAX_MS/);
    assert.equal((ws.of("quote")[0].data as { id: string }).id, id);
    const end = ws.of("end");
    assert.equal(end.length, 1);
    assert.equal(end[0].id, `${id},0-0`);
  } finally {
    await closeLive();
    await server.close();
  }
});

Deno.test("GET /live answers 503 while Redis is down, and works again once it is back", async () => {
  await fresh();
  const { deps } = setup();
  const app = createLiveApp(deps);
  await redis.kill();
  try {
    const response = await app.request("/live");
    assert.equal(response.status, 503);
    assert.match((await response.json()).error, /Redis is unavailable/);
    assert.equal(liveReaders(), 0);
  } finally {
    await redis.restart();
  }
  await waitFor(async () => {
    const response = await app.request("/live");
    if (response.status !== 200) {
      await response.body?.cancel();
      return false;
    }
    await response.body?.cancel();
    return true;
  });
  await closeLive();
});

Deno.test("GET /ws without an upgrade answers 426", async () => {
  await fresh();
  const { deps } = setup();
  const response = await createLiveApp(deps).request("/ws");
  assert.equal(response.status, 426);
  assert.equal(response.headers.get("upgrade"), "websocket");
});

Deno.test("live tests clean up their Redis server", async () => {
  await closeLive();
  await redis.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});
