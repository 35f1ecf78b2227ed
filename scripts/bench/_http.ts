/**
 * Private: the HTTP scenarios. http-overhead loads `/health` of the app and
 * of a bare `Deno.serve`, each in a child process, in alternating rounds,
 * from concurrent fetch loops here. cold-start times `deno run main.ts`
 * from spawn to the first 200 from `/health`.
 *
 * @module
 */

import {
  type BenchContext,
  boundRow,
  freePort,
  median,
  ratioRow,
  type Row,
  sleep,
} from "./_common.ts";

const HTTP_AT_LEAST = 0.8;
const COLD_START_BELOW_MS = 500;
const CONCURRENCY = 32;

/** A server child: its URL and how to stop it. */
interface Child {
  url: string;
  stop(): Promise<void>;
}

/** Starts `scripts/bench/_serve.ts` in `mode` and waits for its port. */
export async function startServeChild(mode: "bare" | "app", redisUrl: string): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "--unstable-cron", new URL("./_serve.ts", import.meta.url).pathname],
      ...["--mode", mode, "--redis", redisUrl],
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`The ${mode} server exited before listening`);
    text += value;
  }
  const { port } = JSON.parse(text.split("\n")[0]);
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await child.stdin.close();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
      await drained.catch(() => {});
    },
  };
}

/** Requests per second of GET `url` from {@linkcode CONCURRENCY} loops for `ms`. */
async function load(url: string, ms: number): Promise<number> {
  const deadline = performance.now() + ms;
  let done = 0;
  async function loop(): Promise<void> {
    while (performance.now() < deadline) {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
      done += 1;
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return done / ((performance.now() - started) / 1000);
}

/** http-overhead: app `/health` req/s vs a bare `Deno.serve`. */
export async function httpOverheadRows(ctx: BenchContext): Promise<Row[]> {
  const ms = ctx.quick ? 1000 : 3000;
  const bare = await startServeChild("bare", ctx.redisUrl);
  const app = await startServeChild("app", ctx.redisUrl);
  ctx.progress(`http-overhead: ${ctx.rounds} rounds of ${ms} ms per side`);
  try {
    await load(`${bare.url}/health`, 300);
    await load(`${app.url}/health`, 300);
    const figures: number[] = [];
    const baselines: number[] = [];
    for (let round = 0; round < ctx.rounds; round++) {
      if (round % 2 === 0) {
        figures.push(await load(`${app.url}/health`, ms));
        baselines.push(await load(`${bare.url}/health`, ms));
      } else {
        baselines.push(await load(`${bare.url}/health`, ms));
        figures.push(await load(`${app.url}/health`, ms));
      }
    }
    return [{
      ...ratioRow("http-overhead", { figures, baselines, unit: "req/s", atLeast: HTTP_AT_LEAST }),
      note: `${CONCURRENCY} concurrent fetch loops in the benchmark process; ` +
        "the app's /health makes 4 Redis calls per request",
    }];
  } finally {
    await bare.stop();
    await app.stop();
  }
}

/** Spawns main.ts and returns the ms from spawn to its first 200 from /health. */
async function coldStart(redisUrl: string): Promise<number> {
  const port = freePort();
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-cron", new URL("../../main.ts", import.meta.url).pathname],
    env: { PORT: String(port), HOST: "127.0.0.1", REDIS_URL: redisUrl, CRON_ENABLED: "false" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = started + 20000;
    while (performance.now() < deadline) {
      const status = await fetch(`http://127.0.0.1:${port}/health`).then(
        async (r) => (await r.arrayBuffer(), r.status),
        () => 0,
      );
      if (status === 200) return performance.now() - started;
      await sleep(5);
    }
    throw new Error(`main.ts did not answer 200 on /health within 20 s`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** cold-start: median of 10 starts (3 in a quick run), one warm-up not counted. */
export async function coldStartRows(ctx: BenchContext): Promise<Row[]> {
  const runs = ctx.quick ? 3 : 10;
  ctx.progress(`cold-start: ${runs} starts of main.ts`);
  await coldStart(ctx.redisUrl);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await coldStart(ctx.redisUrl));
  return [
    boundRow("cold-start", {
      figure: median(times),
      unit: "ms",
      below: COLD_START_BELOW_MS,
      note: `spawn of deno run main.ts to the first 200 from /health, median of ${runs}`,
    }),
  ];
}
