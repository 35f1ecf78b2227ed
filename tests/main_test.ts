import assert from "node:assert/strict";
import { runTrigger } from "../scripts/trigger.ts";
import { freePort, startRedis } from "./_redis_server.ts";

async function waitForHealth(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Cannot reach ${base}/health within ${timeoutMs} ms`);
}

// Child processes keep their quote store here, never in the working tree.
const dataDir = await Deno.makeTempDir({ prefix: "tickstream-main-" });

function spawnMain(env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { DATABASE_PATH: `${dataDir}/quotes.db`, ...env },
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("main.ts runs its crons, serves every function and exits quickly on SIGTERM", async () => {
  const redis = await startRedis();
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnMain({
    REDIS_URL: redis.url,
    PORT: String(port),
    // Deno's local cron runner fires every cron at this interval instead of its schedule.
    DENO_CRON_TEST_SCHEDULE_OFFSET: "500",
  });
  try {
    await waitForHealth(base, 20000);
    const client = redis.client();
    let groups: unknown[] = [];
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      groups = (await client.xinfo("GROUPS", "stock_quotes").catch(() => [])) as unknown[];
      const length = await client.xlen("stock_quotes");
      const alerts = await client.exists("stock_quotes:state:price-alerts");
      if (groups.length >= 4 && length >= 16 && alerts === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(await client.xlen("stock_quotes") >= 16, "the emit cron ran at least twice");
    assert.equal(
      await client.exists("stock_quotes:state:price-alerts"),
      1,
      "the drain cron processed quotes",
    );
    const lines: string[] = [];
    assert.equal(
      await runTrigger(["emit", "--ticks", "2"], { baseUrl: base, log: (l) => lines.push(l) }),
      0,
    );
    assert.match(lines.join("\n"), /Emitted 16 quotes to stock_quotes/);
    assert.equal(
      await runTrigger(["drain", "all", "--budget", "2000"], {
        baseUrl: base,
        log: (l) => lines.push(l),
      }),
      0,
    );
    assert.equal(await runTrigger(["report"], { baseUrl: base, log: (l) => lines.push(l) }), 0);
    assert.match(lines.join("\n"), /price-alerts .* caught up/);
    const started = performance.now();
    child.kill("SIGTERM");
    const status = await child.status;
    const elapsed = performance.now() - started;
    assert.equal(status.code, 0);
    assert.ok(elapsed < 5000, `exited in ${elapsed.toFixed(0)} ms`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await redis.stop();
  }
});

Deno.test("main.ts stops on SIGINT while Redis is down", async () => {
  const port = freePort();
  const child = spawnMain({
    REDIS_URL: `redis://127.0.0.1:${freePort()}`,
    PORT: String(port),
    CRON_ENABLED: "false",
  });
  try {
    const deadline = Date.now() + 20000;
    let status = 0;
    while (Date.now() < deadline && status !== 503) {
      status = await fetch(`http://127.0.0.1:${port}/health`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }).catch(() => 0);
      if (status !== 503) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(status, 503, "health reports Redis down");
    child.kill("SIGINT");
    const exit = await child.status;
    assert.equal(exit.code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
  }
});

Deno.test("main.ts refuses to start on an invalid setting and names it", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { PORT: "not-a-port", CRON_ENABLED: "false", DATABASE_PATH: `${dataDir}/quotes.db` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 2);
  assert.match(new TextDecoder().decode(output.stderr), /PORT.*"not-a-port"/);
});

Deno.test("trigger explains its usage and refuses unknown commands", async () => {
  const lines: string[] = [];
  assert.equal(await runTrigger([], { log: (l) => lines.push(l) }), 2);
  assert.match(lines[0], /Usage/);
  await assert.rejects(() => runTrigger(["explode"]), /Unknown command "explode"/);
  await assert.rejects(() => runTrigger(["emit", "--ticks", "x"]), /--ticks must be an integer/);
  const unreachable: string[] = [];
  const code = await runTrigger(["health"], {
    baseUrl: `http://127.0.0.1:${freePort()}`,
    log: (l) => unreachable.push(l),
    error: (l) => unreachable.push(l),
  });
  assert.equal(code, 1);
  assert.match(unreachable[0], /cannot reach/);
});

Deno.test("deno task dev starts a redis-server when none answers and stops it on exit", async () => {
  const redisPort = freePort();
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/dev.ts"],
    env: {
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      PORT: String(port),
      CRON_ENABLED: "false",
      DATABASE_PATH: `${dataDir}/quotes.db`,
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  try {
    await waitForHealth(`http://127.0.0.1:${port}`, 30000);
    child.kill("SIGTERM");
    const status = await child.status;
    for (;;) {
      const { value, done } = await output.read();
      if (done) break;
      printed += value;
    }
    assert.equal(status.code, 0);
    assert.match(printed, new RegExp(`Starting redis-server on port ${redisPort}`));
    assert.match(printed, /deno task trigger emit --ticks 5/);
    assert.match(printed, /Stopped the session's redis-server/);
    const probe = await Deno.connect({ hostname: "127.0.0.1", port: redisPort }).then(
      (conn) => {
        conn.close();
        return "listening";
      },
      () => "closed",
    );
    assert.equal(probe, "closed", "the session's redis-server is gone");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await output.cancel().catch(() => {});
  }
});

Deno.test("main tests leave their data directory behind in a temp dir only", async () => {
  await Deno.remove(dataDir, { recursive: true });
});
