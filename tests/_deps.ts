/**
 * Test helper: dependencies for a function pointed at a test redis-server.
 *
 * @module
 */

import { withShortBudget } from "./_env.ts";
import type { Redis } from "ioredis";
import { type Config, loadConfig } from "../shared/config.ts";
import {
  drainGroup,
  type DrainOptions,
  ensureGroups,
  replayDeadLetters,
  type ReplayOptions,
  type ReplayResult,
} from "../shared/queue/mod.ts";
import type { DrainResponse } from "../functions/drain.ts";
import { handlerOf } from "../shared/groups/context.ts";
import type { StockGroup } from "../shared/groups/group.ts";
import { findGroup } from "../shared/groups/registry.ts";
import { stockQueue } from "../shared/stock_queue.ts";
import type { Deps } from "../shared/http.ts";
import { createRandom } from "../shared/market/simulator.ts";

/** Options of {@linkcode testDeps}. */
export interface TestDepsOptions {
  /**
   * Extra environment variables for the config.
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Seed of the simulator's random numbers.
   * @default {1}
   */
  seed?: number;
  /**
   * Clock.
   * @default {Date.now}
   */
  now?: () => number;
}

/** Deps whose config points at `url` and whose Redis client is `client`. */
export function testDeps(url: string, client: Redis, options: TestDepsOptions = {}): Deps {
  const { env = {}, seed = 1, now = Date.now } = options;
  return {
    config: loadConfig({
      REDIS_URL: url,
      CRON_ENABLED: "false",
      DATABASE_PATH: ":memory:",
      ...withShortBudget(env),
    }),
    redis() {
      return client;
    },
    now,
    random: createRandom(seed),
  };
}

/** What a test drain needs: a function's deps without the simulator. */
export type DrainDeps = Pick<Deps, "config" | "redis" | "now" | "quoteStore">;

/** Drain deps on `client` with the real clock, for {@linkcode drainStockGroup} and friends. */
export function drainDeps(config: Config, client: Redis): DrainDeps {
  return { config, redis: () => client, now: Date.now };
}

/** Drains a stock group through the engine, as functions/drain.ts does. */
export async function drainStockGroup(
  deps: DrainDeps,
  group: StockGroup,
  options: DrainOptions = {},
): Promise<DrainResponse> {
  const queue = stockQueue(deps);
  const result = await drainGroup(queue, handlerOf(deps, queue, group), options);
  return { ...result, alerts: result.outputs };
}

/** Replays a stock group's dead letters through the engine. */
export async function replayStockGroup(
  deps: DrainDeps,
  group: StockGroup,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const queue = stockQueue(deps);
  return await replayDeadLetters(queue, handlerOf(deps, queue, group), options);
}

/** Creates the named registry groups at their declared starts. */
export async function ensureStockGroups(
  deps: DrainDeps,
  names: readonly string[],
  options: { force?: boolean } = {},
): Promise<void> {
  const starts = names.map((name) => ({ name, start: findGroup(name)?.start }));
  await ensureGroups(stockQueue(deps), starts, options);
}
