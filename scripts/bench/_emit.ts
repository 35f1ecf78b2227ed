/**
 * Private: the emit scenarios. emit-module times `emitQuotes` (simulator,
 * guard, latest index, counters, lag-safe trim, one atomic script) against a
 * raw ioredis pipeline XADDing the same number of entries; emit-http does
 * the same through `POST /emit-quotes` on a real socket. Rounds alternate
 * which side goes first; ratios are per round, then the median.
 *
 * @module
 */

import { emitQuotes } from "../../functions/emit_quotes.ts";
import { createApp } from "../../shared/app.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  ratioRow,
  rawPipeline,
  type Row,
  simulatedEntries,
  timed,
} from "./_common.ts";

const TICKS = 1000;

/** Batches per side and round. */
function batchesOf(ctx: BenchContext): number {
  return ctx.quick ? 2 : 5;
}

/** Times `batches` calls of `fn`, as entries per second. */
async function rateOf(
  entries: number,
  batches: number,
  fn: () => Promise<unknown>,
): Promise<number> {
  const ms = await timed(async () => {
    for (let i = 0; i < batches; i++) await fn();
  });
  return (entries * batches) / (ms / 1000);
}

/** Runs `ours` and `raw` alternately for the context's rounds; flushes Redis between rounds. */
async function alternate(
  ctx: BenchContext,
  sides: { ours: () => Promise<number>; raw: () => Promise<number> },
): Promise<{ figures: number[]; baselines: number[] }> {
  const figures: number[] = [];
  const baselines: number[] = [];
  // One unmeasured warm-up of each side (JIT, script load, connection).
  await sides.ours();
  await sides.raw();
  for (let round = 0; round < ctx.rounds; round++) {
    await ctx.redis.flushall();
    if (round % 2 === 0) {
      figures.push(await sides.ours());
      baselines.push(await sides.raw());
    } else {
      baselines.push(await sides.raw());
      figures.push(await sides.ours());
    }
  }
  await ctx.redis.flushall();
  return { figures, baselines };
}

/** emit-module: `emitQuotes` with 1,000 ticks x 8 symbols vs the raw pipeline. */
export async function emitModuleRows(ctx: BenchContext): Promise<Row[]> {
  const config = benchConfig(ctx, { STREAM_KEY: "bench:emit" });
  const deps = benchDeps(ctx, config);
  const entries = simulatedEntries(TICKS, config.symbols);
  const batches = batchesOf(ctx);
  ctx.progress(`emit-module: ${ctx.rounds} rounds of ${batches} x ${entries.length} quotes`);
  const measured = await alternate(ctx, {
    ours: () => rateOf(entries.length, batches, () => emitQuotes(deps, { ticks: TICKS })),
    raw: () => rateOf(entries.length, batches, () => rawPipeline(ctx.redis, "bench:raw", entries)),
  });
  return [ratioRow("emit-module", { ...measured, unit: "quotes/s", atLeast: 1.0 })];
}

/** emit-http: `POST /emit-quotes` (1,000 ticks) over a socket vs the raw pipeline. */
export async function emitHttpRows(ctx: BenchContext): Promise<Row[]> {
  const config = benchConfig(ctx, { STREAM_KEY: "bench:emit" });
  const deps = benchDeps(ctx, config);
  const app = createApp(deps);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}/emit-quotes`;
  const body = JSON.stringify({ ticks: TICKS });
  const entries = simulatedEntries(TICKS, config.symbols);
  const batches = batchesOf(ctx);
  async function post(): Promise<void> {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`POST /emit-quotes answered ${response.status}: ${text}`);
    }
  }
  ctx.progress(`emit-http: ${ctx.rounds} rounds of ${batches} x ${entries.length} quotes`);
  try {
    const measured = await alternate(ctx, {
      ours: () => rateOf(entries.length, batches, post),
      raw: () =>
        rateOf(entries.length, batches, () => rawPipeline(ctx.redis, "bench:raw", entries)),
    });
    return [ratioRow("emit-http", { ...measured, unit: "quotes/s", atLeast: 1.0 })];
  } finally {
    await server.shutdown();
  }
}
