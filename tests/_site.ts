/**
 * Test helper: the website's apps composed on a test Redis and a private
 * quote store, the way main.ts mounts them, plus a server on a free port.
 *
 * @module
 */

import { withShortBudget } from "./_env.ts";
import { Hono } from "hono";
import type { Redis } from "ioredis";
import { type Config, loadConfig } from "../shared/config.ts";
import { createApp } from "../shared/app.ts";
import type { Deps } from "../shared/http.ts";
import type { QuoteStore } from "../shared/store/quote_store.ts";

/** Settings for a test: the test Redis, no crons, SQLite under `dir`, plus `env`. */
export function siteConfig(
  redisUrl: string,
  dir: string,
  env: Record<string, string> = {},
): Config {
  return loadConfig({
    REDIS_URL: redisUrl,
    CRON_ENABLED: "false",
    DATABASE_PATH: `${dir}/quotes.db`,
    ...withShortBudget(env),
  });
}

/** Dependencies on the given client and store, with the real clock. */
export function siteDeps(
  config: Config,
  { redis, quoteStore }: { redis: Redis; quoteStore: QuoteStore },
): Deps {
  return { config, redis: () => redis, now: Date.now, random: Math.random, quoteStore };
}

/** The whole app as main.ts serves it: functions, public API, live feed and dashboard. */
export function createSiteApp(deps: Deps): Hono {
  return createApp(deps);
}

/** A server on a free loopback port; `close()` in finally. */
export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  url: string;
  /** Port. */
  port: number;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Serves `app` on 127.0.0.1 and a free port. */
export function serve(app: Hono): TestServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      await server.shutdown();
    },
  };
}
