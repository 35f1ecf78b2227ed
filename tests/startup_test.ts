import assert from "node:assert/strict";
import { freePort, startRedis } from "./_redis_server.ts";

const decoder = new TextDecoder();

/** A main.ts child with piped output, its quote store in `dir`. */
function spawnMain(env: Record<string, string>, dir: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { DATABASE_PATH: `${dir}/quotes.db`, CRON_ENABLED: "false", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Collects a stream's text while the test runs. */
function collect(stream: ReadableStream<Uint8Array>): { text(): string; done: Promise<void> } {
  let text = "";
  const done = stream.pipeTo(
    new WritableStream({
      write(chunk) {
        text += decoder.decode(chunk);
      },
    }),
  ).catch(() => {});
  return { text: () => text, done };
}

async function waitFor(url: string, status: number, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: Response | undefined;
  while (Date.now() < deadline) {
    try {
      last = await fetch(url);
      if (last.status === status) return last;
      await last.body?.cancel();
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last ${last?.status})`);
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at .*:\d+:\d+/m, `a stack trace was printed:\n${text}`);
}

Deno.test("main.ts on a port in use prints one line naming the port and PORT and exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-start-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const child = spawnMain(
      { PORT: String(port), REDIS_URL: `redis://127.0.0.1:${freePort()}` },
      dir,
    );
    const out = await child.output();
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(
      stderr,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port} as the port is in use.*PORT`),
    );
    assertNoStack(stderr);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts with bad settings prints every problem on its own line, secrets redacted, and exits 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-start-" });
  try {
    const out = await spawnMain({
      EMIT_SCHEDULE: "0 0 31 2 *",
      DRAIN_SCHEDULE: "99 * * * *",
      REDIS_URL: "http://user:topsecret1@host",
      CLAIM_IDLE_MS: "1000",
    }, dir).output();
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 4, stderr);
    assert.ok(lines.some((l) => l.startsWith("Cannot read EMIT_SCHEDULE")));
    assert.ok(lines.some((l) => l.startsWith("Cannot read DRAIN_SCHEDULE")));
    assert.ok(lines.some((l) => l.startsWith("Cannot read REDIS_URL")));
    assert.ok(lines.some((l) => l.startsWith("Cannot read CLAIM_IDLE_MS")));
    assert.doesNotMatch(stderr, /topsecret1/);
    assertNoStack(stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a wrong Redis password gives 503 naming the credentials everywhere and the password appears in no log line or response", async () => {
  const password = "correct-horse-9";
  const wrong = "wrong-battery-7";
  const redis = await startRedis({ password });
  const dir = await Deno.makeTempDir({ prefix: "tickstream-start-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnMain({
    PORT: String(port),
    REDIS_URL: `redis://default:${wrong}@127.0.0.1:${redis.port}`,
    CRON_ENABLED: "true",
    DENO_CRON_TEST_SCHEDULE_OFFSET: "300",
  }, dir);
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  const bodies: string[] = [];
  try {
    const health = await waitFor(`${base}/health`, 503, 20000);
    const body = await health.json();
    bodies.push(JSON.stringify(body));
    assert.equal(body.redis, "credentials");
    assert.equal(body.reason, "Redis rejected the credentials in REDIS_URL");
    const json = { "content-type": "application/json" };
    for (
      const [method, path] of [
        ["POST", "/emit-quotes"],
        ["POST", "/drain/price-alerts"],
        ["GET", "/report"],
        ["GET", "/api/stocks"],
        ["GET", "/api/stocks/AAPL"],
        ["GET", "/dead-letters"],
        ["GET", "/live"],
      ]
    ) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: json,
        body: method === "POST" ? "{}" : undefined,
      });
      const text = await res.text();
      bodies.push(text);
      assert.equal(res.status, 503, `${path}: ${text}`);
      assert.ok(Number(res.headers.get("retry-after")) >= 1, path);
      assert.match(text, /Redis rejected the credentials in REDIS_URL/, path);
    }
    // Let a few cron runs fail too.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await Promise.all([stdout.done, stderr.done]);
    const logs = stdout.text() + stderr.text();
    assert.match(
      logs,
      /Redis rejected the credentials in REDIS_URL \(REDIS_URL redis:\/\/default:\*\*\*@/,
    );
    for (const text of [logs, ...bodies]) {
      assert.ok(!text.includes(wrong), `the password leaked:\n${text}`);
      assert.ok(!text.includes(password));
    }
    assertNoStack(logs);
    // Failures are rate-limited: a cron minute does not repeat the same line.
    const repeats = logs.split("\n").filter((l) => l.includes("credentials")).length;
    assert.ok(repeats <= 4, logs);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM mid-drain answers the drain normally, releases the lease and exits 0", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-start-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnMain({ PORT: String(port), REDIS_URL: redis.url, MAX_LAG: "10000000" }, dir);
  const stderr = collect(child.stderr);
  const stdout = collect(child.stdout);
  const json = { "content-type": "application/json" };
  try {
    await waitFor(`${base}/health`, 200, 20000);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/emit-quotes`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ ticks: 1000 }),
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    const total = 3 * 1000 * 8;
    // Small chunks keep this drain busy for many seconds.
    const drain = fetch(`${base}/drain/technical-analysis`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ count: 5, budgetMs: 30000 }),
    });
    const client = redis.client();
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (await client.exists("stock_quotes:lease:technical-analysis")) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const signalled = performance.now();
    child.kill("SIGTERM");
    const res = await drain;
    const body = await res.json();
    const status = await child.status;
    const elapsed = performance.now() - signalled;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.group, "technical-analysis");
    assert.ok(body.acked > 0 && body.acked < total, `acked ${body.acked}`);
    assert.equal(status.code, 0);
    assert.ok(elapsed < 9000, `stopped in ${elapsed.toFixed(0)} ms`);
    assert.equal(await client.exists("stock_quotes:lease:technical-analysis"), 0, "lease released");
    const pending = await client.xpending("stock_quotes", "technical-analysis") as unknown[];
    assert.equal(pending[0], 0, "the last chunk committed before the stop");
    await Promise.all([stderr.done, stdout.done]);
    assertNoStack(stderr.text());
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task dev tells a Redis that wants a password from no Redis and says what to set", async () => {
  const redis = await startRedis({ password: "dev-secret-42" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/dev.ts"],
      env: { REDIS_URL: `redis://127.0.0.1:${redis.port}`, PORT: String(freePort()) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /wants a password/);
    assert.match(stderr, /REDIS_URL=redis:\/\/:PASSWORD@127\.0\.0\.1:/);
    assert.doesNotMatch(decoder.decode(out.stdout), /Starting redis-server/);
    assertNoStack(stderr);
  } finally {
    await redis.stop();
  }
});
