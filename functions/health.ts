/**
 * Function `GET /health`: answers whether Redis can be reached.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { defaultDeps, type Deps, installErrorHandling } from "../shared/http.ts";

/** Pings Redis; true when it answered. */
export async function checkHealth(deps: Deps): Promise<boolean> {
  try {
    return (await deps.redis().ping()) === "PONG";
  } catch {
    return false;
  }
}

/** Builds the health function's app. */
export function createHealthApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.get("/health", async function health(c) {
    return await checkHealth(deps)
      ? c.json({ status: "ok", redis: "up" })
      : c.json({ status: "degraded", redis: "down" }, 503);
  });
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createHealthApp(defaultDeps(config)).fetch);
}
