/**
 * Private: the live-latency scenario. The app serves `/live` in a child
 * process; N SSE clients connect from here; quotes are XADDed at a steady
 * rate; each client subtracts the entry id's time (Redis's clock at the
 * XADD, milliseconds) from its receive time.
 * The first second is a warm-up and not counted.
 *
 * @module
 */

import { encodeQuote } from "../../shared/market/quotes.ts";
import { closeRedis, createRedis } from "../../shared/redis.ts";
import { type BenchContext, boundRow, percentile, type Row, sleep } from "./_common.ts";
import { startServeChild } from "./_http.ts";

const SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "META", "NVDA", "NFLX"];
const WARMUP_MS = 1000;
const P99_BELOW_MS = 20;
// The entry id's ms part is Redis's clock at the XADD (same host); `timestamp` has whole seconds.
const ENTRY_ID = /"id":"(\d+)-/;

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Client {
  received: number;
  done: Promise<void>;
  abort(): void;
}

async function connectClient(
  url: string,
  sink: { startedAt: number; samples: number[] },
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
          const match = ENTRY_ID.exec(block);
          if (match === null) continue;
          const sent = Number(match[1]);
          if (sent - sink.startedAt >= WARMUP_MS) sink.samples.push(at - sent);
        }
      }
    } catch {
      // Aborted at the end of the run.
    }
  })();
  return client;
}

/** live-latency: XADD to the SSE event at the client, p50 and p99, 2,000 quotes/s. */
export async function liveLatencyRows(ctx: BenchContext): Promise<Row[]> {
  const clientCount = ctx.quick ? 5 : 20;
  const seconds = ctx.quick ? 3 : 20;
  const rate = 2000;
  await ctx.redis.flushall();
  const server = await startServeChild("app", ctx.redisUrl);
  const producer = createRedis(ctx.redisUrl);
  const samples: number[] = [];
  const clients: Client[] = [];
  const total = rate * seconds;
  let sent = 0;
  ctx.progress(`live-latency: ${clientCount} clients, ${rate} quotes/s for ${seconds} s`);
  const startedAt = nowMs();
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
    const deadline = Date.now() + 5000;
    while (clients.some((c) => c.received < total) && Date.now() < deadline) await sleep(20);
  } finally {
    for (const client of clients) client.abort();
    await Promise.all(clients.map((c) => c.done));
    await closeRedis(producer).catch(() => producer.disconnect());
    await server.stop();
  }
  await ctx.redis.flushall();
  const sorted = Float64Array.from(samples).sort();
  const delivered = clients.reduce((sum, c) => sum + c.received, 0);
  const share = (100 * delivered / (total * clientCount)).toFixed(1);
  return [
    boundRow("live-latency/p50", { figure: percentile(sorted, 50), unit: "ms" }),
    boundRow("live-latency/p99", {
      figure: percentile(sorted, 99),
      unit: "ms",
      below: P99_BELOW_MS,
      note: `${clientCount} SSE clients, ${rate} quotes/s for ${seconds} s, ${share}% of ` +
        `events delivered, ${sorted.length} samples after a ${WARMUP_MS} ms warm-up`,
    }),
  ];
}
