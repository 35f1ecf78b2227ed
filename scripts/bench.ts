/**
 * `deno task bench`: every hot path of the queue side by side with its raw
 * baseline, measured in the same run on the same private redis-server, in
 * alternating rounds, reported as medians and ratios (these machines are
 * noisy; ratios are what compare). Prints a table of rows (scenario, figure,
 * unit, baseline, ratio, target, pass) and, with `--json FILE`, writes the
 * same rows as a JSON array. `--quick` runs everything small (CI);
 * `--only a,b` runs the scenarios whose names start with one of a, b.
 * Misses are reported, not fatal: the exit code is 0 unless a scenario fails to run.
 *
 * Usage: `deno task bench [--quick] [--json FILE] [--only emit,drain]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { closeAllRedis, closeRedis, createRedis } from "../shared/redis.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import {
  type BenchContext,
  type Row,
  ROW_KEYS,
  type Scenario,
  startRedisServer,
} from "./bench/_common.ts";
import { clientRows } from "./bench/_client.ts";
import { drainRows } from "./bench/_drain.ts";
import { emitHttpRows, emitModuleRows } from "./bench/_emit.ts";
import { growthRows } from "./bench/_growth.ts";
import { coldStartRows, httpOverheadRows } from "./bench/_http.ts";
import { liveLatencyRows } from "./bench/_live.ts";
import { memoryRows } from "./bench/_memory.ts";
import { partitionRows } from "./bench/_partitions.ts";
import { formatTable } from "./_table.ts";

/** Every scenario, in the order; the name is the prefix of its rows. */
export const SCENARIOS: readonly { name: string; run: Scenario }[] = [
  { name: "emit-module", run: emitModuleRows },
  { name: "emit-http", run: emitHttpRows },
  { name: "drain", run: drainRows },
  { name: "drain-partitions", run: partitionRows },
  { name: "growth", run: growthRows },
  { name: "live-latency", run: liveLatencyRows },
  { name: "http-overhead", run: httpOverheadRows },
  { name: "memory", run: memoryRows },
  { name: "cold-start", run: coldStartRows },
  { name: "client", run: clientRows },
];

function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "-";
  if (Math.abs(value) >= 1000) return String(Math.round(value));
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The rows as the printed table, with their notes under it. */
export function formatRows(rows: Row[]): string {
  const columns = [
    { title: "scenario" },
    { title: "figure", numeric: true },
    { title: "unit" },
    { title: "baseline", numeric: true },
    { title: "ratio", numeric: true },
    { title: "target" },
    { title: "pass" },
  ];
  const cells = rows.map((r) => [
    r.scenario,
    formatNumber(r.figure),
    r.unit,
    formatNumber(r.baseline),
    formatNumber(r.ratio),
    r.target,
    r.pass === null ? "-" : r.pass ? "yes" : "NO",
  ]);
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `${r.scenario}: ${r.note}`);
  return [formatTable(columns, cells), "", ...notes].join("\n");
}

/** The rows as JSON objects with exactly the keys of {@linkcode ROW_KEYS}. */
export function rowsToJson(rows: Row[]): Record<string, unknown>[] {
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const key of ROW_KEYS) {
      const value = row[key];
      out[key] = typeof value === "number" && !Number.isFinite(value) ? null : value;
    }
    return out;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      only: { type: "string" },
    },
  });
  const only = values.only?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const chosen = SCENARIOS.filter((s) =>
    only === undefined || only.some((prefix) => s.name.startsWith(prefix))
  );
  const dir = await Deno.makeTempDir({ prefix: "tickstream-bench-" });
  const server = await startRedisServer(dir);
  const redis = createRedis(server.url);
  const started = performance.now();
  const ctx: BenchContext = {
    quick: values.quick,
    rounds: values.quick ? 2 : 5,
    redisUrl: server.url,
    redis,
    dir,
    progress(line) {
      const at = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
      console.error(`[${at} s] ${line}`);
    },
  };
  const rows: Row[] = [];
  try {
    for (const scenario of chosen) rows.push(...await scenario.run(ctx));
  } finally {
    await closeQuoteStores().catch(() => {});
    await closeRedis(redis).catch(() => redis.disconnect());
    await closeAllRedis().catch(() => {});
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(formatRows(rows));
  const cpu = navigator.hardwareConcurrency;
  console.log(
    `${values.quick ? "quick" : "full"} run, ${ctx.rounds} rounds, ${seconds} s, ${cpu} CPUs, ` +
      `Deno ${Deno.version.deno}`,
  );
  if (values.json !== undefined) {
    await Deno.writeTextFile(values.json, JSON.stringify(rowsToJson(rows), null, 2) + "\n");
  }
}

if (import.meta.main) await main();
