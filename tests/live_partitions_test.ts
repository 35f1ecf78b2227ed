import assert from "node:assert/strict";
import { closeLive, createLiveApp, liveReaders } from "../functions/live.ts";
import type { Config } from "../shared/config.ts";
import type { Deps } from "../shared/http.ts";
import { parseCursor } from "../shared/live/mod.ts";
import { partitionOf } from "../shared/partitions.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { addAlert, addQuote, receivedKeys, symbolsByPartition, waitFor } from "./_live_feed.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { readThenDrop, SseReader } from "./_sse.ts";
import { serve, siteConfig, siteDeps } from "./_site.ts";

const redis: TestRedis = await startRedis();
const dir = await Deno.makeTempDir({ prefix: "tickstream-live-partitions-" });
const N = 4;
const SYMBOLS = symbolsByPartition(N);

function setup(): { config: Config; deps: Deps } {
  const config = siteConfig(redis.url, dir, { STREAM_PARTITIONS: String(N) });
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

/** Sort key of an entry id, for time order across streams. */
function idNumber(id: string): [number, number] {
  const [ms, seq = "0"] = id.split("-");
  return [Number(ms), Number(seq)];
}

function compareIds(a: string, b: string): number {
  const [am, as] = idNumber(a);
  const [bm, bs] = idNumber(b);
  return am - bm || as - bs;
}

/** The stream an event key ("kind:symbol:id") came from, as "kind:partition". */
function streamOf(key: string): string {
  const [kind, symbol] = key.split(":");
  return `${kind}:${partitionOf(symbol, N)}`;
}

/** Keys grouped by stream, each in its own order. */
function perStream(keys: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const key of keys) out.set(streamOf(key), [...(out.get(streamOf(key)) ?? []), key]);
  return out;
}

Deno.test("with 4 partitions the feed merges every partition and each event id names all of them", async () => {
  await fresh();
  const { config, deps } = setup();
  const app = createLiveApp(deps);
  const response = await app.request("/live");
  assert.equal(response.status, 200);
  const reader = new SseReader(response.body!);
  try {
    await waitFor(() => liveReaders() === 1);
    const expected: string[] = [];
    const client = redis.client();
    for (const symbols of SYMBOLS) {
      for (const symbol of symbols) {
        expected.push(`quote:${symbol}:${await addQuote(client, config, symbol)}`);
      }
      expected.push(`alert:${symbols[0]}:${await addAlert(client, config, symbols[0])}`);
    }
    assert.ok(await reader.readUntil(() => reader.events.length >= expected.length));
    const received = receivedKeys(reader);
    assert.deepEqual([...received].sort(), [...expected].sort());
    assert.deepEqual(perStream(received), perStream(expected));
    // The last id is the vector of every stream's last entry, partition 0 first.
    const last = parseCursor(reader.lastId)!;
    assert.equal(last.length, 2 * N);
    assert.equal(reader.lastId.split(";").length, N);
    for (let p = 0; p < N; p++) {
      const quotes = expected.filter((k) => streamOf(k) === `quote:${p}`);
      const alerts = expected.filter((k) => streamOf(k) === `alert:${p}`);
      const [qms, qseq] = idNumber(quotes[quotes.length - 1].split(":")[2]);
      const [ams, aseq] = idNumber(alerts[alerts.length - 1].split(":")[2]);
      assert.deepEqual(last[2 * p], { ms: qms, seq: qseq });
      assert.deepEqual(last[2 * p + 1], { ms: ams, seq: aseq });
    }
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("catching up over 4 partitions delivers every entry in id order across pages", async () => {
  await fresh();
  const { config, deps } = setup();
  const client = redis.client();
  const base = 1_700_000_000_000;
  const expected: string[] = [];
  // Over one catch-up page (500) per stream, with the partitions interleaved in time.
  for (let i = 0; i < 2400; i++) {
    const p = i % N;
    const symbol = SYMBOLS[p][i % 2];
    const id = `${base + i}-${i % 3}`;
    expected.push(`quote:${symbol}:${await addQuote(client, config, symbol, { id })}`);
    if (i % 5 === 0) {
      expected.push(`alert:${symbol}:${await addAlert(client, config, symbol, { id })}`);
    }
  }
  const app = createLiveApp(deps);
  const response = await app.request(`/live?since=0`);
  assert.equal(response.status, 200);
  const reader = new SseReader(response.body!);
  try {
    assert.ok(await reader.readUntil(() => reader.events.length >= expected.length));
    const received = receivedKeys(reader);
    assert.equal(received.length, expected.length);
    // Time order across every stream; a quote and an alert with the same id: quote first.
    assert.deepEqual(received, expected);
    const ids = received.map((k) => k.split(":")[2]);
    for (let i = 1; i < ids.length; i++) assert.ok(compareIds(ids[i - 1], ids[i]) <= 0);
    // The feed goes live after the catch-up.
    const live = await addQuote(client, config, SYMBOLS[2][0]);
    assert.ok(await reader.readUntil(() => reader.events.length === expected.length + 1));
    assert.equal(JSON.parse(reader.events[reader.events.length - 1].data).id, live);
  } finally {
    await reader.cancel();
    await closeLive();
  }
});

Deno.test("SSE resume with Last-Event-ID over 4 partitions is gap-free and duplicate-free per partition", async () => {
  await fresh();
  const { config, deps } = setup();
  const server = serve(createLiveApp(deps));
  const client = redis.client();
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
      target: 5 + (connections % 7),
    });
    received.push(...receivedKeys(dropped.reader));
    lastId = dropped.lastId;
  }

  try {
    const first = connectOnce();
    await waitFor(() => liveReaders() === 1);
    const producer = (async () => {
      for (let i = 0; i < 50; i++) {
        for (const symbols of SYMBOLS) {
          const symbol = symbols[i % 2];
          expected.push(`quote:${symbol}:${await addQuote(client, config, symbol)}`);
        }
        if (i % 3 === 0) {
          const symbol = SYMBOLS[i % N][0];
          expected.push(`alert:${symbol}:${await addAlert(client, config, symbol)}`);
        }
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
    // Every stream of every partition arrives whole and in its own order.
    assert.deepEqual(perStream(received), perStream(expected));
    assert.equal(received.length, expected.length);
  } finally {
    await closeLive();
    await server.close();
  }
});

Deno.test("a symbol filter over 4 partitions gets only its symbols and its cursor skips the rest", async () => {
  await fresh();
  const { config, deps } = setup();
  const client = redis.client();
  const wanted = [SYMBOLS[1][0], SYMBOLS[3][1]];
  const app = createLiveApp(deps);
  const response = await app.request(`/live?symbols=${wanted.join(",")}`);
  const reader = new SseReader(response.body!);
  const expected: string[] = [];
  try {
    await waitFor(() => liveReaders() === 1);
    for (let round = 0; round < 3; round++) {
      for (const symbols of SYMBOLS) {
        for (const symbol of symbols) {
          const key = `quote:${symbol}:${await addQuote(client, config, symbol)}`;
          if (wanted.includes(symbol)) expected.push(key);
          const alert = `alert:${symbol}:${await addAlert(client, config, symbol)}`;
          if (wanted.includes(symbol)) expected.push(alert);
        }
      }
    }
    assert.ok(await reader.readUntil(() => reader.events.length >= expected.length));
    await reader.readUntil(() => false, { timeoutMs: 150 });
    assert.deepEqual(perStream(receivedKeys(reader)), perStream(expected));
    assert.equal(reader.events.length, expected.length);
  } finally {
    await reader.cancel();
    await closeLive();
  }
  // Resuming from the last id of the filtered feed repeats nothing, in any partition.
  const again = await app.request(`/live?symbols=${wanted.join(",")}`, {
    headers: { "Last-Event-ID": reader.lastId },
  });
  const resumed = new SseReader(again.body!);
  try {
    const next = await addQuote(client, config, wanted[0]);
    assert.ok(await resumed.readUntil(() => resumed.events.length >= 1));
    await resumed.readUntil(() => false, { timeoutMs: 150 });
    assert.deepEqual(receivedKeys(resumed), [`quote:${wanted[0]}:${next}`]);
  } finally {
    await resumed.cancel();
    await closeLive();
  }
});

Deno.test("since with one id resumes every partition after it; a cursor of another layout is a 400", async () => {
  await fresh();
  const { config, deps } = setup();
  const client = redis.client();
  const base = 1_700_000_000_000;
  const before: string[] = [];
  const after: string[] = [];
  for (let p = 0; p < N; p++) {
    const symbol = SYMBOLS[p][0];
    before.push(await addQuote(client, config, symbol, { id: `${base + p}-0` }));
    after.push(
      `quote:${symbol}:${await addQuote(client, config, symbol, { id: `${base + 10 + p}-0` })}`,
    );
  }
  const app = createLiveApp(deps);
  const response = await app.request(`/live?since=${base + 5}`);
  assert.equal(response.status, 200);
  const reader = new SseReader(response.body!);
  try {
    assert.ok(await reader.readUntil(() => reader.events.length >= N));
    await reader.readUntil(() => false, { timeoutMs: 100 });
    assert.deepEqual(receivedKeys(reader), after);
    // Event ids name each partition, with short ids: "<ms>" for a sequence of 0, "0" for none yet.
    assert.equal(
      reader.lastId,
      Array.from({ length: N }, (_, p) => `${base + 10 + p},${base + 5}`).join(";"),
    );
  } finally {
    await reader.cancel();
    await closeLive();
  }
  for (const since of ["1-0,2-0;3-0,4-0", "1-0,2-0;3-0,4-0;5,6;7,8;9,10"]) {
    const refused = await app.request(`/live?since=${since}`);
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /names \d partitions but the feed has 4/);
  }
  assert.equal(liveReaders(), 0);
});

Deno.test("the WebSocket feed over 4 partitions resumes from a cursor vector", async () => {
  await fresh();
  const { config, deps } = setup();
  const client = redis.client();
  const server = serve(createLiveApp(deps));
  const base = 1_700_000_000_000;
  const cursor: string[] = [];
  const expected: string[] = [];
  for (let p = 0; p < N; p++) {
    const symbol = SYMBOLS[p][1];
    // Partition p's cursor stands after its first p + 1 quotes.
    for (let i = 0; i < 3; i++) {
      const id = await addQuote(client, config, symbol, { id: `${base + 100 * p + i}-1` });
      if (i > p) expected.push(`quote:${symbol}:${id}`);
    }
    cursor.push(`${base + 100 * p + Math.min(p, 2)}-1,0`);
  }
  const since = cursor.join(";");
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/ws`);
  const messages: Record<string, unknown>[] = [];
  const closed = new Promise<void>((resolve) => ws.onclose = () => resolve());
  ws.onmessage = (event) => messages.push(JSON.parse(event.data));
  try {
    await new Promise<void>((resolve) => ws.onopen = () => resolve());
    ws.send(JSON.stringify({ since }));
    await waitFor(() => messages.filter((m) => m.event === "quote").length >= expected.length);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const subscribed = messages.find((m) => m.event === "subscribed")!;
    assert.equal(subscribed.id, since);
    const quotes = messages.filter((m) => m.event === "quote");
    const keys = quotes.map((m) => {
      const data = m.data as { symbol: string; id: string };
      return `quote:${data.symbol}:${data.id}`;
    });
    assert.deepEqual(keys.toSorted(), expected.toSorted());
    assert.equal(parseCursor(String(quotes[quotes.length - 1].id))!.length, 2 * N);
  } finally {
    ws.close();
    await closed;
    await closeLive();
    await server.close();
  }
});

Deno.test("partitioned live tests clean up their Redis server", async () => {
  await closeLive();
  await redis.stop();
  await Deno.remove(dir, { recursive: true });
});
