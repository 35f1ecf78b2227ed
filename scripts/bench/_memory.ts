/**
 * Private: the memory scenario. Bytes per quote entry come from MEMORY
 * USAGE of a stream of simulated quotes. The soak then runs the app as its
 * crons would: 2,000 quotes/s (25 ticks every 100 ms), a budgeted drain of
 * every group each second, lag-safe trimming at STREAM_MAXLEN; it samples
 * Redis used_memory and this process's RSS every second.
 *
 * @module
 */

import { command } from "../../shared/queue/client.ts";
import { drainOne } from "../../functions/drain.ts";
import { emitQuotes } from "../../functions/emit_quotes.ts";
import { GROUPS } from "../../shared/groups/registry.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  median,
  rawPipeline,
  type Row,
  simulatedEntries,
  sleep,
} from "./_common.ts";

const MAXLEN = 20000;
const ALERTS_MAXLEN = 10000;
const RSS_AT_MOST = 1.25;
const MIB = 1048576;

async function usedMemory(ctx: BenchContext): Promise<number> {
  const info = String(await ctx.redis.info("memory"));
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Redis bytes per simulated quote entry, from MEMORY USAGE of a stream of `n`. */
async function bytesPerEntry(ctx: BenchContext, n: number): Promise<number> {
  const entries = simulatedEntries(1250, benchConfig(ctx).symbols, 9);
  for (let added = 0; added < n; added += entries.length) {
    await rawPipeline(
      ctx.redis,
      "bench:memory",
      entries.slice(0, Math.min(entries.length, n - added)),
    );
  }
  const bytes = Number(await command(ctx.redis, "MEMORY", "USAGE", "bench:memory", "SAMPLES", "0"));
  await ctx.redis.del("bench:memory");
  return bytes / n;
}

/** Rows memory/bytes-per-entry, memory/used (under the stated bound) and memory/rss. */
export async function memoryRows(ctx: BenchContext): Promise<Row[]> {
  await ctx.redis.flushall();
  const perEntry = await bytesPerEntry(ctx, ctx.quick ? 20000 : 100000);
  const seconds = ctx.quick ? 8 : 300;
  const config = benchConfig(ctx, {
    STREAM_KEY: "bench:soak",
    STREAM_MAXLEN: String(MAXLEN),
    ALERTS_MAXLEN: String(ALERTS_MAXLEN),
    DATABASE_PATH: `${ctx.dir}/soak.db`,
  });
  const deps = benchDeps(ctx, config);
  const before = await usedMemory(ctx);
  // The stream may exceed MAXLEN by what one drain interval adds plus a trim step, twice
  // over for slack; alerts are bounded by ALERTS_MAXLEN at under 1 KiB each.
  const bound = before + 2 * (MAXLEN + 2000 + 1000) * perEntry + ALERTS_MAXLEN * 1024 + 4 * MIB;
  ctx.progress(
    `memory: soak of ${seconds} s at 2000 quotes/s, bound ${(bound / MIB).toFixed(1)} MiB`,
  );
  // One emit first creates the groups, so the drains and the emits do not race to create them.
  let emitted = (await emitQuotes(deps, { ticks: 25 })).emitted;
  const end = performance.now() + seconds * 1000;
  const used: number[] = [];
  const rss: number[] = [];
  async function emitLoop(): Promise<void> {
    for (let slot = 0; performance.now() < end; slot++) {
      emitted += (await emitQuotes(deps, { ticks: 25 })).emitted;
      const next = end - seconds * 1000 + (slot + 1) * 100;
      if (next > performance.now()) await sleep(next - performance.now());
    }
  }
  async function drainLoop(): Promise<void> {
    while (performance.now() < end) {
      const started = performance.now();
      for (const g of GROUPS) await drainOne(deps, g.group, { count: 1000, budgetMs: 500 });
      await sleep(Math.max(0, 1000 - (performance.now() - started)));
    }
  }
  async function sampleLoop(): Promise<void> {
    while (performance.now() < end) {
      await sleep(1000);
      used.push(await usedMemory(ctx));
      rss.push(Deno.memoryUsage().rss);
    }
  }
  await Promise.all([emitLoop(), drainLoop(), sampleLoop()]);
  const length = await ctx.redis.xlen(config.streamKey);
  await ctx.redis.flushall();
  const peak = Math.max(...used);
  const quarter = Math.max(1, Math.floor(rss.length / 4));
  const early = median(rss.slice(quarter, 2 * quarter));
  const late = median(rss.slice(-quarter));
  return [
    {
      scenario: "memory/bytes-per-entry",
      figure: perEntry,
      unit: "bytes",
      baseline: null,
      ratio: null,
      target: "",
      pass: null,
    },
    {
      scenario: "memory/used-peak",
      figure: peak / MIB,
      unit: "MiB",
      baseline: before / MIB,
      ratio: peak / before,
      target: `< ${(bound / MIB).toFixed(1)} MiB`,
      pass: peak < bound,
      note: `${seconds} s soak, ${emitted} quotes, STREAM_MAXLEN ${MAXLEN}, stream at ${length} ` +
        `entries at the end; bound = start + 2 x (MAXLEN + 3000) x bytes/entry + ` +
        `${ALERTS_MAXLEN} alerts x 1 KiB + 4 MiB`,
    },
    {
      scenario: "memory/rss",
      figure: late / MIB,
      unit: "MiB",
      baseline: early / MIB,
      ratio: late / early,
      target: `ratio <= ${RSS_AT_MOST}`,
      pass: late / early <= RSS_AT_MOST,
      note: "the benchmark process's RSS: median of the last quarter vs the second quarter",
    },
  ];
}
