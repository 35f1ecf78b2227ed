/**
 * The one entry point: serves every function over HTTP and registers the
 * emit and drain crons. `deno run -A main.ts` locally, or as the entry point
 * on Deno Deploy.
 *
 * @module
 */

import { drainAll } from "./functions/drain.ts";
import { closeLive } from "./functions/live.ts";
import { emitPaced } from "./functions/emit_quotes.ts";
import { createApp } from "./shared/app.ts";
import { type Config, ConfigError, loadConfig } from "./shared/config.ts";
import { defaultDeps } from "./shared/http.ts";
import { closeQuoteStores } from "./shared/quote_store.ts";
import { closeAllRedis } from "./shared/redis.ts";

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
}

const config = configOrExit();
const deps = defaultDeps(config);
const app = createApp(deps);
const crons = new AbortController();

// Deno Deploy only picks up crons registered at module top level, and the
// local default retries differ from Deploy's, hence the explicit schedule.
if (config.cronEnabled && typeof Deno.cron === "function") {
  Deno.cron(
    "tickstream emit quotes",
    config.emitSchedule,
    { backoffSchedule: [1000, 5000], signal: crons.signal },
    async function emitCron() {
      // Paced: one tick per TICK_INTERVAL_MS for EMIT_BUDGET_MS; shutdown ends it.
      await emitPaced(deps, { signal: crons.signal });
    },
  );
  Deno.cron(
    "tickstream drain groups",
    config.drainSchedule,
    { backoffSchedule: [1000, 5000], signal: crons.signal },
    async function drainCron() {
      const results = await drainAll(deps);
      const failures = results.filter((r) => "error" in r);
      if (failures.length > 0) console.error("Drain cron failures", failures);
    },
  );
  // The first cron run can be a minute away: locally, pace until just before
  // it, so a fresh start moves at once. On Deploy isolates start on demand.
  if (!config.deployed) {
    const toNextMinute = 60_000 - (Date.now() % 60_000) - 1000;
    emitPaced(deps, {
      budgetMs: Math.max(0, Math.min(config.emitBudgetMs, toNextMinute)),
      signal: crons.signal,
    }).catch((error) => console.error("Start-up emit failed", error));
  }
}

const server = Deno.serve({
  port: config.port,
  onListen({ hostname, port }) {
    console.log(`tickstream listening on http://${hostname}:${port}/`);
  },
}, app.fetch);

let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`Received ${signal}: stopping`);
  // A running cron keeps the process alive, and so would a hung shutdown.
  const forced = setTimeout(() => Deno.exit(1), 5000);
  crons.abort();
  // Open live feeds would hold server.shutdown() until they end by themselves.
  await closeLive();
  await server.shutdown().catch(() => {});
  await closeQuoteStores();
  await closeAllRedis();
  clearTimeout(forced);
  Deno.exit(0);
}

Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));
