/**
 * Private: the drain-partitions scenario: one group drained over 1, 2 and 4
 * partitions by as many concurrent invocations, each its own process (as a
 * host runs invocations in isolates of their own), on the benchmark's Redis
 * and on a local 3-master Redis Cluster, as ratios to 1 partition. The
 * invocations and every Redis share this machine's cores, so each row's note
 * gives the CPU they used: where the ratio stays low, that shows which ran out.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { emitQuotes } from "../../functions/emit_quotes.ts";
import { resetLayoutCache } from "../../shared/layout.ts";
import { resetGroupCache } from "../../shared/queue/mod.ts";
import { closeCluster, createClusterClient } from "../../shared/redis_cluster.ts";
import { startLocalCluster } from "../_cluster.ts";
import {
  benchConfig,
  type BenchContext,
  benchDeps,
  median,
  ratioRow,
  redisCpuSeconds,
  type Row,
} from "./_common.ts";

const GROUP = "price-alerts";
const COUNTS = [1, 2, 4] as const;
/**
 * Share of the machine's ceiling that scaling over processes is expected to
 * reach (the rest goes to context switches and the processes' own threads):
 * the 1.5x target is checked only on machines whose ceiling allows 1.5x at it.
 */
const SCALING_EFFICIENCY = 0.8;

/** Where one measurement runs: a client, the nodes to read CPU from, extra settings. */
interface Target {
  name: string;
  client: Redis;
  nodes: Redis[];
  env: Record<string, string>;
  flush(): Promise<void>;
}

const WORKER = new URL("./_drain_worker.ts", import.meta.url).pathname;

/** Reads a child's stdout line by line. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
    }
  }
}

/**
 * Drains GROUP over `partitions` partitions with as many invocations, each
 * its own process started before the clock runs; entries/s and CPU use.
 */
async function measure(
  ctx: BenchContext,
  target: Target,
  run: { partitions: number; round: number; ticks: number },
): Promise<{ rate: number; appCpu: number; redisCpu: number }> {
  await target.flush();
  resetGroupCache();
  resetLayoutCache();
  const env = {
    REDIS_URL: ctx.redisUrl,
    CRON_ENABLED: "false",
    MAX_LAG: "1000000000",
    STREAM_MAXLEN: "10000000",
    ...target.env,
    STREAM_KEY: `bench:part:${run.round}:${run.partitions}`,
    STREAM_PARTITIONS: String(run.partitions),
    DATABASE_PATH: `${ctx.dir}/partitions.db`,
  };
  const config = benchConfig(ctx, env);
  const deps = { ...benchDeps(ctx, config), redis: () => target.client };
  await emitQuotes(deps, { ticks: run.ticks });
  const total = run.ticks * config.symbols.length;
  const workers = Array.from({ length: run.partitions }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER],
      env: { ...env, BENCH_GROUP: GROUP },
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  const outputs = workers.map((w) => lines(w.stdout));
  for (const out of outputs) {
    const first = await out.next();
    if (first.value !== "ready") throw new Error(`A drain worker did not start: ${first.value}`);
  }
  const redis0 = await redisCpuSeconds(target.nodes);
  const started = performance.now();
  await target.client.set(`${config.streamKey}:go`, "1");
  const done = await Promise.all(outputs.map(async (out) => {
    const line = await out.next();
    return JSON.parse(String(line.value)) as { acked: number; cpu: number };
  }));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => w.status));
  const acked = done.reduce((n, d) => n + d.acked, 0);
  if (acked !== total) throw new Error(`Partitioned drain acked ${acked} of ${total}`);
  return {
    rate: total / seconds,
    appCpu: done.reduce((n, d) => n + d.cpu, 0) / seconds,
    redisCpu: ((await redisCpuSeconds(target.nodes)) - redis0) / seconds,
  };
}

/** The rows of one target: 2 and 4 partitions as ratios to 1. */
async function rowsOf(ctx: BenchContext, target: Target): Promise<Row[]> {
  const ticks = ctx.quick ? 250 : 10000;
  const rates = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const cpu = new Map<number, string[]>(COUNTS.map((n) => [n, []]));
  const cores = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  for (let round = 0; round <= ctx.rounds; round++) {
    // Alternate the order so neither side always runs warm; round 0 warms up.
    const order = round % 2 === 0 ? [...COUNTS] : [...COUNTS].reverse();
    for (const partitions of order) {
      ctx.progress(`drain-partitions ${target.name}: round ${round}, ${partitions} partitions`);
      const m = await measure(ctx, target, { partitions, round, ticks });
      if (round === 0) continue;
      rates.get(partitions)!.push(m.rate);
      cpu.get(partitions)!.push(
        `app ${(m.appCpu * 100).toFixed(0)}% cpu, redis ${(m.redisCpu * 100).toFixed(0)}%`,
      );
      cores.get(partitions)!.push(m.appCpu + m.redisCpu);
    }
  }
  const base = rates.get(1)!;
  const machine = navigator.hardwareConcurrency;
  // One partition's drain and Redis already use `perDrain` cores: no number of invocations
  // can go past machine / perDrain times its rate here.
  const perDrain = median(cores.get(1)!);
  const ceiling = machine / perDrain;
  const checkable = ceiling >= 1.5 / SCALING_EFFICIENCY;
  return COUNTS.map((n) => {
    const row = ratioRow(`drain-partitions/${target.name}/${n}`, {
      figures: rates.get(n)!,
      baselines: base,
      unit: "entries/s",
      atLeast: n === 4 ? 1.5 : undefined,
    });
    const unchecked = n === 4 && !checkable;
    return {
      ...row,
      ...(unchecked
        ? {
          pass: null,
          target: `${row.target} (needs ${Math.ceil(1.5 * perDrain / SCALING_EFFICIENCY)} cores)`,
        }
        : {}),
      note:
        `${cpu.get(n)!.at(-1)} on ${machine} cores, one process per invocation (median of ${
          rates.get(n)!.length
        }: ${median(rates.get(n)!).toFixed(0)})` +
        (n === 4
          ? `; one partition uses ${
            perDrain.toFixed(2)
          } cores, so ${machine} cores allow at most ` +
            `${ceiling.toFixed(2)}x${unchecked ? ": the 1.5x target is not checked here" : ""}`
          : ""),
    };
  });
}

/** Rows of drain-partitions, on one Redis and on a local 3-master cluster. */
export async function partitionRows(ctx: BenchContext): Promise<Row[]> {
  const rows = await rowsOf(ctx, {
    name: "redis",
    client: ctx.redis,
    nodes: [ctx.redis],
    env: {},
    flush: async () => void await ctx.redis.flushall(),
  });
  const dir = `${ctx.dir}/cluster`;
  const cluster = await startLocalCluster(dir, { replicasPerMaster: 0 });
  const client = createClusterClient(cluster.seeds) as unknown as Redis;
  const { Redis: Node } = await import("ioredis");
  const masters = cluster.nodes.filter((n) => n.role === "master").map((n) =>
    new Node({ host: n.host, port: n.port, lazyConnect: false })
  );
  try {
    rows.push(
      ...await rowsOf(ctx, {
        name: "cluster",
        client,
        nodes: masters,
        env: { REDIS_CLUSTER_NODES: cluster.seeds },
        flush: async () => void await Promise.all(masters.map((m) => m.flushall())),
      }),
    );
  } finally {
    for (const m of masters) m.disconnect();
    await closeCluster(client as unknown as Parameters<typeof closeCluster>[0]);
    await cluster.stop();
  }
  return rows;
}
