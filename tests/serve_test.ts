import assert from "node:assert/strict";
import { freePort, startRedis } from "./_redis_server.ts";

async function waitForHealth(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${base}/health`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }).catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Cannot reach ${base}/health within ${timeoutMs} ms`);
}

Deno.test("deno serve --parallel serves main.ts from every worker and runs each cron in one worker only", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-serve-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "serve",
      "-A",
      "--parallel",
      "--unstable-cron",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "main.ts",
    ],
    env: {
      REDIS_URL: redis.url,
      DATABASE_PATH: `${dir}/quotes.db`,
      LOG_FORMAT: "json",
      // One tick per emit run, and Deno's local runner fires each cron every 500 ms.
      EMIT_BUDGET_MS: "0",
      DENO_CRON_TEST_SCHEDULE_OFFSET: "500",
      DENO_JOBS: "2",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]).then((parts) => parts.join("\n"));
  try {
    await waitForHealth(base, 20000);
    // Requests land on both workers; each answers from the same app.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${base}/api/queue`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    const client = redis.client();
    const deadline = Date.now() + 15000;
    while (
      Date.now() < deadline && Number(await client.hget("stock_quotes:counters", "emitted")) < 40
    ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const log = await output;
  assert.equal(status.code, 0, log.slice(-2000));
  assert.match(log, /with 2 threads/);
  // Every cron run logs a line; under deno serve each line names its worker.
  const cronLines = log.split("\n").filter((l) =>
    /Emitted \d+ quotes|Drained group .*"trigger":"cron"/.test(l)
  );
  const workers = new Set(cronLines.map((l) => /^\[(serve-worker-\d+)\s*\]/.exec(l)?.[1]));
  assert.ok(cronLines.length >= 4, `only ${cronLines.length} cron lines:\n${log.slice(-2000)}`);
  assert.equal(workers.size, 1, `cron runs came from ${[...workers].join(", ")}`);
  const emitted = Number(await redis.client().hget("stock_quotes:counters", "emitted"));
  assert.ok(emitted >= 40, `emitted ${emitted}`);
  // The process's cron lock is gone with it.
  for await (const entry of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
    assert.ok(!entry.name.startsWith(`tickstream-cron-${child.pid}-`), entry.name);
  }
  await redis.stop();
  await Deno.remove(dir, { recursive: true });
});
