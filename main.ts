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
import { createMetricsApp } from "./functions/metrics.ts";
import { createApp } from "./shared/app.ts";
import { type Config, ConfigError, isLoopbackHost, loadConfig } from "./shared/config.ts";
import { defaultDeps } from "./shared/http.ts";
import { log, setLogFormat } from "./shared/log.ts";
import { closeQuoteStores } from "./shared/store/quote_store.ts";
import { redactUrl } from "./shared/redact.ts";
import { closeAllRedis, describeRedisProblem, redisProblem } from "./shared/redis.ts";
import { closeAllClusters } from "./shared/redis_cluster.ts";
import { releaseCronDuty, servedByDenoServe, takeCronDuty } from "./shared/serve_mode.ts";

/** Longest a stop may take before the process exits anyway, in ms. */
const STOP_BOUND_MS = 9000;

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Plain lines: LOG_FORMAT itself may be among the problems.
    for (const line of error.problems) console.error(line);
    Deno.exit(2);
  }
}

const config = configOrExit();
setLogFormat(config.logFormat);
const stopping = new AbortController();
const deps = { ...defaultDeps(config), signal: stopping.signal };
const app = createApp(deps);
app.route("/", createMetricsApp(deps));
const crons = new AbortController();

const lastWarning = new Map<string, number>();

/** Logs one line per kind of failure at most once a minute, so an outage does not flood the log. */
function warnOncePerMinute(kind: string, line: string): void {
  const now = Date.now();
  if (now - (lastWarning.get(kind) ?? 0) < 60000) return;
  lastWarning.set(kind, now);
  log("error", line);
}

/** One line for a failed cron run: a Redis problem in words, anything else redacted. */
function reportCronFailure(cron: string, error: unknown): void {
  const problem = redisProblem(error);
  if (problem !== undefined) {
    warnOncePerMinute(`redis-${problem}`, `${cron} cron: ${describeRedisProblem(problem)}`);
  } else {
    log("error", `${cron} cron failed`, { error });
  }
}

// Deno Deploy only picks up crons registered at module top level, and the
// local default retries differ from Deploy's, hence the explicit schedule.
// Under `deno serve --parallel` every worker runs this module: one per process takes the crons.
if (config.cronEnabled && typeof Deno.cron === "function" && takeCronDuty()) {
  Deno.cron(
    "tickstream emit quotes",
    config.emitSchedule,
    { backoffSchedule: [], signal: crons.signal },
    async function emitCron() {
      if (stopping.signal.aborted) return;
      try {
        // Paced: one tick per TICK_INTERVAL_MS for EMIT_BUDGET_MS; shutdown ends it.
        await emitPaced(deps, { signal: stopping.signal });
      } catch (error) {
        reportCronFailure("Emit", error);
      }
    },
  );
  Deno.cron(
    "tickstream drain groups",
    config.drainSchedule,
    { backoffSchedule: [], signal: crons.signal },
    async function drainCron() {
      if (stopping.signal.aborted) return;
      const results = await drainAll(deps);
      for (const r of results) {
        if ("error" in r) reportCronFailure(`Drain ${r.group}`, new Error(r.error));
      }
    },
  );
  // The first cron run can be a minute away: locally, pace until just before
  // it, so a fresh start moves at once. On Deploy isolates start on demand.
  // Within the last second of a minute the cron's own first tick is nearer than a tick.
  const toNextMinute = 60_000 - (Date.now() % 60_000) - 1000;
  if (!config.deployed && toNextMinute >= 0) {
    emitPaced(deps, {
      budgetMs: Math.min(config.emitBudgetMs, toNextMinute),
      signal: crons.signal,
    }).catch((error) => reportCronFailure("Start-up emit", error));
  }
}

function serveOrExit(): Deno.HttpServer {
  try {
    return Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen({ hostname, port }) {
        log("info", `tickstream listening on http://${hostname}:${port}/`);
      },
    }, app.fetch);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      log(
        "error",
        `Cannot listen on ${config.host}:${config.port} as the port is in use: stop the other server or set PORT to a free port`,
      );
    } else {
      log("error", `Cannot listen on ${config.host}:${config.port}`, { error });
    }
    Deno.exit(1);
  }
}

// Under `deno serve` (one isolate per core with --parallel) Deno serves the
// default export below; under `deno run` this module serves itself.
const served = servedByDenoServe();
const server = served ? undefined : serveOrExit();

if (config.functionsToken === undefined && !config.deployed) {
  log(
    "warn",
    isLoopbackHost(config.host)
      ? `FUNCTIONS_TOKEN is not set: the operator routes (emit, drain, report, dead letters) are open to every program on this machine`
      : `FUNCTIONS_TOKEN is not set: the operator routes answer 503 on ${config.host}; set FUNCTIONS_TOKEN to use them`,
  );
}

/** Says once at start whether Redis answers, in words an operator can act on. */
async function checkRedisAtStart(): Promise<void> {
  try {
    await deps.redis().ping();
  } catch (error) {
    const problem = redisProblem(error) ?? "down";
    warnOncePerMinute(
      `redis-${problem}`,
      `${describeRedisProblem(problem)} (REDIS_URL ${
        redactUrl(config.redisUrl)
      }): requests answer 503 until it is fixed`,
    );
  }
}

checkRedisAtStart();

let stopped = false;

/**
 * Stops cleanly: no new requests or cron runs, running drains end after the
 * chunk they are committing and answer their callers, leases are released,
 * live feeds get a final event; then the process exits 0.
 */
async function shutdown(signal: string): Promise<void> {
  if (stopped) return;
  stopped = true;
  log("info", `Received ${signal}: stopping`);
  const forced = setTimeout(() => {
    log("error", `Stop took longer than ${STOP_BOUND_MS} ms: exiting anyway`);
    Deno.exit(1);
  }, STOP_BOUND_MS);
  crons.abort();
  stopping.abort();
  // Open live feeds would hold server.shutdown() until they end by themselves.
  await closeLive();
  await server?.shutdown().catch(() => {});
  await closeQuoteStores();
  await closeAllRedis();
  await closeAllClusters();
  releaseCronDuty();
  clearTimeout(forced);
  Deno.exit(0);
}

Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));

/** What `deno serve main.ts` serves; empty under `deno run`, which serves itself. */
export default served ? { fetch: app.fetch } : {};
