/**
 * Private: a server child of the benchmark, so the load generator does not
 * share its event loop. `--mode bare` serves a bare `Deno.serve` answering
 * 200 "ok"; `--mode app` serves the app (`createApp`, `/live` included) on `--redis`. Prints
 * `{"port": N}` once listening and stops when its stdin closes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { closeLive } from "../../functions/live.ts";
import { createApp } from "../../shared/app.ts";
import { loadConfig } from "../../shared/config.ts";
import { defaultDeps } from "../../shared/http.ts";
import { closeAllRedis } from "../../shared/redis.ts";

async function serve(mode: string, redisUrl: string): Promise<void> {
  let handler: (request: Request) => Response | Promise<Response>;
  if (mode === "bare") {
    handler = function bare() {
      return new Response("ok");
    };
  } else {
    const config = loadConfig({
      REDIS_URL: redisUrl,
      CRON_ENABLED: "false",
      LIVE_MAX_MS: "600000",
      LIVE_MAX_CLIENTS: "10000",
    });
    handler = createApp(defaultDeps(config)).fetch;
  }
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen({ port }) {
      console.log(JSON.stringify({ port }));
    },
  }, handler);
  for await (const _ of Deno.stdin.readable) {
    // Nothing is sent; the loop ends when stdin closes.
  }
  await closeLive();
  await server.shutdown();
  await closeAllRedis();
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { mode: { type: "string", default: "bare" }, redis: { type: "string", default: "" } },
  });
  await serve(values.mode, values.redis);
}
