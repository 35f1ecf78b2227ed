import type { StockGroup } from "../shared/groups/group.ts";
import { hooked } from "./_hooked.ts";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { drainOne } from "../functions/drain.ts";
import { marketEvents } from "../shared/groups/market_events.ts";
import { technicalAnalysis } from "../shared/groups/technical_analysis.ts";
import type { Analysis } from "../shared/market/analysis.ts";
import { type Config, loadConfig } from "../shared/config.ts";
import { consumerName, type DrainResult, resetGroupCache } from "../shared/queue/mod.ts";
import { closeQuoteStores } from "../shared/store/quote_store.ts";
import type { Deps } from "../shared/http.ts";
import { acquireLease, type Lease, releaseLease } from "../shared/queue/mod.ts";
import { fieldsToRecord } from "../shared/market/quotes.ts";
import { closeRedis, createRedis, isRedisUnavailable } from "../shared/redis.ts";
import { createRandom } from "../shared/market/simulator.ts";
import { openStream } from "../shared/queue/mod.ts";
import {
  assertMatchesReference,
  groupsBehind,
  isSinkProcessor,
  type QuoteFeed,
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
const MARKET: Analysis = marketEvents;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Setup {
  config: Config;
  deps: Deps;
  feed: QuoteFeed;
}

async function setup(
  server: TestRedis,
  clients: Redis[],
  env: Record<string, string>,
  seed: number,
): Promise<Setup> {
  await server.flush();
  resetGroupCache();
  const config = loadConfig(referenceEnv(server, env));
  const deps = referenceDeps(config, clients);
  return { config, deps, feed: quoteFeed(deps, seed) };
}

/** Tallies of many drain results. */
interface Tally {
  drains: number;
  busy: number;
  claimed: number;
  /** Entries of chunks whose commit was refused (lost lease) or whose handler failed. */
  failed: number;
  acked: Map<string, number>;
  errors: unknown[];
}

function newTally(): Tally {
  return { drains: 0, busy: 0, claimed: 0, failed: 0, acked: new Map(), errors: [] };
}

function record(tally: Tally, result: DrainResult): void {
  tally.drains += 1;
  if (result.busy) tally.busy += 1;
  tally.claimed += result.claimed;
  tally.failed += result.failed;
  tally.acked.set(result.group, (tally.acked.get(result.group) ?? 0) + result.acked);
}

Deno.test("overlapping drains", async (t) => {
  const server = await startRedis();
  // Several connections, so that concurrent drains really interleave at the server.
  const clients = [createRedis(server.url), createRedis(server.url), createRedis(server.url)];
  const redis = clients[0];
  try {
    await t.step(
      "ten concurrent drains of every group, repeated, equal one serial pass",
      async () => {
        const { config, deps, feed } = await setup(server, clients, { CLAIM_IDLE_MS: "2000" }, 11);
        const random = createRandom(1);
        const all = GROUPS;
        const groups = all.map((p) => p.group);
        const tally = newTally();
        const batches = 25;
        for (let round = 0; round < 200; round++) {
          const work: Promise<unknown>[] = [];
          if (round < batches) work.push(feed.emit(10));
          for (const group of groups) {
            for (let i = 0; i < 10; i++) {
              const count = 5 + Math.floor(random() * 56);
              const budgetMs = random() < 0.5 ? undefined : Math.floor(random() * 40);
              work.push(drainOne(deps, group, { count, budgetMs }).then((r) => record(tally, r)));
            }
          }
          await Promise.all(work);
          if (round >= batches && (await groupsBehind({ redis, config }, groups)).length === 0) {
            break;
          }
        }
        assert.equal(feed.emitted, 2000);
        const check = await assertMatchesReference({ redis, config }, all);
        assert.equal(check.entries, 2000);
        assert.ok(check.alerts > 0, "the quotes produced no alert to check");
        assert.ok(tally.busy > 0, "no drain ever found the lease held: nothing overlapped");
        for (const group of groups) {
          // Each entry acknowledged exactly once over every drain of the group.
          assert.equal(tally.acked.get(group), 2000, `entries acked by ${group}`);
        }
      },
    );

    await t.step(
      "drains whose leases expire mid-chunk, and the drains that take over, still equal one serial pass",
      async () => {
        // CLAIM_IDLE_MS 50 gives the shortest lease (500 ms); slow steps and paused
        // commands outlast it, so commits get fenced and entries reclaimed.
        const { config, feed } = await setup(server, clients, { CLAIM_IDLE_MS: "50" }, 12);
        const random = createRandom(2);
        const base = GROUPS;
        const entriesWanted = 800;
        await feed.emit(20);
        const slowOnce = new Map<string, Set<number>>();
        const wrapped: StockGroup[] = base.map((p) => {
          if (isSinkProcessor(p)) return p;
          const analysis = p as Analysis;
          // One quote per group blocks the isolate past the lease's life, once.
          const pick = new Set<number>();
          slowOnce.set(p.group, pick);
          return {
            group: analysis.group,
            step(state, { quote, settings }) {
              if (pick.delete(quote.timestamp)) {
                const until = performance.now() + 600;
                while (performance.now() < until) { /* blocks, as a stuck isolate would */ }
              }
              return analysis.step(state, { quote, settings });
            },
          } satisfies Analysis;
        });
        const tally = newTally();
        let pauses = 0;
        let picked = 0;
        const picks = [...slowOnce.values()];
        for (let round = 0; round < 400; round++) {
          const work: Promise<unknown>[] = [];
          if (feed.emitted < entriesWanted) {
            await feed.emit(10);
            // Group g's slow quote is in a batch of its own, so the stalls rarely add up.
            const g = picked;
            if (g < picks.length && feed.emitted >= 280 + 120 * g) {
              picked += 1;
              const entries = await readAllEntries(redis, config.streamKey);
              picks[g].add(
                Number(fieldsToRecord(entries[entries.length - 20 + g].fields).timestamp),
              );
            }
          }
          for (const processor of wrapped) {
            for (let i = 0; i < 10; i++) {
              const delay = random() * 200;
              const count = 5 + Math.floor(random() * 36);
              const budgetMs = random() < 0.5 ? undefined : 50 + Math.floor(random() * 200);
              // About one drain in six pauses once at a random command, past its lease.
              let view: Redis = clients[i % clients.length];
              if (random() < 0.17) {
                const at = 1 + Math.floor(random() * 8);
                const pauseMs = 520 + Math.floor(random() * 280);
                let commands = 0;
                view = hooked(view, async () => {
                  commands += 1;
                  if (commands === at) {
                    pauses += 1;
                    await sleep(pauseMs);
                  }
                });
              }
              work.push(
                sleep(delay).then(() =>
                  drainStockGroup(drainDeps(config, view), processor, {
                    count,
                    budgetMs: budgetMs ?? 0,
                    maxChunks: budgetMs === undefined ? 1 : Infinity,
                    consumer: consumerName("overlap"),
                  })
                ).then((r) => record(tally, r), (error) => tally.errors.push(error)),
              );
            }
          }
          await Promise.all(work);
          if (feed.emitted >= entriesWanted) {
            const behind = await groupsBehind({ redis, config }, base.map((p) => p.group));
            if (behind.length === 0) break;
          }
        }
        for (const error of tally.errors) {
          assert.ok(isRedisUnavailable(error), `a drain failed: ${String(error)}`);
        }
        const check = await assertMatchesReference({ redis, config }, base);
        assert.equal(check.entries, entriesWanted);
        for (const pick of slowOnce.values()) assert.equal(pick.size, 0, "a slow quote never ran");
        assert.ok(pauses > 0);
        assert.ok(tally.failed > 0, "no commit was ever fenced: no lease expired mid-chunk");
        assert.ok(
          tally.claimed > 0,
          "no entry was ever reclaimed from a drain that lost its lease",
        );
        if (tally.errors.length === 0) {
          for (const p of base) assert.equal(tally.acked.get(p.group), entriesWanted, p.group);
        }
      },
    );

    await t.step("a drain that lost its lease commits nothing", async () => {
      const { config, feed } = await setup(server, clients, { CLAIM_IDLE_MS: "50" }, 13);
      await feed.emit(5);
      const entries = await readAllEntries(redis, config.streamKey);
      const wouldAlert = referencePass(entries.slice(0, 10), {
        analyses: [MARKET],
        settings: settingsOf(config),
      });
      assert.ok(wouldAlert[MARKET.group].alerts.length > 0, "the first chunk must make alerts");
      const leaseKeys = stockKeys(config).lease(MARKET.group);
      const key = leaseKeys.key;
      let stepped = false;
      let thief: Lease | null = null;
      const processor: Analysis = {
        group: MARKET.group,
        step(state, { quote, settings }) {
          stepped = true;
          return MARKET.step(state, { quote, settings });
        },
      };
      // Between processing and commit, the lease expires and another invocation takes it.
      const view = hooked(redis, async () => {
        if (stepped && thief === null) {
          await redis.del(key);
          thief = await acquireLease(redis, leaseKeys, { ttlMs: 10_000 });
        }
      });

      const result = await drainStockGroup(drainDeps(config, view), processor, {
        count: 10,
        budgetMs: 5000,
      });

      assert.ok(thief, "the lease was never taken over");
      assert.equal(result.read, 10);
      assert.equal(result.acked, 0);
      assert.equal(result.alerts, 0);
      assert.equal(result.failed, 10);
      assert.equal(result.more, true);
      assert.equal(await redis.xlen(config.alertsKey), 0);
      assert.equal(await redis.hlen(stockKeys(config).state(MARKET.group)), 0);
      // Its chunk stays pending, and so does the chunk it read ahead while the first ran.
      const pending = await openStream(redis, config.streamKey).group(MARKET.group)
        .pendingEntries();
      assert.deepEqual(pending.map((p) => p.id), entries.slice(0, 20).map((e) => e.id));
      // Its release did not free the lease of the invocation that took over.
      assert.equal(await redis.get(key), (thief as Lease).token);

      assert.equal(await releaseLease(redis, thief as Lease), true);
      await sleep(config.claimIdleMs + 30);
      const next = await drainStockGroup(drainDeps(config, redis), MARKET, {
        count: 100,
        budgetMs: 5000,
      });
      assert.equal(next.claimed, 20);
      assert.equal(next.acked, 40);
      await assertMatchesReference({ redis, config }, [MARKET]);
    });

    await t.step(
      "a drain that lost its lease takes no entries, so it cannot get ahead of the new holder",
      async () => {
        const { config, feed } = await setup(server, clients, { CLAIM_IDLE_MS: "50" }, 14);
        await feed.emit(5);
        const key = stockKeys(config).lease(TECHNICAL.group).key;
        let finishA!: () => void;
        const aFinished = new Promise<void>((resolve) => finishA = resolve);
        let pauseB!: () => void;
        const bPaused = new Promise<void>((resolve) => pauseB = resolve);
        let b: Promise<DrainResult> | undefined;
        let bCommands = 0;
        // B, once it holds the lease, runs one command, then waits until A is done.
        const viewB = hooked(redis, async () => {
          if ((await redis.exists(key)) === 0) return;
          bCommands += 1;
          if (bCommands === 2) {
            pauseB();
            await aFinished;
          }
        });
        let aPaused = false;
        // A, right after taking the lease, stalls until it has expired and B took over.
        const viewA = hooked(redis, async () => {
          if (aPaused || (await redis.exists(key)) === 0) return;
          aPaused = true;
          await redis.del(key);
          b = drainStockGroup(drainDeps(config, viewB), TECHNICAL, { count: 10, maxChunks: 1 });
          await bPaused;
        });

        const a = await drainStockGroup(drainDeps(config, viewA), TECHNICAL, {
          count: 10,
          maxChunks: 1,
        });
        finishA();
        const bResult = await b!;

        assert.equal(aPaused, true);
        assert.equal(bResult.busy, false);
        assert.equal(a.acked, 0);
        assert.equal(a.read, 0, "a drain without the lease was handed entries");
        assert.deepEqual(
          (await openStream(redis, config.streamKey).group(TECHNICAL.group).pendingEntries())
            .length,
          0,
        );
        await sleep(config.claimIdleMs + 30);
        await drainStockGroup(drainDeps(config, redis), TECHNICAL, { count: 100, budgetMs: 5000 });
        await assertMatchesReference({ redis, config }, [TECHNICAL]);
      },
    );
  } finally {
    await closeQuoteStores();
    for (const client of clients) await closeRedis(client);
    await server.stop();
  }
});
