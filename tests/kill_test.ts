import assert from "node:assert/strict";
import { loadConfig } from "../shared/config.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { createRandom } from "../shared/market/simulator.ts";
import { openStream } from "../shared/queue/mod.ts";
import {
  actualOutcome,
  assertMatchesReference,
  diffOutcomes,
  groupsBehind,
  quoteFeed,
  referenceDeps,
  referenceEnv,
  referenceOutcome,
} from "./_reference.ts";
import { freePort, startRedis } from "./_redis_server.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import { allStockKeys } from "../shared/stock_queue.ts";
import type { Redis } from "ioredis";
import { createClusterClient } from "../shared/redis_cluster.ts";
import { startRedisCluster } from "./_redis_cluster.ts";

/** Times the app is killed with SIGKILL while it drains. */
const TRIALS = 20;
/** Quotes emitted in all: 375 ticks of 8 symbols. */
const ENTRIES = 3000;
const SYMBOLS = 8;
/** Ticks emitted before the first trial; the rest arrive during the trials. */
const UPFRONT_TICKS = 135;
const TICKS_PER_TRIAL = (ENTRIES / SYMBOLS - UPFRONT_TICKS) / TRIALS;
/** Concurrent HTTP drain loops per group while the app runs. */
const DRIVERS_PER_GROUP = 2;
const SEED = 20240102;

const ROOT = new URL("..", import.meta.url).pathname;
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface DrainReply {
  acked: number;
  more: boolean;
  busy: boolean;
}

/** The app (`deno run -A main.ts`) as a child process, with the tail of its stderr. */
class App {
  readonly process: Deno.ChildProcess;
  readonly base: string;
  #stderr = "";
  readonly #reading: Promise<void>;

  constructor(env: Record<string, string>) {
    const port = freePort();
    this.base = `http://127.0.0.1:${port}`;
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts"],
      cwd: ROOT,
      env: { ...env, PORT: String(port) },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#reading = this.#drainStderr();
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.process.stderr) {
      this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-4000);
    }
  }

  /** Resolves once GET /health answers 200. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.process.status.then(() => exited = true);
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${this.base}/health`);
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
      await sleep(30);
    }
    throw new Error(`the app did not become healthy; stderr:\n${this.#stderr}`);
  }

  /** POST /drain/:group; null when the app is gone or answered an error. */
  async drain(group: string, count: number, budgetMs: number): Promise<DrainReply | null> {
    try {
      const res = await fetch(`${this.base}/drain/${group}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ count, budgetMs }),
      });
      const body = await res.json();
      return res.ok ? body as DrainReply : null;
    } catch {
      return null;
    }
  }

  /** SIGKILL, then wait for the process and its stderr to end. */
  async kill(): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.process.status;
    await this.#reading;
  }
}

/** Kills the app TRIALS times while it drains `partitions` partitions, then checks every effect. */
async function survivesKills(partitions: number, onCluster = false): Promise<void> {
  const server = await startRedis();
  const cluster = onCluster ? await startRedisCluster() : undefined;
  const redis = cluster === undefined
    ? createRedis(server.url)
    : createClusterClient(cluster.seeds) as unknown as Redis;
  const env = referenceEnv(server, {
    CLAIM_IDLE_MS: "300",
    DRAIN_BUDGET_MS: "200",
    STREAM_PARTITIONS: String(partitions),
    ...(cluster === undefined ? {} : { REDIS_CLUSTER_NODES: cluster.seeds }),
  });
  const config = loadConfig(env);
  const deps = referenceDeps(config, [redis]);
  const feed = quoteFeed(deps, SEED);
  const all = GROUPS;
  const groups = all.map((p) => p.group);
  const random = createRandom(SEED);
  const sizes = createRandom(SEED + 1);
  let app: App | undefined;
  const started = performance.now();
  try {
    await feed.emit(UPFRONT_TICKS);
    let killedMidDrain = 0;
    let leftPending = 0;
    let acked = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      app = new App(env);
      await app.ready();
      const running = app;
      const stop = { stopped: false };
      let working!: () => void;
      const isWorking = new Promise<void>((resolve) => working = resolve);
      const drivers = groups.flatMap((group) =>
        Array.from({ length: DRIVERS_PER_GROUP }, async () => {
          while (!stop.stopped) {
            // Small chunks and budgets, so the kill often lands between a read and its commit.
            const reply = await running.drain(
              group,
              3 + Math.floor(sizes() * 10),
              20 + Math.floor(sizes() * 200),
            );
            if (reply !== null && reply.acked > 0) {
              acked += reply.acked;
              working();
            }
            // Back off while the killed process's lease has not expired yet.
            if (reply === null || reply.busy) await sleep(20);
            else if (!reply.more) await sleep(5);
          }
        })
      );
      // Quotes keep arriving while the app drains, one tick every 25 ms.
      const emitting = (async () => {
        for (let i = 0; i < TICKS_PER_TRIAL; i++) {
          await feed.emit(1);
          await sleep(25);
        }
      })();
      // The kill comes at a random moment once the app is draining.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([isWorking, new Promise((resolve) => timer = setTimeout(resolve, 5000))]);
      clearTimeout(timer);
      await sleep(Math.floor(random() * 400));
      const pid = running.process.pid;
      await running.kill();
      app = undefined;
      stop.stopped = true;
      await Promise.all([...drivers, emitting]);
      // Entries the killed process had read but not committed stay pending under its consumers.
      let pendingOfKilled = 0;
      for (const keys of allStockKeys(config)) {
        for (const group of groups) {
          const summary = await openStream(redis, keys.stream).group(group).pending();
          for (const c of summary.consumers) {
            if (c.name.endsWith(`:${pid}`)) pendingOfKilled += c.pending;
          }
        }
      }
      if (pendingOfKilled > 0) killedMidDrain += 1;
      leftPending += pendingOfKilled;
    }
    assert.equal(feed.emitted, ENTRIES);

    // A fresh process finishes the work: leases of the killed one expire and
    // its pending entries become claimable after CLAIM_IDLE_MS.
    app = new App(env);
    await app.ready();
    const finisher = app;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const replies = await Promise.all(groups.map((g) => finisher.drain(g, 200, 2000)));
      for (const r of replies) acked += r?.acked ?? 0;
      const settled = replies.every((r) => r !== null && !r.more && !r.busy);
      if (settled && (await groupsBehind({ redis, config }, groups)).length === 0) break;
      assert.ok(
        Date.now() < deadline,
        `groups not caught up: ${await groupsBehind({ redis, config }, groups)}`,
      );
      await sleep(100);
    }
    await finisher.kill();
    app = undefined;

    const expected = await referenceOutcome({ redis, config }, all);
    const actual = await actualOutcome({ redis, config }, Object.keys(expected));
    const diff = diffOutcomes(expected, actual);
    const alerts = Object.values(expected).reduce((n, g) => n + g.alerts.length, 0);
    console.log(
      `kill test: partitions=${partitions} cluster=${onCluster} trials=${TRIALS} entries=${ENTRIES} lost=${diff.lost.length} ` +
        `duplicated=${diff.duplicated.length} killed_mid_drain=${killedMidDrain} ` +
        `left_pending=${leftPending} alerts=${alerts} seconds=${
          ((performance.now() - started) / 1000).toFixed(1)
        }`,
    );
    assert.ok(alerts > 0, "the quotes produced no alert to check");
    assert.ok(killedMidDrain > 0, "no kill ever landed while a drain held entries");
    // Replies lost to a kill are not counted, but no entry may be acked twice.
    assert.ok(acked <= ENTRIES * groups.length, `acked ${acked}`);
    await assertMatchesReference({ redis, config }, all);
  } finally {
    await app?.kill();
    if (cluster === undefined) await closeRedis(redis);
    else (redis as unknown as { disconnect(): void }).disconnect();
    await cluster?.stop();
    await server.stop();
  }
}

Deno.test("a drain survives being killed 20 times without losing or duplicating an effect", async () => {
  await survivesKills(1);
});

Deno.test("with four partitions, a drain survives being killed 20 times without losing or duplicating an effect", async () => {
  await survivesKills(4);
});

Deno.test("with four partitions on a Redis Cluster, a drain survives being killed 20 times without losing or duplicating an effect", async () => {
  await survivesKills(4, true);
});
