import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { drainAll, drainOne } from "../functions/drain.ts";
import type { Analysis } from "../shared/market/analysis.ts";
import { technicalAnalysis } from "../shared/groups/technical_analysis.ts";
import { type Config, loadConfig } from "../shared/config.ts";
import { consumerName, resetGroupCache } from "../shared/queue/mod.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import type { Deps } from "../shared/http.ts";
import { acquireLease, releaseLease } from "../shared/queue/mod.ts";
import { fieldsToRecord } from "../shared/market/quotes.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";
import { compareIds, openStream, type StreamEntry } from "../shared/queue/mod.ts";
import {
  actualOutcome,
  assertMatchesReference,
  quoteFeed,
  readAllEntries,
  referenceDeps,
  referenceEnv,
  referencePass,
  settingsOf,
} from "./_reference.ts";
import { drainDeps } from "./_deps.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { drainStockGroup } from "./_deps.ts";
import { GROUPS } from "../shared/groups/registry.ts";
import { stockKeys } from "../shared/stock_queue.ts";

const TECHNICAL: Analysis = technicalAnalysis;
const GROUP = TECHNICAL.group;

interface Fixture {
  redis: Redis;
  config: Config;
  deps: Deps;
  entries: StreamEntry[];
}

/** Flushes the test server and emits `ticks` x 8 seeded quotes. */
async function fixture(
  server: TestRedis,
  redis: Redis,
  ticks: number,
  claimIdleMs = 20,
): Promise<Fixture> {
  await server.flush();
  resetGroupCache();
  const config = loadConfig(referenceEnv(server, { CLAIM_IDLE_MS: String(claimIdleMs) }));
  const deps = referenceDeps(config, [redis]);
  await quoteFeed(deps, 7).emit(ticks);
  return { redis, config, deps, entries: await readAllEntries(redis, config.streamKey) };
}

/** technicalAnalysis, but throwing for the quotes whose `symbol@timestamp` is in `failing`. */
function failingOn(failing: Set<string>): Analysis {
  return {
    group: GROUP,
    step(state, { quote, settings }) {
      if (failing.has(`${quote.symbol}@${quote.timestamp}`)) {
        throw new Error(`handler failed on ${quote.symbol} ${quote.datetime}`);
      }
      return TECHNICAL.step(state, { quote, settings });
    },
  };
}

function symbolOf(entry: StreamEntry): string {
  return fieldsToRecord(entry.fields).symbol;
}

/** Identifies a quote by symbol and time: the quotes of one tick share a time. */
function quoteKey(entry: StreamEntry): string {
  const record = fieldsToRecord(entry.fields);
  return `${record.symbol}@${Number(record.timestamp)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("the drain engine", async (t) => {
  const server = await startRedis();
  const redis = createRedis(server.url);
  try {
    await t.step(
      "a drain acks only entries whose handler succeeded and holds back later entries of the failing symbol",
      async () => {
        const { config, entries } = await fixture(server, redis, 5);
        const tsla = entries.filter((e) => symbolOf(e) === "TSLA");
        const failed = tsla[1];
        const heldBack = tsla.slice(2);
        const processor = failingOn(new Set([quoteKey(failed)]));

        const result = await drainStockGroup(drainDeps(config, redis), processor, {
          count: 100,
          maxChunks: 1,
        });

        assert.equal(result.read, 40);
        assert.equal(result.failed, 1);
        assert.equal(result.deferred, heldBack.length);
        assert.equal(result.acked, 40 - 1 - heldBack.length);
        assert.equal(result.more, true);
        const pending = await openStream(redis, config.streamKey).group(GROUP).pendingEntries();
        assert.deepEqual(pending.map((p) => p.id), [failed, ...heldBack].map((e) => e.id));
        // TSLA stopped right before its failing quote; every other symbol went on.
        const expectedBefore = referencePass(
          entries.filter((e) => symbolOf(e) !== "TSLA" || compareIds(e.id, failed.id) < 0),
          { analyses: [technicalAnalysis], settings: settingsOf(config) },
        )[GROUP];
        const actual = (await actualOutcome({ redis, config }, [GROUP]))[GROUP];
        assert.deepEqual(actual.states, expectedBefore.states);
        assert.deepEqual(actual.alerts, expectedBefore.alerts);
      },
    );

    await t.step(
      "a retried entry is applied before the entries it held back, so the group equals one serial pass",
      async () => {
        const { config, entries } = await fixture(server, redis, 5, 400);
        const failed = entries.filter((e) => symbolOf(e) === "NVDA")[0];
        const failing = new Set([quoteKey(failed)]);
        const processor = failingOn(failing);
        // Two ticks: NVDA's first quote fails and holds back its second.
        const first = await drainStockGroup(drainDeps(config, redis), processor, {
          count: 16,
          maxChunks: 1,
        });
        assert.equal(first.failed, 1);
        assert.equal(first.deferred, 1);
        assert.equal(first.acked, 14);
        failing.clear();

        // A drain whose budget ends before the failed entry's retry is due
        // reads nothing past it.
        const early = await drainStockGroup(drainDeps(config, redis), processor, {
          count: 100,
          budgetMs: 100,
        });
        assert.equal(early.read, 0);
        assert.equal(early.more, true);
        assert.equal(early.lag, 24);

        await sleep(config.claimIdleMs + 50);
        const retry = await drainStockGroup(drainDeps(config, redis), processor, {
          count: 100,
          budgetMs: 5000,
        });

        assert.equal(retry.claimed, 2);
        assert.equal(retry.acked, 26);
        assert.equal(retry.more, false);
        const delivered = await openStream(redis, config.streamKey).group(GROUP).pendingEntries();
        assert.equal(delivered.length, 0);
        await assertMatchesReference({ redis, config }, [technicalAnalysis]);
      },
    );

    await t.step(
      "a drain retries a failed entry after RETRY_DELAY_MS with backoff, within its budget, and dead-letters it after MAX_DELIVERIES",
      async () => {
        await server.flush();
        resetGroupCache();
        const config = loadConfig(referenceEnv(server, {
          CLAIM_IDLE_MS: "60000",
          RETRY_DELAY_MS: "40",
          MAX_DELIVERIES: "3",
        }));
        await quoteFeed(referenceDeps(config, [redis]), 7).emit(3);
        const entries = await readAllEntries(redis, config.streamKey);
        const poison = entries.filter((e) => symbolOf(e) === "AAPL")[0];
        const transient = entries.filter((e) => symbolOf(e) === "MSFT")[0];
        const calls = new Map<string, number[]>();
        const started = Date.now();
        const processor: Analysis = {
          group: GROUP,
          step(state, input) {
            const key = `${input.quote.symbol}@${input.quote.timestamp}`;
            const times = calls.get(key) ?? [];
            times.push(Date.now() - started);
            calls.set(key, times);
            // The poison entry always fails; the transient one fails once.
            if (key === quoteKey(poison) || (key === quoteKey(transient) && times.length === 1)) {
              throw new Error(`handler failed on ${key}`);
            }
            return TECHNICAL.step(state, input);
          },
        };

        const result = await drainStockGroup(drainDeps(config, redis), processor, {
          budgetMs: 5000,
        });

        // Retries came after 40 ms, then 80 ms, not after CLAIM_IDLE_MS (60 s).
        const poisonTimes = calls.get(quoteKey(poison))!;
        assert.equal(poisonTimes.length, 3, "MAX_DELIVERIES handler attempts");
        assert.ok(poisonTimes[1] - poisonTimes[0] >= 40, `first retry ${poisonTimes}`);
        assert.ok(poisonTimes[2] - poisonTimes[1] >= 80, `second retry ${poisonTimes}`);
        assert.ok(poisonTimes[2] < 4000, `all within the budget ${poisonTimes}`);
        assert.equal(calls.get(quoteKey(transient))!.length, 2);
        assert.equal(result.deadLettered, 1);
        assert.equal(result.acked, entries.length);
        assert.equal(result.more, false);
        assert.equal((await openStream(redis, config.streamKey).group(GROUP).pending()).count, 0);
        // Everything but the dead-lettered entry was applied, in order.
        const expected = referencePass(
          entries.filter((e) => e.id !== poison.id),
          { analyses: [technicalAnalysis], settings: settingsOf(config) },
        )[GROUP];
        const actual = (await actualOutcome({ redis, config }, [GROUP]))[GROUP];
        assert.deepEqual(actual.states, expected.states);
        assert.deepEqual(actual.alerts, expected.alerts);
      },
    );

    await t.step(
      "entries left by a dead consumer still wait CLAIM_IDLE_MS, however short RETRY_DELAY_MS is",
      async () => {
        await server.flush();
        resetGroupCache();
        const config = loadConfig(referenceEnv(server, {
          CLAIM_IDLE_MS: "60000",
          RETRY_DELAY_MS: "10",
        }));
        await quoteFeed(referenceDeps(config, [redis]), 7).emit(2);
        const group = openStream(redis, config.streamKey).group(GROUP);
        await group.ensure();
        const taken = await group.read("dead-consumer", { count: 5 });
        assert.equal(taken.length, 5);
        const result = await drainStockGroup(drainDeps(config, redis), technicalAnalysis, {
          budgetMs: 500,
        });
        assert.equal(result.read, 0, "nothing overtakes the dead consumer's entries");
        assert.equal(result.more, true);
        const pending = await group.pendingEntries();
        assert.deepEqual(pending.map((p) => p.consumer), Array(5).fill("dead-consumer"));
      },
    );

    await t.step(
      "a drain stops starting chunks when the next one might not finish in time",
      async () => {
        const { config } = await fixture(server, redis, 5);
        let clock = 1_000_000;
        // Every quote takes 10 ms of the injected clock, so a 10-entry chunk takes 100 ms.
        const slow: Analysis = {
          group: GROUP,
          step(state, { quote, settings }) {
            clock += 10;
            return TECHNICAL.step(state, { quote, settings });
          },
        };

        const result = await drainStockGroup(
          { ...drainDeps(config, redis), now: () => clock },
          slow,
          {
            count: 10,
            budgetMs: 350,
          },
        );

        // After 3 chunks 300 ms are spent and a 4th (100 ms) could end past 350 ms.
        assert.equal(result.read, 30);
        assert.equal(result.acked, 30);
        assert.equal(result.durationMs, 300);
        assert.ok(result.durationMs <= result.budgetMs);
        assert.equal(result.lag, 10);
        assert.equal(result.more, true);
        const group = (await openStream(redis, config.streamKey).groups()).find((g) =>
          g.name === GROUP
        );
        assert.equal(group?.pending, 0);
      },
    );

    await t.step(
      "a drain with room in its budget goes on until the group is caught up",
      async () => {
        const { config } = await fixture(server, redis, 5);
        let clock = 0;
        const slow: Analysis = {
          group: GROUP,
          step(state, { quote, settings }) {
            clock += 10;
            return TECHNICAL.step(state, { quote, settings });
          },
        };
        const result = await drainStockGroup(
          { ...drainDeps(config, redis), now: () => clock },
          slow,
          {
            count: 10,
            budgetMs: 1000,
          },
        );
        assert.equal(result.acked, 40);
        assert.equal(result.lag, 0);
        assert.equal(result.more, false);
      },
    );

    await t.step(
      "a process drains as one consumer per trigger whose name says where it ran",
      async () => {
        const { config, deps } = await fixture(server, redis, 1);
        const host = Deno.hostname();
        const names = new Set(Array.from({ length: 50 }, () => consumerName("drain")));
        assert.deepEqual([...names], [`drain@${host}:${Deno.pid}`]);
        // On Deno Deploy the deployment id names the place instead of the host.
        assert.equal(
          consumerName("cron", { deploymentId: "dep42" }),
          `cron@deploy-dep42:${Deno.pid}`,
        );

        const http = await drainOne(deps, GROUP, { count: 3 });
        assert.equal(http.consumer, `http@${host}:${Deno.pid}`);
        const again = await drainOne(deps, GROUP, { count: 3 });
        assert.equal(again.consumer, http.consumer);
        const crons = await drainAll(deps, { budgetMs: 1000 });
        for (const r of crons) {
          assert.ok(!("error" in r), JSON.stringify(r));
          assert.equal(r.consumer, `cron@${host}:${Deno.pid}`);
        }
        const consumers = await openStream(redis, config.streamKey).group(GROUP).consumers();
        assert.deepEqual(
          consumers.map((c) => c.name).sort(),
          [http.consumer, `cron@${host}:${Deno.pid}`].sort(),
        );
      },
    );

    await t.step(
      "a drain reports busy and does nothing while another invocation holds the group's lease",
      async () => {
        const { config } = await fixture(server, redis, 5);
        const lease = await acquireLease(redis, stockKeys(config).lease(GROUP), {
          ttlMs: 10_000,
        });
        assert.ok(lease);

        const busy = await drainStockGroup(drainDeps(config, redis), technicalAnalysis, {
          count: 100,
        });

        assert.equal(busy.busy, true);
        assert.equal(busy.read, 0);
        assert.equal(busy.acked, 0);
        assert.equal(busy.lag, 40);
        assert.equal(busy.more, true);
        assert.equal(await redis.hlen(stockKeys(config).state(GROUP)), 0);
        const group = (await openStream(redis, config.streamKey).groups()).find((g) =>
          g.name === GROUP
        );
        assert.equal(group?.pending, 0);

        assert.equal(await releaseLease(redis, lease), true);
        const free = await drainStockGroup(drainDeps(config, redis), technicalAnalysis, {
          count: 100,
        });
        assert.equal(free.busy, false);
        assert.equal(free.acked, 40);
        await assertMatchesReference({ redis, config }, [technicalAnalysis]);
      },
    );

    await t.step("a drain of every group catches each one up to one serial pass", async () => {
      const { config, deps } = await fixture(server, redis, 20);
      const results = await drainAll(deps, { budgetMs: 5000, count: 7 });
      for (const r of results) assert.ok(!("error" in r) && !r.more, JSON.stringify(r));
      const check = await assertMatchesReference({ redis, config }, GROUPS);
      assert.equal(check.entries, 160);
    });
  } finally {
    await closeQuoteStores();
    await closeRedis(redis);
    await server.stop();
  }
});
