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
  limitBody,
  onlyFields,
  readJsonBody,
  requireJson,
  requireToken,
} from "../shared/http.ts";
import { isStreamId, openStream, type StreamEntry } from "../shared/queue/mod.ts";
import { stockKeys, stockQueue } from "../shared/stock_queue.ts";

/** Options of {@linkcode listDeadLetters}: those of `findDeadLetters` but the order, newest first. */
export type ListDeadLettersOptions = Omit<FindDeadLettersOptions, "newestFirst">;

/** Lists dead letters, newest first. */
export async function listDeadLetters(
  deps: Deps,
  options: ListDeadLettersOptions = {},
): Promise<DeadLetter[]> {
  const { group, limit = 100 } = options;
  const deadLetters = openStream(deps.redis(), stockKeys(deps.config).deadLetters);
  return (await findDeadLetters(deadLetters, { group, limit, newestFirst: true }))
    .map(parseDeadLetter);
}

/** Options of {@linkcode replayGroup}. */
export interface ReplayGroupOptions {
  /**
   * Ids of the dead letters to replay; 404 when one is not a dead letter of the group.
   * @default {every dead letter of the group, up to MAX_REPLAY}
   */
  ids?: string[];
}

/** Replays a group's dead letters (the given ids, or all of the group's up to MAX_REPLAY). */
export async function replayGroup(
  deps: Deps,
  group: string,
  options: ReplayGroupOptions = {},
): Promise<{ group: string; attempted: number; succeeded: number; failed: number }> {
  const { ids } = options;
  const definition = findGroup(group);
  if (definition === undefined) throw new NotFoundError(`Unknown consumer group: "${group}"`);
  let entries: StreamEntry[] | undefined;
  if (ids !== undefined) {
    const deadLetters = openStream(deps.redis(), stockKeys(deps.config).deadLetters);
    // Sent together, so up to MAX_REPLAY lookups cost one round trip, not one each.
    const found = await Promise.all(
      ids.map((id) => deadLetters.range({ start: id, end: id, count: 1 })),
    );
    entries = found.map(([entry], i) => {
      if (entry === undefined || parseDeadLetter(entry).group !== group) {
        throw new NotFoundError(`Dead letter not found for group "${group}": "${ids[i]}"`);
      }
      return entry;
    });
  }
  // Without ids, the replay reads every dead letter of the group itself.
  const queue = stockQueue(deps);
  const result = await replayDeadLetters(queue, handlerOf(deps, queue, definition), { entries });
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
  const { attempted, succeeded, failed } = result;
  return { group, attempted, succeeded, failed };
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
      onlyFields(body, ["ids"]);
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
      return c.json(await replayGroup(deps, group, { ids }));
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDeadLettersApp(defaultDeps(config)).fetch);
}
