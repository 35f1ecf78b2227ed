/**
 * Functions `GET /dead-letters` and `POST /dead-letters/:group/replay`: list
 * the entries a group gave up on, and run its handler on them again.
 *
 * @module
 */

import { Hono } from "hono";
import { loadConfig } from "../shared/config.ts";
import { type DeadLetter, parseDeadLetter, replayDeadLetters } from "../shared/drain.ts";
import { BadRequestError, ConflictError, NotFoundError } from "../shared/errors.ts";
import { findProcessor } from "../shared/groups.ts";
import {
  defaultDeps,
  type Deps,
  installErrorHandling,
  limitBody,
  onlyFields,
  readJsonBody,
  requireToken,
} from "../shared/http.ts";
import { toUnavailable } from "../shared/redis.ts";
import { rangeEntries, type StreamEntry } from "../shared/stream.ts";

const PAGE = 500;
/** Most dead letters one replay call handles. */
export const MAX_REPLAY = 1000;

/** Reads dead letters of `group` (all groups when undefined), oldest first, at most `limit`. */
async function findDeadLetters(
  deps: Deps,
  group: string | undefined,
  limit: number,
  newestFirst: boolean,
): Promise<StreamEntry[]> {
  const redis = deps.redis();
  const key = deps.config.deadLetterKey;
  const found: StreamEntry[] = [];
  let cursor: string | undefined;
  while (found.length < limit) {
    const page = await rangeEntries(redis, key, {
      reverse: newestFirst,
      count: PAGE,
      ...(cursor === undefined
        ? {}
        : newestFirst
        ? { end: `(${cursor}` }
        : { start: `(${cursor}` }),
    });
    for (const entry of page) {
      if (group === undefined || parseDeadLetter(entry).group === group) found.push(entry);
      if (found.length >= limit) break;
    }
    if (page.length < PAGE) break;
    cursor = page[page.length - 1].id;
  }
  return found;
}

/** Lists dead letters, newest first. */
export async function listDeadLetters(
  deps: Deps,
  options: { group?: string; limit?: number } = {},
): Promise<DeadLetter[]> {
  const { group, limit = 100 } = options;
  try {
    return (await findDeadLetters(deps, group, limit, true)).map(parseDeadLetter);
  } catch (error) {
    throw toUnavailable(error);
  }
}

/** Replays a group's dead letters (the given ids, or all of the group's up to MAX_REPLAY). */
export async function replayGroup(
  deps: Deps,
  group: string,
  ids?: string[],
): Promise<{ group: string; attempted: number; succeeded: number; failed: number }> {
  const processor = findProcessor(deps, group);
  if (processor === undefined) throw new NotFoundError(`Unknown consumer group: "${group}"`);
  try {
    let entries: StreamEntry[];
    if (ids === undefined) {
      entries = await findDeadLetters(deps, group, MAX_REPLAY, false);
    } else {
      entries = [];
      for (const id of ids) {
        const [entry] = await rangeEntries(deps.redis(), deps.config.deadLetterKey, {
          start: id,
          end: id,
          count: 1,
        });
        if (entry === undefined || parseDeadLetter(entry).group !== group) {
          throw new NotFoundError(`Dead letter not found for group "${group}": "${id}"`);
        }
        entries.push(entry);
      }
    }
    const result = await replayDeadLetters(deps.redis(), deps.config, processor, {
      entries,
      now: deps.now,
    });
    if (result.busy) {
      throw new ConflictError(`Group "${group}" is being drained right now: retry shortly`);
    }
    const { attempted, succeeded, failed } = result;
    return { group, attempted, succeeded, failed };
  } catch (error) {
    throw toUnavailable(error);
  }
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/** Builds the dead-letter functions' app. */
export function createDeadLettersApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.get("/dead-letters", requireToken(deps.config), async function list(c) {
    const group = c.req.query("group");
    if (group !== undefined && findProcessor(deps, group) === undefined) {
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
    limitBody(),
    async function replay(c) {
      const group = c.req.param("group");
      if (findProcessor(deps, group) === undefined) {
        throw new NotFoundError(`Unknown consumer group: "${group}"`);
      }
      const body = await readJsonBody(c);
      onlyFields(body, ["ids"]);
      let ids: string[] | undefined;
      if (body.ids !== undefined) {
        if (
          !Array.isArray(body.ids) || body.ids.length === 0 || body.ids.length > MAX_REPLAY ||
          !body.ids.every((id) => typeof id === "string" && STREAM_ID.test(id))
        ) {
          throw new BadRequestError(
            `Field "ids" must be an array of 1 to ${MAX_REPLAY} stream ids: got ${
              JSON.stringify(body.ids).slice(0, 200)
            }`,
          );
        }
        ids = [...new Set(body.ids as string[])];
      }
      return c.json(await replayGroup(deps, group, ids));
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDeadLettersApp(defaultDeps(config)).fetch);
}
