/**
 * Test helper: dependencies for a function pointed at a test redis-server.
 *
 * @module
 */

import { withShortBudget } from "./_env.ts";
import type { Redis } from "ioredis";
import { type Config, loadConfig } from "../shared/config.ts";
import type { DrainDeps } from "../shared/queue/mod.ts";
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

/** Drain-engine deps on `client` with the real clock, for calling drainGroup or replayDeadLetters. */
export function drainDeps(config: Config, client: Redis): DrainDeps {
  return { config, redis: () => client, now: Date.now };
}
