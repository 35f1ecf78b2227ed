/**
 * The engine's Lua scripts, loaded from the `.lua` files beside this module
 * (text imports) and run by SHA with a fallback to EVAL, so a script is sent
 * once per Redis server and survives SCRIPT FLUSH, restarts and failovers.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { command, commandAndWait, type RedisClient, type WaitReplicas } from "./client.ts";
import idHelpers from "./lua/_ids.lua" with { type: "text" };
import appendSource from "./lua/append.lua" with { type: "text" };
import commitSource from "./lua/commit.lua" with { type: "text" };
import deleteIdleConsumersSource from "./lua/delete_idle_consumers.lua" with { type: "text" };
import fencedReadSource from "./lua/fenced_read.lua" with { type: "text" };
import leaseAcquireSource from "./lua/lease_acquire.lua" with { type: "text" };
import leaseReleaseSource from "./lua/lease_release.lua" with { type: "text" };
import leaseRenewSource from "./lua/lease_renew.lua" with { type: "text" };
import oldestNeededSource from "./lua/oldest_needed.lua" with { type: "text" };
import readGuardSource from "./lua/read_guard.lua" with { type: "text" };
import readUnguardSource from "./lua/read_unguard.lua" with { type: "text" };
import trimSource from "./lua/trim.lua" with { type: "text" };
import unreadSource from "./lua/unread.lua" with { type: "text" };
import updateLatestSource from "./lua/update_latest.lua" with { type: "text" };

/** A Lua script with its SHA1, computed once. */
export interface LuaScript {
  /** Script name, the file's name without `.lua`. */
  name: string;
  /** Lua source as sent to Redis. */
  source: string;
  /** SHA1 of the source, as EVALSHA expects. */
  sha: string;
}

/**
 * Builds a script from its file; with `helpers`, the id helpers of
 * `_ids.lua` come first, after the `#!lua` line that Redis wants on line one.
 */
function script(name: string, source: string, helpers = false): LuaScript {
  let text = source;
  if (helpers) {
    const shebang = source.startsWith("#!lua") ? source.slice(0, source.indexOf("\n") + 1) : "";
    text = `${shebang}${idHelpers}${source.slice(shebang.length)}`;
  }
  return { name, source: text, sha: createHash("sha1").update(text).digest("hex") };
}

/** Every script of the engine, by name. */
export const SCRIPTS = {
  append: script("append", appendSource, true),
  commit: script("commit", commitSource),
  deleteIdleConsumers: script("delete_idle_consumers", deleteIdleConsumersSource),
  fencedRead: script("fenced_read", fencedReadSource),
  leaseAcquire: script("lease_acquire", leaseAcquireSource),
  leaseRelease: script("lease_release", leaseReleaseSource),
  leaseRenew: script("lease_renew", leaseRenewSource),
  oldestNeeded: script("oldest_needed", oldestNeededSource, true),
  readGuard: script("read_guard", readGuardSource, true),
  readUnguard: script("read_unguard", readUnguardSource),
  trim: script("trim", trimSource, true),
  unread: script("unread", unreadSource, true),
  updateLatest: script("update_latest", updateLatestSource, true),
} as const;

/** Options of {@linkcode runScript}. */
export interface RunScriptOptions {
  /**
   * Every key the script touches (KEYS); all of one call share one hash tag on Redis Cluster.
   * @default {[]}
   */
  keys?: string[];
  /**
   * Arguments of the script (ARGV).
   * @default {[]}
   */
  args?: (string | number)[];
}

/**
 * Runs `script` with its keys and args, loading it when the server lacks it.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const redis = new Redis();
 * await runScript(redis, SCRIPTS.trim, { keys: ["stock_quotes"], args: [100000, 1000] });
 * ```
 */
export async function runScript(
  redis: RedisClient,
  script: LuaScript,
  options: RunScriptOptions = {},
): Promise<unknown> {
  const { keys = [], args = [] } = options;
  try {
    return await command(redis, "EVALSHA", script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return await command(redis, "EVAL", script.source, keys.length, ...keys, ...args);
  }
}

/**
 * Runs `script` like {@linkcode runScript}, then waits for `wait.count`
 * replicas in the same round trip; resolves to the reply and the replicas
 * that acknowledged the script's writes.
 *
 * @example
 * ```ts
 * import type { RedisClient } from "./client.ts";
 * declare const redis: RedisClient;
 * const { replicas } = await runScriptAndWait(redis, SCRIPTS.trim, { count: 1, timeoutMs: 500 }, {
 *   keys: ["stock_quotes"],
 *   args: [100000, 1000],
 * });
 * ```
 */
export async function runScriptAndWait(
  redis: RedisClient,
  script: LuaScript,
  wait: WaitReplicas,
  options: RunScriptOptions = {},
): Promise<{ reply: unknown; replicas: number }> {
  const { keys = [], args = [] } = options;
  try {
    return await commandAndWait(redis, wait, "EVALSHA", script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return await commandAndWait(redis, wait, "EVAL", script.source, keys.length, ...keys, ...args);
  }
}

/**
 * The KEYS of one script call: the fixed ones first, then each other key
 * once, so a JSON payload can name a key by its 1-based index in KEYS.
 */
export class KeyList {
  /** The keys, in KEYS order. */
  readonly keys: string[];
  #index = new Map<string, number>();

  /** Starts the list with the script's fixed keys. */
  constructor(fixed: string[]) {
    this.keys = [];
    for (const key of fixed) this.add(key);
  }

  /** Index of `key` in KEYS (1-based, as Lua counts), adding it when new. */
  add(key: string): number {
    let index = this.#index.get(key);
    if (index === undefined) {
      this.keys.push(key);
      index = this.keys.length;
      this.#index.set(key, index);
    }
    return index;
  }
}
