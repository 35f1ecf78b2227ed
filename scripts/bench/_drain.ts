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
  ratioRow,
  type Row,
  timed,
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

/** One invocation of the group's real drain over the whole stream, in entries/s. */
async function timeOurs(deps: Deps, run: { group: string; total: number }): Promise<number> {
  let acked = 0;
  const ms = await timed(async () => {
    acked = (await drainOne(deps, run.group, { count: 1000, budgetMs: 55000 })).acked;
  });
  if (acked !== run.total) {
    throw new Error(`Drain of "${run.group}" acked ${acked} of ${run.total}`);
  }
  return rate(acked, ms);
}

/** The raw batch consumer over the whole stream, in entries/s. */
async function timeRaw(redis: Redis, run: { key: string; group: string }): Promise<number> {
  let read = 0;
  const ms = await timed(async () => {
    read = await rawBatchConsumer(redis, run.key, run.group);
  });
  return rate(read, ms);
}

/** Rows of every drain-<group>, the raw batch consumer and the tutorial's pattern. */
export async function drainRows(ctx: BenchContext): Promise<Row[]> {
  const batches = ctx.quick ? 1 : 5;
  const ticksPerBatch = 1000;
  const ours = new Map<string, number[]>(GROUPS.map((g) => [g.group, []]));
  const raw = new Map<string, number[]>(GROUPS.map((g) => [g.group, []]));
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
    let read = 0;
    const ms = await timed(async () => {
      read = await tutorialConsumer(ctx.redis, { key, group: "tutorial", limit });
    });
    if (keep) tutorial.push(rate(read, ms));
  }
  await ctx.redis.flushall();
  const allRaw = [...raw.values()].flat();
  const rows: Row[] = [
    {
      scenario: "drain-raw-batch",
      figure: median(allRaw),
      unit: "entries/s",
      baseline: null,
      ratio: null,
      target: "",
      pass: null,
      note: "XREADGROUP COUNT 1000 + one XACK per batch: the baseline of every drain-<group>",
    },
    {
      ...ratioRow("drain-tutorial", {
        figures: tutorial,
        baselines: tutorial.map((_, i) => median(GROUPS.map((g) => raw.get(g.group)![i]))),
        unit: "entries/s",
      }),
      note: "the tutorial's pattern (XREADGROUP COUNT 1 + XACK each), vs the raw batch consumer",
    },
  ];
  for (const g of GROUPS) {
    const figures = ours.get(g.group)!;
    rows.push(
      ratioRow(`drain-${g.group}`, {
        figures,
        baselines: raw.get(g.group)!,
        unit: "entries/s",
        atLeast: isSinkGroup(g) ? SINK_TARGET : ANALYSIS_TARGET,
      }),
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
