/**
 * Function `GET /health`: whether Redis can be reached and serve the queue,
 * with a reason a person can act on when it cannot, and the groups that are
 * stalled on a failing dependency.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { defaultDeps, type Deps, installErrorHandling } from "../shared/http.ts";
import { describeRedisProblem, redisProblem } from "../shared/redis.ts";
import { readStalls, type Stall } from "../shared/queue/mod.ts";
import { allStockKeys, stockKeys } from "../shared/stock_queue.ts";

/** What /health answers. */
export interface Health {
  /** "ok", or "degraded" with a reason. */
  status: "ok" | "degraded";
  /** "up", or what is wrong with Redis: "down", "credentials", "memory", "busy". */
  redis: "up" | "down" | "credentials" | "memory" | "busy";
  /** Why the status is degraded; absent when ok. */
  reason?: string;
  /** Groups stalled on a failing dependency, with the error. */
  stalled: ({ group: string; partition?: number } & Stall)[];
}

/** Checks Redis (PING, memory against maxmemory) and reads the stalled groups. */
export async function checkHealth(deps: Deps): Promise<Health> {
  try {
    const redis = deps.redis();
    const keys = stockKeys(deps.config);
    // A small write tells whether Redis takes writes: a full Redis refuses
    // it with OOM while PING still answers.
    const [pong, memory, stalls, write] = await Promise.all([
      redis.ping(),
      redis.info("memory"),
      Promise.all(allStockKeys(deps.config).map((k) => readStalls(redis, k.stalled))),
      redis.set(keys.health, String(deps.now()), "PX", 60000).then(
        () => "ok",
        (error: unknown) => {
          if (redisProblem(error) === "memory") return "full";
          throw error;
        },
      ),
    ]);
    const stalled = stalls.flatMap((byGroup, partition) =>
      [...byGroup].map(([group, stall]) => ({
        group,
        ...(stalls.length > 1 ? { partition } : {}),
        ...stall,
      }))
    );
    const used = Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0);
    const max = Number(/maxmemory:(\d+)/.exec(memory)?.[1] ?? 0);
    if (pong !== "PONG") {
      return {
        status: "degraded",
        redis: "busy",
        reason: `Redis answered PING with ${pong}`,
        stalled,
      };
    }
    if (write === "full") {
      return {
        status: "degraded",
        redis: "memory",
        reason: `${describeRedisProblem("memory")} (used_memory ${used} of maxmemory ${max})`,
        stalled,
      };
    }
    if (stalled.length > 0) {
      return {
        status: "degraded",
        redis: "up",
        reason: stalled.map((s) => `Group "${s.group}" is stalled: ${s.dependency} fails`).join(
          "; ",
        ),
        stalled,
      };
    }
    return { status: "ok", redis: "up", stalled };
  } catch (error) {
    const problem = redisProblem(error) ?? "down";
    return {
      status: "degraded",
      redis: problem,
      reason: describeRedisProblem(problem),
      stalled: [],
    };
  }
}

/** Builds the health function's app: 200 while Redis serves, 503 when it cannot be used. */
export function createHealthApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  // Requests that arrive while a check is under way share it: a health
  // checker polling hard costs one check per round trip, never a stale answer.
  let inflight: Promise<Health> | undefined;
  app.get("/health", async function health(c) {
    inflight ??= checkHealth(deps).finally(() => inflight = undefined);
    const result = await inflight;
    const unusable = result.redis === "down" || result.redis === "credentials" ||
      result.redis === "busy";
    return unusable ? c.json(result, 503, { "Retry-After": "5" }) : c.json(result);
  });
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve(
    { hostname: config.host, port: config.port },
    createHealthApp(defaultDeps(config)).fetch,
  );
}
