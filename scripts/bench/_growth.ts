/**
 * Private: the growth scenario. The stream is grown (raw XADDs, already
 * consumed) to 10^3, 10^5 and 10^6 entries; at each size, rounds of a fresh
 * batch drained by price-alerts (one invocation) and `GET /report` are
 * timed. Drain rate and report latency are compared with the smallest size.
 *
 * @module
 */

import { command } from "../../shared/queue/client.ts";
import { drainOne } from "../../functions/drain.ts";
import { createApp } from "../../shared/app.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  median,
  rawPipeline,
  type Row,
  simulatedEntries,
  timed,
} from "./_common.ts";

const GROUP = "price-alerts";
/** Largest size's drain rate must be within 15% of the smallest's; report latency within 2x. */
const DRAIN_AT_LEAST = 0.85;
const REPORT_AT_MOST = 2;

function label(size: number): string {
  const exponent = Math.log10(size);
  return Number.isInteger(exponent) ? `1e${exponent}` : String(size);
}

/** Rows growth/drain-<size> and growth/report-<size>. */
export async function growthRows(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.quick ? [1e3, 1e4, 5e4] : [1e3, 1e5, 1e6];
  const batchTicks = ctx.quick ? 500 : 1000;
  const config = benchConfig(ctx, { STREAM_KEY: "bench:growth" });
  const deps = benchDeps(ctx, config);
  const app = createApp(deps);
  const key = config.streamKey;
  const filler = simulatedEntries(1250, config.symbols, 5);
  const batch = simulatedEntries(batchTicks, config.symbols, 6);
  await ctx.redis.flushall();
  const drains: number[][] = [];
  const reports: number[][] = [];
  let length = 0;
  for (const size of sizes) {
    while (length < size) {
      const slice = filler.slice(0, Math.min(filler.length, size - length));
      await rawPipeline(ctx.redis, key, slice);
      length += slice.length;
    }
    // The history counts as consumed: the group starts at the end of it.
    await command(ctx.redis, "XGROUP", "CREATE", key, GROUP, "$").catch(() =>
      command(ctx.redis, "XGROUP", "SETID", key, GROUP, "$")
    );
    ctx.progress(`growth: stream at ${length} entries`);
    const rates: number[] = [];
    const latencies: number[] = [];
    for (let round = 0; round <= ctx.rounds; round++) {
      await rawPipeline(ctx.redis, key, batch);
      length += batch.length;
      let acked = 0;
      const ms = await timed(async () => {
        acked = (await drainOne(deps, GROUP, { count: 1000, budgetMs: 55000 })).acked;
      });
      if (acked !== batch.length) throw new Error(`Growth drain acked ${acked} of ${batch.length}`);
      for (let i = 0; i < 3; i++) {
        const took = await timed(async () => {
          const response = await app.request("/report");
          await response.text();
          if (response.status !== 200) throw new Error(`GET /report answered ${response.status}`);
        });
        if (round > 0) latencies.push(took);
      }
      // Round 0 warms up at each size.
      if (round > 0) rates.push(batch.length / (ms / 1000));
    }
    drains.push(rates);
    reports.push(latencies);
  }
  await ctx.redis.flushall();
  const baseRate = median(drains[0]);
  const baseReport = median(reports[0]);
  const rows: Row[] = [];
  sizes.forEach((size, i) => {
    const last = i === sizes.length - 1;
    const rate = median(drains[i]);
    const rateRatio = rate / baseRate;
    rows.push({
      scenario: `growth/drain-${label(size)}`,
      figure: rate,
      unit: "entries/s",
      baseline: baseRate,
      ratio: rateRatio,
      target: last ? `ratio >= ${DRAIN_AT_LEAST}` : "",
      pass: last ? rateRatio >= DRAIN_AT_LEAST : null,
    });
  });
  sizes.forEach((size, i) => {
    const last = i === sizes.length - 1;
    const latency = median(reports[i]);
    const ratio = latency / baseReport;
    rows.push({
      scenario: `growth/report-${label(size)}`,
      figure: latency,
      unit: "ms",
      baseline: baseReport,
      ratio,
      target: last ? `ratio <= ${REPORT_AT_MOST}` : "",
      pass: last ? ratio <= REPORT_AT_MOST : null,
    });
  });
  return rows;
}
