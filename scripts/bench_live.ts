/**
 * Benchmark of the live feed: latency from XADD to the SSE event reaching a
 * client, at a steady quote rate.
 *
 * Starts its own redis-server on a free port, serves the live app in a
 * child process (so clients and producer do not share its event loop),
 * connects N SSE clients, XADDs quotes at the given rate for the given time
 * and prints p50/p95/p99 of the latency and whether p99 < 20 ms. Each
 * quote's `timestamp` carries its send time (Unix seconds with microsecond
 * precision), which the feed passes through unchanged; the client subtracts
 * it from its receive time. Everything runs on 127.0.0.1 and stops by itself.
 *
 * Usage: `deno task bench:live [--clients 20] [--rate 2000] [--seconds 10]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { closeLive, createLiveApp } from "../functions/live.ts";
import { loadConfig } from "../shared/config.ts";
import { defaultDeps } from "../shared/http.ts";
import { encodeQuote } from "../shared/market/quotes.ts";
import { closeAllRedis } from "../shared/redis.ts";

const SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "META", "NVDA", "NFLX"];
const WARMUP_MS = 1000;
const TARGET_P99_MS = 20;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Child mode: serve the live app for `redisUrl`, print the port, and on
 * stdin's end print the latencies measured as the events of connection
 * number `watch` leave the app (its response body is watched on its way to
 * the socket). The parent watches its last client: the hub serves
 * subscribers in joining order, so that one waits longest.
 */
async function serveLive(redisUrl: string, watchNumber: number): Promise<void> {
  const config = loadConfig({
    REDIS_URL: redisUrl,
    CRON_ENABLED: "false",
    LIVE_MAX_MS: "600000",
    LIVE_MAX_CLIENTS: "10000",
  });
  const app = createLiveApp(defaultDeps(config));
  // Pairs of [send time, latency] in ms; the parent drops the warm-up.
  const leaving: [number, number][] = [];
  let connections = 0;
  function watch(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const decoder = new TextDecoder();
    return body.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          const at = nowMs();
          for (const match of decoder.decode(chunk, { stream: true }).matchAll(TIMESTAMPS)) {
            const sent = Number(match[1]) * 1000;
            leaving.push([sent, at - sent]);
          }
          controller.enqueue(chunk);
        },
      }),
    );
  }
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen({ port }) {
      console.log(JSON.stringify({ port }));
    },
  }, async function handle(request) {
    const response = await app.fetch(request);
    if (response.body === null || response.status !== 200) return response;
    connections += 1;
    if (connections !== watchNumber) return response;
    return new Response(watch(response.body), response);
  });
  // The parent closes stdin to stop the child.
  for await (const _ of Deno.stdin.readable) {
    // Nothing is sent; the loop ends when stdin closes.
  }
  console.log(JSON.stringify({ leaving }));
  await closeLive();
  await server.shutdown();
  await closeAllRedis();
}

async function startRedisServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--loglevel",
      "warning",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch (error) {
      probe.disconnect();
      if (Date.now() > deadline) {
        throw new Error(`Cannot start redis-server on port ${port}`, { cause: error });
      }
      await sleep(50);
    }
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function startServer(redisUrl: string, watchNumber: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--serve",
      "--redis",
      redisUrl,
      "--watch",
      String(watchNumber),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("The live server exited before listening");
    text += value;
  }
  const { port } = JSON.parse(text.split("\n")[0]);
  text = text.slice(text.indexOf("\n") + 1);
  return {
    url: `http://127.0.0.1:${port}`,
    /** Stops the server; resolves to its [send time, latency] samples. */
    async stop(): Promise<[number, number][]> {
      await child.stdin.close();
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      await child.status;
      clearTimeout(timer);
      const line = text.split("\n").find((l) => l.startsWith('{"leaving"'));
      return line === undefined ? [] : JSON.parse(line).leaving;
    },
  };
}

interface Client {
  received: number;
  done: Promise<void>;
  abort(): void;
}

const TIMESTAMP = /"timestamp":([0-9.]+)/;
const TIMESTAMPS = /"timestamp":([0-9.]+)/g;

async function connectClient(
  url: string,
  { startedAt, samples }: { startedAt: number; samples: number[] },
): Promise<Client> {
  const controller = new AbortController();
  const response = await fetch(`${url}/live`, { signal: controller.signal });
  if (response.status !== 200) throw new Error(`GET /live answered ${response.status}`);
  const client: Client = { received: 0, done: Promise.resolve(), abort: () => controller.abort() };
  client.done = (async () => {
    let buffer = "";
    try {
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        const at = nowMs();
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.startsWith("event: quote")) continue;
          client.received += 1;
          const match = TIMESTAMP.exec(block);
          if (match === null) continue;
          const sent = Number(match[1]) * 1000;
          if (sent - startedAt >= WARMUP_MS) samples.push(at - sent);
        }
      }
    } catch {
      // Aborted at the end of the run.
    }
  })();
  return client;
}

/** Latency percentiles in ms. */
export interface LatencySummary {
  /** Samples after the warm-up. */
  samples: number;
  /** Median. */
  p50: number;
  /** 95th percentile. */
  p95: number;
  /** 99th percentile. */
  p99: number;
  /** Largest. */
  max: number;
}

function summarize(latencies: number[]): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  return {
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

function describe(s: LatencySummary): string {
  const f = (n: number) => n.toFixed(2);
  return `p50 ${f(s.p50)} ms, p95 ${f(s.p95)} ms, p99 ${f(s.p99)} ms, max ${f(s.max)} ms ` +
    `(${s.samples} samples)`;
}

/** What {@linkcode runBench} measured. */
export interface BenchResult {
  /** XADD to the event leaving the server (last client's connection). */
  server: LatencySummary;
  /** XADD to the event parsed by a client (every client). */
  client: LatencySummary;
  /** Quote events the clients received. */
  delivered: number;
  /** Quote events they should have received. */
  expected: number;
}

/** Options of {@linkcode runBench}. */
export interface BenchOptions {
  /**
   * SSE clients connected, 1 to 1000.
   * @default {20}
   */
  clients?: number;
  /**
   * Quotes added per second, 1 to 20000.
   * @default {2000}
   */
  rate?: number;
  /**
   * How long quotes are added, in seconds, 1 to 60.
   * @default {10}
   */
  seconds?: number;
}

const BENCH_LIMITS = { clients: 1000, rate: 20000, seconds: 60 } as const;

/** Runs the benchmark and prints its figures. */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const { clients: clientCount = 20, rate = 2000, seconds = 10 } = options;
  const given = { clients: clientCount, rate, seconds };
  for (const name of ["clients", "rate", "seconds"] as const) {
    const value = given[name];
    if (!Number.isInteger(value) || value < 1 || value > BENCH_LIMITS[name]) {
      throw new RangeError(
        `Cannot run the benchmark as '${name}' must be an integer from 1 to ${
          BENCH_LIMITS[name]
        }: current value is ${value}`,
      );
    }
  }
  const redisServer = await startRedisServer();
  const server = await startServer(redisServer.url, clientCount);
  const producer = new Redis(redisServer.url, { enableAutoPipelining: false });
  producer.on("error", () => {});
  const samples: number[] = [];
  const clients: Client[] = [];
  let sent = 0;
  let leaving: [number, number][] = [];
  const startedAt = nowMs();
  const total = rate * seconds;
  try {
    for (let i = 0; i < clientCount; i++) {
      clients.push(await connectClient(server.url, { startedAt, samples }));
    }
    const begin = nowMs();
    // Sends whatever the rate allows by now every few ms, each XADD stamped as it goes out.
    while (sent < total) {
      const due = Math.min(total, Math.floor(((nowMs() - begin) / 1000) * rate));
      if (due > sent) {
        const pipeline = producer.pipeline();
        for (; sent < due; sent++) {
          const at = nowMs();
          pipeline.xadd(
            "stock_quotes",
            "*",
            ...encodeQuote({
              symbol: SYMBOLS[sent % SYMBOLS.length],
              price: 100 + (sent % 100) / 10,
              volume: 100,
              timestamp: at / 1000,
              datetime: new Date(at).toISOString(),
            }),
          );
        }
        await pipeline.exec();
      }
      await sleep(2);
    }
    // Let the last events arrive.
    const deadline = Date.now() + 5000;
    while (clients.some((c) => c.received < total) && Date.now() < deadline) await sleep(20);
  } finally {
    for (const client of clients) client.abort();
    await Promise.all(clients.map((c) => c.done));
    producer.disconnect();
    leaving = await server.stop();
    await redisServer.stop();
  }
  const result: BenchResult = {
    server: summarize(
      leaving.filter(([sentAt]) => sentAt - startedAt >= WARMUP_MS).map(([, ms]) => ms),
    ),
    client: summarize(samples),
    delivered: clients.reduce((sum, c) => sum + c.received, 0),
    expected: total * clientCount,
  };
  console.log(
    `live feed: ${clientCount} SSE clients, ${rate} quotes/s for ${seconds} s (${total} quotes), ` +
      `${WARMUP_MS} ms warm-up excluded`,
  );
  console.log(
    `delivered: ${result.delivered}/${result.expected} quote events (${
      (100 * result.delivered / result.expected).toFixed(1)
    }%)`,
  );
  console.log(`XADD -> event leaving the server: ${describe(result.server)}`);
  console.log(`XADD -> event parsed by a client: ${describe(result.client)}`);
  console.log(
    `p99 < ${TARGET_P99_MS} ms (leaving the server): ${
      result.server.p99 < TARGET_P99_MS ? "yes" : "NO"
    }`,
  );
  return result;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      serve: { type: "boolean", default: false },
      redis: { type: "string" },
      watch: { type: "string", default: "1" },
      clients: { type: "string", default: "20" },
      rate: { type: "string", default: "2000" },
      seconds: { type: "string", default: "10" },
    },
  });
  if (values.serve) {
    await serveLive(values.redis!, Number(values.watch));
  } else {
    const clients = Number(values.clients);
    const rate = Number(values.rate);
    const seconds = Number(values.seconds);
    if (![clients, rate, seconds].every((n) => Number.isInteger(n) && n > 0)) {
      throw new RangeError("--clients, --rate and --seconds must be positive integers");
    }
    // Bounded: at most 1000 clients, 20000 quotes/s and 60 s, all on loopback.
    await runBench({
      clients: Math.min(clients, BENCH_LIMITS.clients),
      rate: Math.min(rate, BENCH_LIMITS.rate),
      seconds: Math.min(seconds, BENCH_LIMITS.seconds),
    });
  }
}
