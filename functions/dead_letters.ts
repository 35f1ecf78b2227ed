/**
 * Functions `GET /dead-letters` and `POST /dead-letters/:group/replay`: list
 * the entries a group gave up on, and run its handler on them again.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import {
  type DeadLetter,
  findDeadLetters,
  type FindDeadLettersOptions,
  MAX_REPLAY,
  parseDeadLetter,
  replayDeadLetters,
} from "../shared/queue/mod.ts";
import {
  BadRequestError,
  ConflictError,
  GroupStalledError,
  NotFoundError,
} from "../shared/errors.ts";
import { handlerOf } from "../shared/groups/context.ts";
import { findGroup } from "../shared/groups/registry.ts";
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
import { compareIds, isStreamId, openStream, type StreamEntry } from "../shared/queue/mod.ts";
import { partitionIndexes } from "../shared/partitions.ts";
import { allStockKeys, stockKeys, stockQueue } from "../shared/stock_queue.ts";

/** Options of {@linkcode listDeadLetters}: those of `findDeadLetters` but the order, newest first. */
export type ListDeadLettersOptions = Omit<FindDeadLettersOptions, "newestFirst">;

/** A dead letter as listed, with its partition when there is more than one. */
export type ListedDeadLetter = DeadLetter & { partition?: number };

/** Dead letters of every group (or one), newest first, over every partition. */
export async function listDeadLetters(
  deps: Deps,
  options: ListDeadLettersOptions = {},
): Promise<ListedDeadLetter[]> {
  const { group, limit = 100 } = options;
  const many = deps.config.streamPartitions > 1;
  const found = await Promise.all(
    allStockKeys(deps.config).map(async (keys) => {
      const deadLetters = openStream(deps.redis(), keys.deadLetters);
      const entries = await findDeadLetters(deadLetters, { group, limit, newestFirst: true });
      return entries.map((entry) => ({
        ...parseDeadLetter(entry),
        ...(many ? { partition: keys.partition } : {}),
      }));
    }),
  );
  return found.flat().sort((a, b) => compareIds(b.id, a.id)).slice(0, limit);
}

/** Options of {@linkcode replayGroup}. */
export interface ReplayGroupOptions {
  /**
   * Ids of the dead letters to replay; 404 when one is not a dead letter of the group.
   * @default {every dead letter of the group, up to MAX_REPLAY per partition}
   */
  ids?: string[];
  /**
   * Partition the ids are in; undefined looks in every partition.
   * @default {undefined}
   */
  partition?: number;
}

/** What a replay did. */
export interface ReplayAnswer {
  /** Group replayed. */
  group: string;
  /** Dead letters attempted. */
  attempted: number;
  /** Dead letters whose handler succeeded; they left the dead-letter stream. */
  succeeded: number;
  /** Dead letters that failed again; they stay with their new error. */
  failed: number;
}

/**
 * Replays dead letters of `group` through its handler, partition by
 * partition, each under that partition's lease.
 */
export async function replayGroup(
  deps: Deps,
  group: string,
  options: ReplayGroupOptions = {},
): Promise<ReplayAnswer> {
  const { ids, partition } = options;
  const definition = findGroup(group);
  if (definition === undefined) throw new NotFoundError(`Unknown consumer group: "${group}"`);
  const partitions = partition === undefined ? partitionIndexes(deps.config) : [partition];
  let chosen: Map<number, StreamEntry[]> | undefined;
  if (ids !== undefined) {
    chosen = new Map();
    // Sent together, so up to MAX_REPLAY lookups per partition cost one round trip.
    const lookups = await Promise.all(partitions.map(async (p) => {
      const deadLetters = openStream(deps.redis(), stockKeys(deps.config, p).deadLetters);
      const found = await Promise.all(
        ids.map((id) => deadLetters.range({ start: id, end: id, count: 1 })),
      );
      return { p, found: found.map(([entry]) => entry) };
    }));
    ids.forEach((id, i) => {
      const hits = lookups.filter(({ found }) =>
        found[i] !== undefined && parseDeadLetter(found[i]!).group === group
      );
      if (hits.length === 0) {
        throw new NotFoundError(`Dead letter not found for group "${group}": "${id}"`);
      }
      for (const { p, found } of hits) chosen!.set(p, [...(chosen!.get(p) ?? []), found[i]!]);
    });
  }
  const answer: ReplayAnswer = { group, attempted: 0, succeeded: 0, failed: 0 };
  for (const p of chosen ? [...chosen.keys()] : partitions) {
    const queue = stockQueue(deps, p);
    // Without ids, the replay reads every dead letter of the group itself.
    const result = await replayDeadLetters(queue, handlerOf(deps, queue, definition), {
      entries: chosen?.get(p),
    });
    if (result.busy) {
      throw new ConflictError(`Group "${group}" is being drained right now: retry shortly`);
    }
    if (result.stalled !== null && result.attempted === 0) {
      const { dependency, error, retryAfterMs } = result.stalled;
      throw new GroupStalledError(
        `Cannot replay the dead letters of group "${group}" as its dependency ${dependency} failed: ${error}; they stay as they are`,
        { group, dependency, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
      );
    }
    answer.attempted += result.attempted;
    answer.succeeded += result.succeeded;
    answer.failed += result.failed;
  }
  return answer;
}

/** Builds the dead-letter functions' app. */
export function createDeadLettersApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.get("/dead-letters", requireToken(deps.config), async function list(c) {
    const group = c.req.query("group");
    if (group !== undefined && findGroup(group) === undefined) {
      throw new NotFoundError(`Unknown consumer group: "${group}"`);
    }
    const rawLimit = c.req.query("limit") ?? "100";
    const limit = Number(rawLimit);
    if (!/^\d+$/.test(rawLimit) || limit < 1 || limit > 1000) {
      throw new BadRequestError(
        `Query "limit" must be an integer from 1 to 1000: got "${rawLimit}"`,
      );
    }
    return c.json({ deadLetters: await listDeadLetters(deps, { group, limit }) });
  });
  app.post(
    "/dead-letters/:group/replay",
    requireToken(deps.config),
    requireJson(),
    limitBody(),
    async function replay(c) {
      const group = c.req.param("group");
      if (findGroup(group) === undefined) {
        throw new NotFoundError(`Unknown consumer group: "${group}"`);
      }
      const body = await readJsonBody(c);
      onlyFields(body, ["ids", "partition"]);
      const partition = body.partition === undefined ? undefined : intField(body, {
        name: "partition",
        min: 0,
        max: deps.config.streamPartitions - 1,
        fallback: 0,
      });
      let ids: string[] | undefined;
      if (body.ids !== undefined) {
        if (
          !Array.isArray(body.ids) || body.ids.length === 0 || body.ids.length > MAX_REPLAY ||
          !body.ids.every((id) => typeof id === "string" && isStreamId(id))
        ) {
          throw new BadRequestError(
            `Field "ids" must be an array of 1 to ${MAX_REPLAY} stream ids: got ${
              JSON.stringify(body.ids).slice(0, 200)
            }`,
          );
        }
        ids = [...new Set(body.ids as string[])];
      }
      return c.json(await replayGroup(deps, group, { ids, partition }));
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDeadLettersApp(defaultDeps(config)).fetch);
}
