import type { SinkGroup } from "../shared/groups/group.ts";
import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { type DrainResult, resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { openStream } from "../shared/queue/mod.ts";
import { drainDeps, testDeps } from "./_deps.ts";
import { startRedis } from "./_redis_server.ts";
import { assertMatchesReference } from "./_reference.ts";
import { drainStockGroup } from "./_deps.ts";
import { GROUPS } from "../shared/groups/registry.ts";

const CLAIM_IDLE_MS = 300;
/** Group whose chunk the outage cuts; the background drains leave it alone until the end. */
const CUT_GROUP = "technical-analysis";
const CUT_CONSUMER = "cut-by-outage";
const CUT_COUNT = 10;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function post(body: unknown = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}

interface EmitRecord {
  status: number;
  body: { emitted?: number; firstId?: string; lastId?: string; error?: string };
  /** True when the request was sent after the restart was complete. */
  afterRestart: boolean;
}

Deno.test("redis-server killed and restarted mid emits and drains loses no 200-answered emit and processes every entry exactly once", async () => {
  const redis = await startRedis({ durable: true });
  const client = createRedis(redis.url);
  const stop = { now: false };
  const loops: Promise<void>[] = [];
  try {
    resetGroupCache();
    const deps = testDeps(redis.url, client, {
      env: { CLAIM_IDLE_MS: String(CLAIM_IDLE_MS), DATABASE_PATH: ":memory:" },
    });
    const { config } = deps;
    const app = createApp(deps);
    const emits: EmitRecord[] = [];
    const drainStatuses: number[] = [];
    let restarted = false;

    // Background traffic: emits, and drains of every group but the one the outage cuts.
    loops.push((async function emitLoop() {
      while (!stop.now) {
        const afterRestart = restarted;
        const res = await app.request("/emit-quotes", post({ ticks: 2 }));
        emits.push({ status: res.status, body: await res.json(), afterRestart });
        await sleep(res.status === 200 ? 10 : 50);
      }
    })());
    loops.push((async function drainLoop() {
      while (!stop.now) {
        for (const group of GROUP_NAMES.filter((g) => g !== CUT_GROUP)) {
          const res = await app.request(`/drain/${group}`, post({ budgetMs: 200, count: 20 }));
          drainStatuses.push(res.status);
          await res.body?.cancel();
        }
        await sleep(20);
      }
    })());
    while (emits.filter((e) => e.status === 200).length < 5) await sleep(10);

    // The outage hits while a drain of CUT_GROUP holds a chunk it has read but not committed.
    const cutIds: string[] = [];
    const cut: SinkGroup = {
      group: CUT_GROUP,
      async write(_context, entries) {
        cutIds.push(...entries.map((e) => e.id));
        await redis.kill();
      },
    };
    await assert.rejects(
      drainStockGroup(drainDeps(config, client), cut, {
        count: CUT_COUNT,
        maxChunks: 1,
        consumer: CUT_CONSUMER,
      }),
    );
    assert.equal(cutIds.length, CUT_COUNT);

    // While it is down every function answers 503 quickly with a JSON error.
    const downAt = performance.now();
    for (
      const [path, init] of [
        ["/emit-quotes", post({ ticks: 2 })],
        ["/emit-quotes", {
          ...post({ ticks: 1 }),
          headers: { "content-type": "application/json", "Idempotency-Key": "outage-1" },
        }],
        ["/drain/price-alerts", post({ budgetMs: 500 })],
        ["/report", { method: "GET" }],
        ["/health", { method: "GET" }],
      ] as const
    ) {
      const started = performance.now();
      const res = await app.request(path, init);
      const elapsed = performance.now() - started;
      assert.equal(res.status, 503, path);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      const body = await res.json();
      assert.ok(Number(res.headers.get("retry-after")) >= 1, `${path} Retry-After`);
      if (path === "/health") {
        assert.deepEqual(body, {
          status: "degraded",
          redis: "down",
          reason: "Redis is unavailable: it cannot be reached",
          stalled: [],
        });
      } else assert.match(body.error, /^Redis is unavailable: /, path);
      assert.ok(elapsed < 2500, `${path} answered in ${elapsed.toFixed(0)} ms`);
    }
    // Long enough that the background traffic saw failures too.
    await sleep(Math.max(0, 1000 - (performance.now() - downAt)));

    await redis.restart();
    let health = 0;
    for (let i = 0; i < 100 && health !== 200; i++) {
      const res = await app.request("/health");
      health = res.status;
      if (health === 200) {
        assert.deepEqual(await res.json(), { status: "ok", redis: "up", stalled: [] });
      } else await sleep(100);
    }
    assert.equal(health, 200, "the same app recovered without a restart");
    restarted = true;

    // appendfsync always kept the cut chunk's delivery: it is still pending for the dead consumer.
    const held = await openStream(client, config.streamKey).group(CUT_GROUP).pendingEntries({
      consumer: CUT_CONSUMER,
    });
    assert.deepEqual(held.map((p) => p.id), cutIds);
    assert.ok(held.every((p) => p.deliveries === 1));

    while (emits.filter((e) => e.status === 200 && e.afterRestart).length < 5) await sleep(10);
    stop.now = true;
    await Promise.all(loops);
    loops.length = 0;

    assert.ok(emits.some((e) => e.status !== 200), "some emits failed during the outage");
    for (const e of emits) {
      assert.ok([200, 503].includes(e.status), `emit answered ${e.status}: ${e.body.error}`);
    }
    assert.ok(drainStatuses.includes(200) && drainStatuses.includes(503));
    assert.ok(drainStatuses.every((s) => s === 200 || s === 503), `${drainStatuses}`);

    // Drain every group to completion through the app; the cut chunk is reclaimed after CLAIM_IDLE_MS.
    const results: DrainResult[] = [];
    for (let round = 0; round < 50; round++) {
      let more = false;
      for (const group of GROUP_NAMES) {
        const res = await app.request(`/drain/${group}`, post({ budgetMs: 2000 }));
        assert.equal(res.status, 200, group);
        const result = await res.json() as DrainResult;
        results.push(result);
        more ||= result.more || result.busy;
      }
      if (!more) break;
      await sleep(CLAIM_IDLE_MS / 2);
    }
    const reclaimed = results.filter((r) => r.group === CUT_GROUP)
      .reduce((n, r) => n + r.claimed, 0);
    assert.ok(reclaimed >= CUT_COUNT, `${CUT_GROUP} reclaimed ${reclaimed} entries`);
    assert.deepEqual(
      await openStream(client, config.streamKey).group(CUT_GROUP).pendingEntries({
        consumer: CUT_CONSUMER,
      }),
      [],
    );

    // Every emit that answered 200 is in the stream, whole, with its own ids.
    const ok = emits.filter((e) => e.status === 200);
    const seen = new Set<string>();
    for (const e of ok) {
      const entries = await client.xrange(config.streamKey, e.body.firstId!, e.body.lastId!);
      assert.equal(entries.length, e.body.emitted, `emit ${e.body.firstId}..${e.body.lastId}`);
      for (const [id] of entries) {
        assert.ok(!seen.has(id), `entry ${id} belongs to one emit`);
        seen.add(id);
      }
    }
    assert.equal(ok.reduce((n, e) => n + e.body.emitted!, 0), seen.size);
    assert.ok(await client.xlen(config.streamKey) >= seen.size);

    // Every group caught up, and its alerts and state equal one serial pass: exactly once, in order.
    for (const g of await openStream(client, config.streamKey).groups()) {
      assert.equal(g.pending, 0, `${g.name} pending`);
      assert.equal(g.lag, 0, `${g.name} lag`);
    }
    const alerts = await client.xrange(config.alertsKey, "-", "+");
    const keys = alerts.map(([, f]) => {
      const r: Record<string, string> = {};
      for (let i = 0; i < f.length; i += 2) r[f[i]] = f[i + 1];
      return `${r.source_id}|${r.type}|${r.group}`;
    });
    assert.equal(new Set(keys).size, keys.length, "no duplicate (source_id, type, group)");
    const check = await assertMatchesReference({ redis: client, config }, GROUPS);
    assert.ok(check.alerts > 0, "the comparison covers some alerts");
    assert.equal(check.alerts, alerts.length);
  } finally {
    stop.now = true;
    await Promise.allSettled(loops);
    await closeRedis(client);
    await closeQuoteStores();
    await redis.stop();
  }
});
