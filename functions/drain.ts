/**
 * Function `POST /drain/:group`: drains one consumer group, one chunk or as
 * many as fit in a time budget, and acknowledges what succeeded. Also the
 * body of the drain cron, which drains every group.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { BadRequestError, GroupStalledError, NotFoundError } from "../shared/errors.ts";
import { findGroup, GROUPS } from "../shared/groups/registry.ts";
import {
  drainPartition,
  drainPartitions,
  type DrainResponse,
  mergeDrains,
  type PartitionDrain,
  type PartitionDrainOptions,
} from "../shared/partition_drain.ts";
import { ensureLayout } from "../shared/layout.ts";
import { partitionIndexes } from "../shared/partitions.ts";
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
export type DrainOneOptions = PartitionDrainOptions;

export type { DrainResponse };

/** Throws the 503 of a group whose dependency failed; a drain that stalled answers it. */
function throwIfStalled(result: DrainResponse): void {
  if (result.stalled === null) return;
  const { group } = result;
  const { dependency, error, retryAfterMs } = result.stalled;
  throw new GroupStalledError(
    `Cannot drain group "${group}" as its dependency ${dependency} failed: ${error}; its entries stay pending, ${result.acked} were stored before`,
    { group, dependency, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
  );
}

/** Records one drain in the histograms, the span and a debug line. */
function record(result: DrainResponse | PartitionDrain, trigger: string): void {
  observeDrain(result);
  const { group, read, acked, failed, deadLettered, lag, durationMs } = result;
  log("debug", `Drained group "${group}"`, {
    trigger,
    ...("partition" in result ? { partition: result.partition } : {}),
    read,
    acked,
    failed,
    dead_lettered: deadLettered,
    lag,
    duration_ms: durationMs,
  });
}

/**
 * Drains `group`: one chunk, or chunks until caught up or out of budget,
 * over the partitions it can lease, most lagging first (or `partition` only).
 */
export async function drainOne(
  deps: Deps,
  group: string,
  options: DrainOneOptions = {},
): Promise<DrainResponse> {
  const definition = findGroup(group);
  if (definition === undefined) throw new NotFoundError(`Unknown consumer group: "${group}"`);
  const { trigger = "http", partition } = options;
  if (
    partition !== undefined &&
    (!Number.isInteger(partition) || partition < 0 || partition >= deps.config.streamPartitions)
  ) {
    throw new BadRequestError(
      `Field "partition" must be an integer from 0 to ${
        deps.config.streamPartitions - 1
      }: got ${partition}`,
    );
  }
  const attributes = { "tickstream.group": group, "tickstream.trigger": trigger };
  return await withSpan(`drain ${group}`, async function tracedDrain(span) {
    const result = await drainPartitions(deps, definition, options);
    record(result, trigger);
    span.setAttributes({ ...drainAttributes(result), "tickstream.busy": result.busy });
    throwIfStalled(result);
    return result;
  }, { attributes });
}

/** Options of {@linkcode drainAll}. */
export interface DrainAllOptions {
  /**
   * Time budget of the whole run, in ms: no partition's drain starts after it.
   * @default {config.drainBudgetMs}
   */
  budgetMs?: number;
  /**
   * Most entries per chunk.
   * @default {100}
   */
  count?: number;
  /**
   * (group, partition) drains at once.
   * @default {config.drainConcurrency}
   */
  concurrency?: number;
}

/**
 * The drain cron's body: drains every partition of every group, at most
 * `concurrency` at once, each within what is left of the budget (groups and
 * partitions hold separate leases), and never throws for one group's failure
 * so the others still run.
 */
export async function drainAll(
  deps: Deps,
  options: DrainAllOptions = {},
): Promise<(DrainResponse | { group: string; error: string })[]> {
  const { config } = deps;
  const {
    budgetMs = config.drainBudgetMs,
    count = 100,
    concurrency = config.drainConcurrency,
  } = options;
  return await withSpan("drain-all", async function tracedDrainAll() {
    const started = deps.now();
    try {
      await ensureLayout(deps);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return GROUPS.map((g) => ({ group: g.group, error: message }));
    }
    const pairs = GROUPS.flatMap((group) =>
      partitionIndexes(config).map((partition) => ({ group, partition }))
    );
    const parts = new Map<string, PartitionDrain[]>(GROUPS.map((g) => [g.group, []]));
    const errors = new Map<string, string>();
    async function worker(): Promise<void> {
      for (let pair = pairs.shift(); pair !== undefined; pair = pairs.shift()) {
        const remaining = budgetMs - (deps.now() - started);
        if (deps.signal?.aborted || (remaining <= 0 && budgetMs > 0)) return;
        const name = pair.group.group;
        await withSpan(`drain ${name}`, async (span) => {
          const result = await drainPartition(deps, {
            ...pair!,
            count,
            budgetMs: Math.max(0, remaining),
            trigger: "cron",
          });
          record(result, "cron");
          span.setAttributes({
            ...drainAttributes(result),
            "tickstream.partition": pair!.partition,
          });
          parts.get(name)!.push(result);
        }, { attributes: { "tickstream.group": name, "tickstream.trigger": "cron" } }).catch(
          (error) => errors.set(name, error instanceof Error ? error.message : String(error)),
        );
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, pairs.length) }, worker));
    return GROUPS.map((group) => {
      const name = group.group;
      const error = errors.get(name);
      if (error !== undefined) return { group: name, error };
      const result = mergeDrains(config, parts.get(name)!, {
        group: name,
        budgetMs,
        durationMs: deps.now() - started,
      });
      try {
        throwIfStalled(result);
      } catch (stalled) {
        return { group: name, error: (stalled as Error).message };
      }
      return result;
    });
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
      onlyFields(body, ["count", "budgetMs", "partition"]);
      const count = intField(body, { name: "count", min: 1, max: 1000, fallback: 100 });
      const budgetMs = body.budgetMs === undefined
        ? undefined
        : intField(body, { name: "budgetMs", min: 0, max: 55000, fallback: 0 });
      const partition = body.partition === undefined ? undefined : intField(body, {
        name: "partition",
        min: 0,
        max: deps.config.streamPartitions - 1,
        fallback: 0,
      });
      const result = await drainOne(deps, group, { count, budgetMs, partition });
      return c.json(result);
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDrainApp(defaultDeps(config)).fetch);
}
