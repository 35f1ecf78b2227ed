import assert from "node:assert/strict";
import { closeLive, createLiveApp } from "../functions/live.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { startRedis } from "./_redis_server.ts";
import { SseReader } from "./_sse.ts";
import { serve, siteConfig, siteDeps } from "./_site.ts";

const decoder = new TextDecoder();

/** Sends a raw HTTP/1.1 request and returns the status line and body of the answer. */
async function rawRequest(port: number, head: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${head}\r\n\r\n`));
    let text = "";
    const buffer = new Uint8Array(16384);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
      const headEnd = text.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(text);
      if (headEnd !== -1 && length && text.length >= headEnd + 4 + Number(length[1])) break;
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    conn.close();
  }
}

const BAD_UPGRADES = [
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade",
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short",
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8",
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade",
  "GET /ws HTTP/1.1\r\nHost: x",
];

Deno.test("bad WebSocket upgrades answer 400 or 426 and never use up the live feed's slots", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-slots-" });
  const config = siteConfig(redis.url, dir, { LIVE_MAX_CLIENTS: "3" });
  const store = createQuoteStore(config);
  resetGroupCache();
  const server = serve(
    createLiveApp(siteDeps(config, { redis: redis.client(), quoteStore: store })),
  );
  try {
    for (let round = 0; round < 4; round++) {
      for (const head of BAD_UPGRADES) {
        const { status, body } = await rawRequest(server.port, head);
        assert.ok(status === 400 || status === 426, `${status} for ${head}`);
        assert.match(JSON.parse(body).error, /^[A-Z]/);
      }
    }
    // Every slot is still free: three feeds at once, and a WebSocket after them fails with 503.
    const feeds: SseReader[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.url}/live`);
      assert.equal(res.status, 200);
      feeds.push(new SseReader(res.body!));
    }
    const full = await fetch(`${server.url}/live`);
    assert.equal(full.status, 503);
    await full.body?.cancel();
    // Clients that go away abruptly give their slot back.
    for (const feed of feeds) await feed.cancel();
    let ws: WebSocket | undefined;
    for (let attempt = 0; attempt < 50 && ws === undefined; attempt++) {
      const candidate = new WebSocket(`${server.url.replace("http", "ws")}/ws`);
      const opened = await new Promise<boolean>((resolve) => {
        candidate.onopen = () => resolve(true);
        candidate.onerror = () => resolve(false);
      });
      if (opened) ws = candidate;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(ws !== undefined, "a WebSocket connects once the slots are back");
    const closed = new Promise((resolve) => ws!.onclose = resolve);
    ws.close();
    await closed;
  } finally {
    await closeLive();
    await server.close();
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("closeLive ends an SSE feed with a final end event carrying its cursor and the reason", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-slots-" });
  const config = siteConfig(redis.url, dir);
  const store = createQuoteStore(config);
  resetGroupCache();
  const server = serve(
    createLiveApp(siteDeps(config, { redis: redis.client(), quoteStore: store })),
  );
  try {
    const res = await fetch(`${server.url}/live`);
    const reader = new SseReader(res.body!);
    await reader.readUntil(() => reader.retry !== undefined);
    await closeLive();
    assert.ok(await reader.readUntil(() => reader.done || reader.json("end").length > 0));
    const [end] = reader.json<{ id: string; reason: string }>("end");
    assert.match(end.reason, /shutting down/);
    assert.match(end.id, /^[\d-]+,[\d-]+$/);
    await reader.cancel();
  } finally {
    await closeLive();
    await server.close();
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
