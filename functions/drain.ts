/**
 * Function `POST /drain/:group`: drains one consumer group, one chunk or as
 * many as fit in a time budget, and acknowledges what succeeded. Also the
 * body of the drain cron, which drains every group.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { GroupStalledError, NotFoundError } from "../shared/errors.ts";
import { handlerOf } from "../shared/groups/context.ts";
import { findGroup, GROUPS } from "../shared/groups/registry.ts";
import { consumerName, drainGroup, type DrainResult } from "../shared/queue/mod.ts";
import { stockQueue } from "../shared/stock_queue.ts";
import {
  defaultDeps,
  type Deps,
  installErrorHandling,
  intField,
  limitBody,
  onlyFields,
  readJsonBody,
  requireJson,
  requireToken,
} from "../shared/http.ts";
import { log } from "../shared/log.ts";
import { observeDrain } from "../shared/metrics/mod.ts";
import { drainAttributes, withSpan } from "../shared/trace.ts";

/** Options of {@linkcode drainOne}. */
export interface DrainOneOptions {
  /**
   * Most entries per chunk.
   * @default {100}
   */
  count?: number;
  /**
   * Time budget in ms; without it exactly one chunk is processed.
   * @default {undefined}
   */
  budgetMs?: number;
  /**
   * What triggered the drain, part of the consumer name.
   * @default {"http"}
   */
  trigger?: string;
}

/** What one drain did, with the analyses' outputs named as what they are. */
export interface DrainResponse extends DrainResult {
  /** Alerts written (the engine's `outputs`). */
  alerts: number;
}

/** Drains `group`: one chunk, or chunks until caught up or out of budget. */
export async function drainOne(
  deps: Deps,
  group: string,
  options: DrainOneOptions = {},
): Promise<DrainResponse> {
  const definition = findGroup(group);
  if (definition === undefined) throw new NotFoundError(`Unknown consumer group: "${group}"`);
  const { count = 100, budgetMs, trigger = "http" } = options;
  const attributes = { "tickstream.group": group, "tickstream.trigger": trigger };
  return await withSpan(`drain ${group}`, async function tracedDrain(span) {
    const queue = stockQueue(deps);
    const drained = await drainGroup(queue, handlerOf(deps, queue, definition), {
      count,
      // Without a budget: exactly one chunk, and no waiting for a retry to come due.
      budgetMs: budgetMs ?? 0,
      maxChunks: budgetMs === undefined ? 1 : Infinity,
      consumer: consumerName(trigger, { deploymentId: deps.config.deploymentId }),
      signal: deps.signal,
    });
    const result = { ...drained, alerts: drained.outputs };
    observeDrain(result);
    span.setAttributes({ ...drainAttributes(result), "tickstream.busy": result.busy });
    const { read, acked, failed, deadLettered, lag, durationMs } = result;
    log("debug", `Drained group "${group}"`, {
      trigger,
      read,
      acked,
      failed,
      dead_lettered: deadLettered,
      lag,
      duration_ms: durationMs,
    });
    if (result.stalled !== null) {
      const { dependency, error, retryAfterMs } = result.stalled;
      throw new GroupStalledError(
        `Cannot drain group "${group}" as its dependency ${dependency} failed: ${error}; its entries stay pending, ${result.acked} were stored before`,
        { group, dependency, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
      );
    }
    return result;
  }, { attributes });
}

/** Options of {@linkcode drainAll}. */
export interface DrainAllOptions {
  /**
   * Time budget of each group's drain, in ms.
   * @default {config.drainBudgetMs}
   */
  budgetMs?: number;
  /**
   * Most entries per chunk.
   * @default {100}
   */
  count?: number;
}

/**
 * The drain cron's body: drains every group at once, each within the budget
 * (groups are independent and hold separate leases), and never throws for
 * one group's failure so the others still run.
 */
export async function drainAll(
  deps: Deps,
  options: DrainAllOptions = {},
): Promise<(DrainResponse | { group: string; error: string })[]> {
  const { budgetMs = deps.config.drainBudgetMs, count = 100 } = options;
  return await withSpan("drain-all", async function tracedDrainAll() {
    return await Promise.all(
      GROUPS.map(async function drainEach(g) {
        try {
          return await drainOne(deps, g.group, { budgetMs, count, trigger: "cron" });
        } catch (error) {
          return { group: g.group, error: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
  }, {
    attributes: { "tickstream.trigger": "cron" },
    resultAttributes: (results) => ({
      "tickstream.failed_groups": results.filter((r) => "error" in r).length,
    }),
  });
}

/** Builds the drain function's app. */
export function createDrainApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.post(
    "/drain/:group",
    requireToken(deps.config),
    requireJson(),
    limitBody(),
    async function drain(c) {
      const group = c.req.param("group");
      if (findGroup(group) === undefined) {
        throw new NotFoundError(`Unknown consumer group: "${group}"`);
      }
      const body = await readJsonBody(c);
      onlyFields(body, ["count", "budgetMs"]);
      const count = intField(body, { name: "count", min: 1, max: 1000, fallback: 100 });
      const budgetMs = body.budgetMs === undefined
        ? undefined
        : intField(body, { name: "budgetMs", min: 0, max: 55000, fallback: 0 });
      const result = await drainOne(deps, group, { count, budgetMs });
      return c.json(result);
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDrainApp(defaultDeps(config)).fetch);
}
