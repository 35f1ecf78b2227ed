/**
 * `deno task bench`: throughput and memory figures of the queue against a
 * private redis-server it starts itself: emit rate, drain rate per group,
 * per-request latency of a small emit and a one-chunk drain, and Redis
 * memory per retained entry. Prints the figures; asserts nothing.
 *
 * @module
 */

import { drainOne } from "../functions/drain.ts";
import { emitQuotes } from "../functions/emit_quotes.ts";
import { createApp } from "../shared/app.ts";
import { loadConfig } from "../shared/config.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import type { Deps } from "../shared/http.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { createRandom } from "../shared/market/simulator.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-bench-" });
  const server = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  const redis = createRedis(url);
  try {
    for (let i = 0; i < 50; i++) {
      if (await redis.ping().catch(() => "") === "PONG") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const config = loadConfig({
      REDIS_URL: url,
      CRON_ENABLED: "false",
      STREAM_MAXLEN: "20000",
      DATABASE_PATH: `${dir}/quotes.db`,
    });
    const deps: Deps = { config, redis: () => redis, now: Date.now, random: createRandom(7) };
    const symbols = config.symbols.length;

    const batches = 25;
    const ticks = 500;
    let started = performance.now();
    for (let i = 0; i < batches; i++) await emitQuotes(deps, { ticks });
    let seconds = (performance.now() - started) / 1000;
    const emitted = batches * ticks * symbols;
    console.log(
      `emit: ${emitted} quotes in ${batches} batches of ${ticks * symbols}: ` +
        `${Math.round(emitted / seconds)} quotes/s`,
    );

    for (const group of GROUP_NAMES) {
      started = performance.now();
      let acked = 0;
      for (;;) {
        const result = await drainOne(deps, group, { count: 1000, budgetMs: 55000 });
        acked += result.acked;
        if (!result.more) break;
      }
      seconds = (performance.now() - started) / 1000;
      console.log(`drain ${group}: ${acked} entries: ${Math.round(acked / seconds)} entries/s`);
    }

    const memory = String(await redis.info("memory")).match(/used_memory:(\d+)/);
    const length = await redis.xlen(config.streamKey);
    console.log(
      `stream after drains: ${length} entries (STREAM_MAXLEN ${config.streamMaxlen}), ` +
        `Redis used_memory ${(Number(memory?.[1]) / 1048576).toFixed(1)} MiB`,
    );

    const app = createApp(deps);
    const emitTimes: number[] = [];
    const drainTimes: number[] = [];
    for (let i = 0; i < 300; i++) {
      let t = performance.now();
      const res = await app.request("/emit-quotes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"ticks":1}',
      });
      await res.body?.cancel();
      emitTimes.push(performance.now() - t);
      t = performance.now();
      const drained = await app.request("/drain/price-alerts", {
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      await drained.body?.cancel();
      drainTimes.push(performance.now() - t);
    }
    emitTimes.sort((a, b) => a - b);
    drainTimes.sort((a, b) => a - b);
    console.log(
      `POST /emit-quotes (1 tick, ${symbols} quotes): p50 ${
        percentile(emitTimes, 50).toFixed(2)
      } ms, ` +
        `p99 ${percentile(emitTimes, 99).toFixed(2)} ms`,
    );
    console.log(
      `POST /drain/price-alerts (one chunk): p50 ${percentile(drainTimes, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(drainTimes, 99).toFixed(2)} ms`,
    );
  } finally {
    await closeRedis(redis);
    server.kill("SIGTERM");
    await server.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
