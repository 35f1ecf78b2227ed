import assert from "node:assert/strict";
import { emitPaced, emitQuotes } from "../functions/emit_quotes.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { decodeQuote, type Quote } from "../shared/market/quotes.ts";
import { freePort, startRedis } from "./_redis_server.ts";
import { testDeps } from "./_deps.ts";

const server = await startRedis();
const START = Date.UTC(2024, 0, 2, 15, 0, 0);

/** A fake clock the test moves, and a sleep that moves it instead of waiting. */
function fakeTime(start: number) {
  const clock = { ms: start, slept: [] as number[] };
  return {
    clock,
    now: () => clock.ms,
    sleep(ms: number): Promise<void> {
      clock.slept.push(ms);
      clock.ms += ms;
      return Promise.resolve();
    },
  };
}

async function quotes(): Promise<Quote[]> {
  const entries = await server.client().xrange("stock_quotes", "-", "+");
  return entries.map(([, fields]) => decodeQuote(fields));
}

async function fresh(now: () => number) {
  await server.flush();
  resetGroupCache();
  return testDeps(server.url, server.client(), { now, env: { SYMBOLS: "AAPL,MSFT" } });
}

Deno.test("the paced emit sends one tick per interval for its budget, each stamped with the clock", async () => {
  const time = fakeTime(START);
  const deps = await fresh(time.now);
  const result = await emitPaced(deps, { budgetMs: 5000, sleep: time.sleep });
  assert.equal(result.ticks, 5);
  assert.equal(result.emitted, 10);
  assert.deepEqual(time.clock.slept, [1000, 1000, 1000, 1000]);
  const all = await quotes();
  assert.equal(all.length, 10);
  const times = [...new Set(all.map((q) => Date.parse(q.datetime)))];
  assert.deepEqual(times, [0, 1000, 2000, 3000, 4000].map((ms) => START + ms));
  assert.deepEqual(
    [...new Set(all.map((q) => q.timestamp))],
    [0, 1, 2, 3, 4].map((s) => START / 1000 + s),
  );
});

Deno.test("the paced emit uses the default settings: TICK_INTERVAL_MS 1000 and EMIT_BUDGET_MS 59000", async () => {
  const time = fakeTime(START);
  const deps = await fresh(time.now);
  assert.equal(deps.config.tickIntervalMs, 1000);
  assert.equal(deps.config.emitBudgetMs, 59000);
  const result = await emitPaced(deps, { sleep: time.sleep });
  // Slots at 0 s .. 58 s: the run ends before the next minute's cron starts.
  assert.equal(result.ticks, 59);
  const all = await quotes();
  assert.equal(Date.parse(all.at(-1)!.datetime), START + 58_000);
});

Deno.test("a slow tick makes the paced emit skip the slots it missed instead of bunching ticks", async () => {
  const time = fakeTime(START);
  const deps = await fresh(time.now);
  const result = await emitPaced(deps, {
    budgetMs: 6000,
    async sleep(ms) {
      await time.sleep(ms);
      // The wait before the second tick overruns by 2.5 s, as a stalled isolate would.
      if (time.clock.slept.length === 1) time.clock.ms += 2500;
    },
  });
  const times = [...new Set((await quotes()).map((q) => Date.parse(q.datetime) - START))];
  // Slot 1 ran late at 3.5 s; slots 2 and 3 were missed, so the next tick is at 4 s.
  assert.deepEqual(times, [0, 3500, 4000, 5000]);
  assert.equal(result.ticks, 4);
});

Deno.test("an aborted signal ends the paced emit before its next tick", async () => {
  const time = fakeTime(START);
  const deps = await fresh(time.now);
  const controller = new AbortController();
  const result = await emitPaced(deps, {
    budgetMs: 60_000,
    signal: controller.signal,
    async sleep(ms) {
      await time.sleep(ms);
      if (time.clock.slept.length === 3) controller.abort();
    },
  });
  assert.equal(result.ticks, 3);
  assert.equal((await quotes()).length, 6);
});

Deno.test("a paced emit with the real sleep waits between ticks and stops at once on abort", async () => {
  const deps = await fresh(Date.now);
  const controller = new AbortController();
  const started = Date.now();
  const run = emitPaced(deps, { budgetMs: 60_000, intervalMs: 200, signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 500));
  controller.abort();
  const result = await run;
  assert.ok(result.ticks >= 2, `ticks: ${result.ticks}`);
  assert.ok(Date.now() - started < 30_000, "the abort ended the run");
  const times = (await quotes()).map((q) => Date.parse(q.datetime));
  for (let i = 2; i < times.length; i += 2) {
    assert.ok(times[i] - times[i - 2] >= 150, "ticks are paced, not bunched");
  }
});

Deno.test("a bulk emit right after paced ticks stays one fast call and shares the time since evenly", async () => {
  const time = fakeTime(START);
  const deps = await fresh(time.now);
  await emitPaced(deps, { budgetMs: 2000, sleep: time.sleep });
  time.clock.ms += 500;
  const result = await emitQuotes(deps, { ticks: 100 });
  assert.equal(result.emitted, 200);
  const all = await quotes();
  const burst = all.slice(4).map((q) => Date.parse(q.datetime));
  // The previous tick was at 1 s; the 100 ticks share the 500 ms since, 5 ms apart.
  assert.equal(burst[0], START + 1005);
  assert.equal(burst.at(-1), START + 1500);
  for (let i = 2; i < burst.length; i += 2) assert.equal(burst[i] - burst[i - 2], 5);
});

Deno.test("a fresh main.ts moves every second before its first cron run", async () => {
  await server.flush();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    env: {
      REDIS_URL: server.url,
      PORT: String(freePort()),
      CRON_ENABLED: "true",
      DATABASE_PATH: ":memory:",
      DATABASE_URL: "",
      DENO_DEPLOYMENT_ID: "",
      SYMBOLS: "AAPL,MSFT",
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let seconds = new Set<number>();
    const deadline = Date.now() + 30_000;
    while (seconds.size < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      seconds = new Set((await quotes()).map((q) => q.timestamp));
    }
    assert.ok(seconds.size >= 3, `ticks in ${seconds.size} seconds`);
    const times = [...new Set((await quotes()).map((q) => Date.parse(q.datetime)))];
    // One tick per TICK_INTERVAL_MS on a fixed grid: a tick the machine delayed is followed by
    // one on time, sooner than a second after it, but the ticks never come in a burst and
    // never more often than the grid allows.
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i] - times[i - 1] >= 50, `ticks ${times[i] - times[i - 1]} ms apart`);
    }
    const span = times[times.length - 1] - times[0];
    assert.ok(span >= (times.length - 2) * 1000, `${times.length} ticks in ${span} ms`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});

Deno.test({
  name: "paced emit tests close their redis-server",
  async fn() {
    await server.stop();
  },
});
