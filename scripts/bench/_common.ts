/**
 * Private: what every benchmark scenario shares: the row it produces, its
 * own redis-server, configs and deps pointed at it, medians and timers.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { type Config, loadConfig } from "../../shared/config.ts";
import type { Deps } from "../../shared/http.ts";
import { createRandom } from "../../shared/market/simulator.ts";
import { encodeQuote } from "../../shared/market/quotes.ts";
import { initialSimulatorState, simulateTicks } from "../../shared/market/simulator.ts";
import { closeRedis, createRedis } from "../../shared/redis.ts";

/** One line of the benchmark's table, and one object of its JSON. */
export interface Row {
  /** Scenario, with a "/part" suffix when a scenario has several rows. */
  scenario: string;
  /** The measured figure (median over rounds), or null when not measured. */
  figure: number | null;
  /** Unit of `figure` and `baseline`. */
  unit: string;
  /** The baseline measured in the same run, or null when the row has none. */
  baseline: number | null;
  /** Median of the per-round ratios figure / baseline, or null. */
  ratio: number | null;
  /** What passes, e.g. "ratio >= 0.8" or "< 20"; "" when the row only informs. */
  target: string;
  /** Whether the target is met; null when there is no target or nothing was measured. */
  pass: boolean | null;
  /** A short remark printed under the table (not part of the JSON). */
  note?: string;
}

/** The JSON keys of a row, in order. */
export const ROW_KEYS = [
  "scenario",
  "figure",
  "unit",
  "baseline",
  "ratio",
  "target",
  "pass",
] as const;

/** What a scenario is handed: the run's size, its Redis and a scratch directory. */
export interface BenchContext {
  /** Small run (CI): fewer rounds, smaller streams, shorter soaks. */
  quick: boolean;
  /** Rounds per alternating comparison. */
  rounds: number;
  /** redis:// URL of the benchmark's own redis-server. */
  redisUrl: string;
  /** A client of it. */
  redis: Redis;
  /** Scratch directory (SQLite files), removed at the end. */
  dir: string;
  /** Prints a progress line on stderr. */
  progress(line: string): void;
}

/** A scenario: produces its rows. */
export type Scenario = (ctx: BenchContext) => Promise<Row[]>;

/** Returns a TCP port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Median of `values` (NaN for none). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The `p`th percentile of ascending `sorted`. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** CPU seconds this process has used, all its threads (user + system, from /proc). */
export function processCpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the Redis node(s) behind `nodes` have used, from INFO cpu. */
export async function redisCpuSeconds(nodes: Redis[]): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const info = await node.info("cpu");
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
    total += sys + user;
  }
  return total;
}

/** Runs `fn` and returns the ms it took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** A redis-server the benchmark owns. */
export interface BenchRedis {
  /** redis:// URL. */
  url: string;
  /** Stops it. */
  stop(): Promise<void>;
}

/** Starts a private redis-server on a free port, no persistence, and waits for PING. */
export async function startRedisServer(dir: string): Promise<BenchRedis> {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: [
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      ...["--dir", dir, "--loglevel", "warning"],
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    const probe = createRedis(url);
    const pong = await probe.ping().catch(() => "");
    await closeRedis(probe).catch(() => probe.disconnect());
    if (pong === "PONG") break;
    if (Date.now() > deadline) throw new Error(`Cannot start redis-server on port ${port}`);
    await sleep(50);
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** The app's config for the benchmark's Redis, crons off, with `env` on top. */
export function benchConfig(ctx: BenchContext, env: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: ctx.redisUrl,
    CRON_ENABLED: "false",
    DATABASE_PATH: `${ctx.dir}/quotes.db`,
    MAX_LAG: "1000000000",
    STREAM_MAXLEN: "10000000",
    ...env,
  });
}

/** Deps on the context's client with a seeded simulator. */
export function benchDeps(ctx: BenchContext, config: Config): Deps {
  return { config, redis: () => ctx.redis, now: Date.now, random: createRandom(7) };
}

/** `ticks` x `symbols` simulated quotes, encoded as stream fields. */
export function simulatedEntries(ticks: number, symbols: string[], seed = 11): string[][] {
  const sim = simulateTicks(initialSimulatorState(), {
    symbols,
    ticks,
    now: Date.now(),
    intervalMs: 1000,
    random: createRandom(seed),
  });
  return sim.quotes.map(encodeQuote);
}

/** XADDs `entries` to `key` in one ioredis pipeline: the raw producer baseline. */
export async function rawPipeline(redis: Redis, key: string, entries: string[][]): Promise<void> {
  const pipeline = redis.pipeline();
  for (const fields of entries) pipeline.xadd(key, "*", ...fields);
  const replies = await pipeline.exec();
  const failed = replies?.find(([error]) => error !== null);
  if (failed) throw new Error(`Cannot XADD in the raw pipeline`, { cause: failed[0] });
}

/** A row with a ratio and a lower bound on it. */
export function ratioRow(
  scenario: string,
  measured: { figures: number[]; baselines: number[]; unit: string; atLeast?: number },
): Row {
  const { figures, baselines, unit, atLeast } = measured;
  const ratios = figures.map((f, i) => f / baselines[i]);
  const ratio = median(ratios);
  return {
    scenario,
    figure: median(figures),
    unit,
    baseline: median(baselines),
    ratio,
    target: atLeast === undefined ? "" : `ratio >= ${atLeast}`,
    pass: atLeast === undefined ? null : ratio >= atLeast,
  };
}

/** A row with a plain bound on the figure. */
export function boundRow(
  scenario: string,
  measured: { figure: number; unit: string; below?: number; note?: string },
): Row {
  const { figure, unit, below, note } = measured;
  return {
    scenario,
    figure,
    unit,
    baseline: null,
    ratio: null,
    target: below === undefined ? "" : `< ${below}`,
    pass: below === undefined ? null : figure < below,
    ...(note === undefined ? {} : { note }),
  };
}
