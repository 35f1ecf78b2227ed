/**
 * Private: the drain scenarios. Each round fills a fresh stream, then drains
 * it once per group (the real handler and its exactly-once commits, one
 * invocation) and once per group with the raw batch consumer (XREADGROUP
 * COUNT 1000 + one XACK per batch, on a group of its own over the same
 * entries), alternating which goes first. The tutorial's pattern (COUNT 1 +
 * XACK each) runs on a slice of the same entries.
 *
 * @module
 */

import { command } from "../../shared/queue/client.ts";
import type { Redis } from "ioredis";
import { drainOne } from "../../functions/drain.ts";
import { emitQuotes } from "../../functions/emit_quotes.ts";
import { isSinkGroup } from "../../shared/groups/group.ts";
import { GROUPS } from "../../shared/groups/registry.ts";
import type { Deps } from "../../shared/http.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  median,
  processCpuSeconds,
  ratioRow,
  redisCpuSeconds,
  type Row,
} from "./_common.ts";

/** Target ratio to the raw batch consumer: analyses, and the SQLite quote store. */
const ANALYSIS_TARGET = 0.8;
const SINK_TARGET = 0.5;
/** Target ratio to the tutorial's pattern. */
const TUTORIAL_TARGET = 10;

/** Reads `key` through `group` in chunks of 1000 with one XACK per chunk; returns entries read. */
export async function rawBatchConsumer(redis: Redis, key: string, group: string): Promise<number> {
  let read = 0;
  for (;;) {
    const reply = await command(redis, "XREADGROUP", ...[
      "GROUP",
      group,
      "raw",
      "COUNT",
      1000,
      "STREAMS",
      key,
      ">",
    ]) as [string, [string, string[]][]][] | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length === 0) return read;
    read += entries.length;
    await command(redis, "XACK", key, group, ...entries.map((e) => e[0]));
  }
}

/** The tutorial's consumer: one entry per XREADGROUP, one XACK each, `limit` entries. */
async function tutorialConsumer(
  redis: Redis,
  stream: { key: string; group: string; limit: number },
): Promise<number> {
  const { key, group, limit } = stream;
  let read = 0;
  while (read < limit) {
    const reply = await command(redis, "XREADGROUP", ...[
      "GROUP",
      group,
      "tutorial",
      "COUNT",
      1,
      "STREAMS",
      key,
      ">",
    ]) as [string, [string, string[]][]][] | null;
    const entry = reply?.[0]?.[1]?.[0];
    if (entry === undefined) break;
    await command(redis, "XACK", key, group, entry[0]);
    read += 1;
  }
  return read;
}

function rate(entries: number, ms: number): number {
  return entries / (ms / 1000);
}

/** One timed drain: its rate, and the wall and CPU time of the app and of Redis per 1,000 entries. */
interface Measured {
  rate: number;
  wall: number;
  app: number;
  redis: number;
}

/** Runs `drain` (resolving to the entries it took), timing its wall and the CPU it cost both sides. */
async function measure(redis: Redis, drain: () => Promise<number>): Promise<Measured> {
  const redis0 = await redisCpuSeconds([redis]);
  const app0 = processCpuSeconds();
  const started = performance.now();
  const entries = await drain();
  const ms = performance.now() - started;
  const app = (processCpuSeconds() - app0) * 1000;
  const server = ((await redisCpuSeconds([redis])) - redis0) * 1000;
  const per = 1000 / Math.max(1, entries);
  return { rate: rate(entries, ms), wall: ms * per, app: app * per, redis: server * per };
}

/** One invocation of the group's real drain over the whole stream. */
function timeOurs(deps: Deps, run: { group: string; total: number }): Promise<Measured> {
  return measure(deps.redis() as Redis, async () => {
    const { acked } = await drainOne(deps, run.group, { count: 1000, budgetMs: 55000 });
    if (acked !== run.total) {
      throw new Error(`Drain of "${run.group}" acked ${acked} of ${run.total}`);
    }
    return acked;
  });
}

/** The raw batch consumer over the whole stream. */
function timeRaw(redis: Redis, run: { key: string; group: string }): Promise<Measured> {
  return measure(redis, () => rawBatchConsumer(redis, run.key, run.group));
}

/** "wall W ms, app A ms CPU, redis R ms CPU" per 1,000 entries, medians. */
function costNote(measured: Measured[]): string {
  const of = (pick: (m: Measured) => number) => median(measured.map(pick)).toFixed(1);
  return `wall ${of((m) => m.wall)} ms, app ${of((m) => m.app)} ms CPU, redis ${
    of((m) => m.redis)
  } ms CPU per 1,000 entries`;
}

/** Rows of every drain-<group>, the raw batch consumer and the tutorial's pattern. */
export async function drainRows(ctx: BenchContext): Promise<Row[]> {
  const batches = ctx.quick ? 1 : 5;
  const ticksPerBatch = 1000;
  const ours = new Map<string, Measured[]>(GROUPS.map((g) => [g.group, []]));
  const raw = new Map<string, Measured[]>(GROUPS.map((g) => [g.group, []]));
  const tutorial: number[] = [];
  for (let round = 0; round <= ctx.rounds; round++) {
    // Round 0 warms up (JIT, script loads, SQLite's first open) and is not kept.
    const keep = round > 0;
    await ctx.redis.flushall();
    const config = benchConfig(ctx, {
      STREAM_KEY: `bench:drain:${round}`,
      DATABASE_PATH: `${ctx.dir}/drain_${round}.db`,
    });
    const deps = benchDeps(ctx, config);
    for (let i = 0; i < batches; i++) await emitQuotes(deps, { ticks: ticksPerBatch });
    const total = batches * ticksPerBatch * config.symbols.length;
    const key = config.streamKey;
    for (const g of GROUPS) {
      await command(ctx.redis, "XGROUP", "CREATE", key, `raw-${g.group}`, "0");
    }
    await command(ctx.redis, "XGROUP", "CREATE", key, "tutorial", "0");
    ctx.progress(`drain: round ${round} of ${ctx.rounds}, ${total} entries`);
    for (const [index, g] of GROUPS.entries()) {
      const first = (round + index) % 2 === 0 ? "ours" : "raw";
      for (const side of first === "ours" ? ["ours", "raw"] : ["raw", "ours"]) {
        const measured = side === "ours"
          ? await timeOurs(deps, { group: g.group, total })
          : await timeRaw(ctx.redis, { key, group: `raw-${g.group}` });
        if (keep) (side === "ours" ? ours : raw).get(g.group)!.push(measured);
      }
    }
    const limit = Math.min(total, ctx.quick ? 1000 : 5000);
    const slow = await measure(
      ctx.redis,
      () => tutorialConsumer(ctx.redis, { key, group: "tutorial", limit }),
    );
    if (keep) tutorial.push(slow.rate);
  }
  await ctx.redis.flushall();
  const allRaw = [...raw.values()].flat();
  const rates = (measured: Measured[]) => measured.map((m) => m.rate);
  const rows: Row[] = [
    {
      scenario: "drain-raw-batch",
      figure: median(rates(allRaw)),
      unit: "entries/s",
      baseline: null,
      ratio: null,
      target: "",
      pass: null,
      note: "XREADGROUP COUNT 1000 + one XACK per batch: the baseline of every drain-<group>; " +
        costNote(allRaw),
    },
    {
      ...ratioRow("drain-tutorial", {
        figures: tutorial,
        baselines: tutorial.map((_, i) => median(GROUPS.map((g) => raw.get(g.group)![i].rate))),
        unit: "entries/s",
      }),
      note: "the tutorial's pattern (XREADGROUP COUNT 1 + XACK each), vs the raw batch consumer",
    },
  ];
  for (const g of GROUPS) {
    const measured = ours.get(g.group)!;
    const figures = rates(measured);
    rows.push(
      {
        ...ratioRow(`drain-${g.group}`, {
          figures,
          baselines: rates(raw.get(g.group)!),
          unit: "entries/s",
          atLeast: isSinkGroup(g) ? SINK_TARGET : ANALYSIS_TARGET,
        }),
        note: costNote(measured),
      },
      ratioRow(`drain-${g.group}/tutorial`, {
        figures,
        baselines: tutorial,
        unit: "entries/s",
        atLeast: TUTORIAL_TARGET,
      }),
    );
  }
  return rows;
}
