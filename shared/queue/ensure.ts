/**
 * Consumer groups that exist when they are needed: created once per client
 * at their declared start, and recreated when Redis lost them.
 *
 * @module
 */

import type { Queue } from "./queue.ts";

/** A group to create: its name and where it starts. */
export interface GroupStart {
  /** Group name. */
  name: string;
  /**
   * "$" (entries added from now on), "0" (the whole stream) or an id.
   * @default {"$"}
   */
  start?: string;
}

/** Options of {@linkcode ensureGroups}. */
export interface EnsureGroupsOptions {
  /**
   * Ask Redis even for groups this isolate already created (Redis may have lost them).
   * @default {false}
   */
  force?: boolean;
}

let readyGroups = new WeakMap<object, Set<string>>();
const recoveriesLogged = new Set<string>();

function readySet(queue: Queue): Set<string> {
  let set = readyGroups.get(queue.redis);
  if (set === undefined) {
    set = new Set();
    readyGroups.set(queue.redis, set);
  }
  return set;
}

/**
 * Creates every group once per client and stream (idempotent), at its start.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * import { openQueue } from "./mod.ts";
 * import { queueKeys } from "./mod.ts";
 * const queue = openQueue(redis, queueKeys("stock_quotes"));
 * await ensureGroups(queue, [{ name: "price-alerts", start: "0" }, { name: "vwap" }]);
 * ```
 */
export async function ensureGroups(
  queue: Queue,
  groups: readonly GroupStart[],
  options: EnsureGroupsOptions = {},
): Promise<void> {
  const { force = false } = options;
  const ready = readySet(queue);
  for (const group of groups) {
    const tag = `${queue.keys.stream}|${group.name}`;
    if (ready.has(tag) && !force) continue;
    await queue.stream.group(group.name).ensure({ startId: group.start ?? "$" });
    ready.add(tag);
  }
}

/** Forgets which groups exist, for tests that flush Redis. */
export function resetGroupCache(): void {
  readyGroups = new WeakMap();
  recoveriesLogged.clear();
}

/** True when `error` says a consumer group (or its stream) is gone: Redis lost it. */
export function isMissingGroupError(error: unknown): boolean {
  return error instanceof Error && /NOGROUP/.test(error.message);
}

/**
 * Recreates a group Redis lost, at `0` of the stream as it now stands (the
 * entries there are new to it), and logs it once per group and process.
 *
 * @example
 * ```ts
 * import { drainGroup } from "./mod.ts";
 * import type { Handler } from "./mod.ts";
 * declare const handler: Handler;
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * import { openQueue } from "./mod.ts";
 * import { queueKeys } from "./mod.ts";
 * const queue = openQueue(redis, queueKeys("stock_quotes"));
 * try {
 *   await drainGroup(queue, handler);
 * } catch (error) {
 *   if (isMissingGroupError(error)) await recoverGroup(queue, handler.name);
 * }
 * ```
 */
export async function recoverGroup(queue: Queue, group: string): Promise<void> {
  const tag = `${queue.keys.stream}|${group}`;
  readySet(queue).delete(tag);
  const existed = (await queue.stream.info()) !== null;
  await ensureGroups(queue, [{ name: group, start: "0" }], { force: true });
  if (recoveriesLogged.has(tag)) return;
  recoveriesLogged.add(tag);
  const reason = existed
    ? "the stream exists without the group (XGROUP DESTROY, lost data, or a stream another producer created before any group)"
    : "the stream was gone too (FLUSHALL, a restart without persistence, or a failover to an empty replica)";
  console.warn(
    `Recreated consumer group "${group}" on "${queue.keys.stream}" at 0: ${reason}; its state restarts from what Redis still holds`,
  );
}
