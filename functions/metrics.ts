/**
 * Function `GET /metrics`: the queue's metrics in Prometheus text format
 * (0.0.4). Gauges and counters come from Redis at scrape time in one
 * pipelined round trip, so every instance shows the same queue-wide values;
 * the histograms are this process's own. Guarded by METRICS_TOKEN when set,
 * else by FUNCTIONS_TOKEN like the other operator routes. See docs/metrics.md.
 *
 * @module
 */

import { allStockKeys } from "../shared/stock_queue.ts";
import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { defaultDeps, type Deps, installErrorHandling, requireToken } from "../shared/http.ts";
import {
  METRICS_CONTENT_TYPE,
  readPartitionedSnapshot,
  renderMetrics,
} from "../shared/metrics/mod.ts";

/** The exposition text for one scrape: Redis' figures now, plus this process's histograms. */
export async function scrapeMetrics(deps: Deps): Promise<string> {
  return await renderMetrics(
    await readPartitionedSnapshot(deps.redis(), allStockKeys(deps.config)),
  );
}

/** Builds the metrics function's app. */
export function createMetricsApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  // A scraper gets its own token, so it need not hold the one that emits and drains.
  const guardConfig = {
    ...deps.config,
    functionsToken: deps.config.metricsToken ?? deps.config.functionsToken,
  };
  app.get("/metrics", requireToken(guardConfig), async function metrics(c) {
    const text = await scrapeMetrics(deps);
    return c.body(text, 200, { "Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store" });
  });
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createMetricsApp(defaultDeps(config)).fetch);
}
