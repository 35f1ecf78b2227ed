/**
 * Private: one drain invocation of the drain-partitions scenario, as its own
 * process (an isolate of its own, as a host runs invocations). Loads the
 * app, warms up on a stream of its own, says "ready" on stdout, waits for
 * the key `<STREAM_KEY>:go`, drains the group named in BENCH_GROUP until
 * nothing is left that it can lease, and prints one JSON line: entries acked
 * and the CPU seconds it used.
 *
 * @module
 */

import { drainOne } from "../../functions/drain.ts";
import { emitQuotes } from "../../functions/emit_quotes.ts";
import { loadConfig } from "../../shared/config.ts";
import { defaultDeps } from "../../shared/http.ts";
import { closeAllRedis } from "../../shared/redis.ts";
import { closeAllClusters } from "../../shared/redis_cluster.ts";
import { processCpuSeconds } from "./_common.ts";

/**
 * Drains a stream of its own first, as an isolate that served invocations
 * before: the scenario measures how drains scale, not how fast V8 compiles.
 */
async function warmUp(): Promise<void> {
  const env = { ...Deno.env.toObject(), STREAM_KEY: `${config.streamKey}:warm:${Deno.pid}` };
  const warm = defaultDeps(loadConfig(env));
  await emitQuotes(warm, { ticks: 1000 });
  for (let i = 0; i < 50; i++) {
    const result = await drainOne(warm, group, { count: 1000, budgetMs: 55000 });
    if (result.acked === 0 && !result.busy) break;
  }
}

const config = loadConfig();
const deps = defaultDeps(config);
const group = Deno.env.get("BENCH_GROUP") ?? "price-alerts";
const redis = deps.redis();
await redis.ping();
await warmUp();
console.log("ready");
const go = `${config.streamKey}:go`;
while ((await redis.exists(go)) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
const cpu0 = processCpuSeconds();
let acked = 0;
for (let i = 0; i < 50; i++) {
  const result = await drainOne(deps, group, { count: 1000, budgetMs: 55000 });
  acked += result.acked;
  if (result.acked === 0 && !result.busy) break;
}
console.log(JSON.stringify({ acked, cpu: processCpuSeconds() - cpu0 }));
await closeAllRedis();
await closeAllClusters();
