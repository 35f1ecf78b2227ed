/**
 * The Redis connection: one lazily created ioredis client per isolate and
 * URL, reused across invocations, that fails fast while Redis is down and
 * recovers by itself when it is back.
 *
 * @module
 */

import { REDIS_CONNECTION_LOST, REDIS_NOT_SERVING } from "./queue/mod.ts";
import { Redis, ReplyError } from "ioredis";
import { UnavailableError } from "./errors.ts";

/** Options of {@linkcode createRedis}. */
export interface CreateRedisOptions {
  /**
   * Time a command may take before it fails, in ms. Blocking readers pass 0
   * (no limit) and bound their reads with BLOCK instead.
   * @default {1500}
   */
  commandTimeoutMs?: number;
  /**
   * Client name shown by CLIENT LIST.
   * @default {"tickstream"}
   */
  name?: string;
}

/**
 * Creates a new ioredis client that fails a command within about two seconds
 * while Redis is unreachable instead of parking it in the offline queue.
 *
 * @example
 * ```ts
 * const redis = createRedis("redis://127.0.0.1:6379");
 * await redis.ping();
 * await closeRedis(redis);
 * ```
 */
export function createRedis(url: string, options: CreateRedisOptions = {}): Redis {
  const { commandTimeoutMs = 1500, name = "tickstream" } = options;
  if (!Number.isInteger(commandTimeoutMs) || commandTimeoutMs < 0) {
    throw new RangeError(
      `Cannot create Redis client as 'commandTimeoutMs' must be an integer >= 0: current value is ${commandTimeoutMs}`,
    );
  }
  const redis = new Redis(url, {
    connectionName: name,
    connectTimeout: 1500,
    // One retry keeps a command alive across a single dropped socket while a
    // down server still fails it after one reconnect attempt (~100 ms).
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs === 0 ? undefined : commandTimeoutMs,
    // Reconnect forever, quickly, so the next call after an outage works.
    retryStrategy(times: number) {
      return Math.min(times * 100, 1000);
    },
    enableAutoPipelining: false,
  });
  // Without a listener ioredis prints every failed reconnect as unhandled.
  // A rejected AUTH closes the connection, so later commands only see a
  // closed socket: remember the rejection to name it to callers.
  redis.on("error", function onRedisError(error: unknown) {
    if (/\b(WRONGPASS|NOAUTH|NOPERM)\b/.test(error instanceof Error ? error.message : "")) {
      credentialsRejectedAt = Date.now();
    }
  });
  redis.on("ready", function onRedisReady() {
    credentialsRejectedAt = 0;
  });
  return redis;
}

const clients = new Map<string, Redis>();

/** When a Redis last rejected this process's credentials; 0 after a good connection. */
let credentialsRejectedAt = 0;

/**
 * Returns this isolate's shared client for `url`, creating it on first use.
 *
 * @example
 * ```ts
 * const redis = getRedis("redis://127.0.0.1:6379");
 * getRedis("redis://127.0.0.1:6379") === redis; // true
 * ```
 */
export function getRedis(url: string): Redis {
  let client = clients.get(url);
  if (client === undefined || client.status === "end") {
    client = createRedis(url);
    clients.set(url, client);
  }
  return client;
}

/** Options of {@linkcode closeRedis}. */
export interface CloseRedisOptions {
  /**
   * Longest wait for QUIT to end the connection before it is cut, in ms.
   * @default {1000}
   */
  timeoutMs?: number;
}

/**
 * Closes a client so the process can exit: QUIT when connected (waiting at
 * most `timeoutMs`), else a plain disconnect.
 *
 * @example
 * ```ts
 * await closeRedis(createRedis("redis://127.0.0.1:6379"));
 * ```
 */
export async function closeRedis(redis: Redis, options: CloseRedisOptions = {}): Promise<void> {
  const { timeoutMs = 1000 } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(
      `Cannot close Redis client as 'timeoutMs' must be a number >= 0: current value is ${timeoutMs}`,
    );
  }
  for (const [url, client] of clients) if (client === redis) clients.delete(url);
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = new Promise<void>((resolve) => redis.once("end", resolve));
    try {
      await Promise.race([
        redis.quit().then(() => ended),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
    } catch {
      // The server went away during QUIT: disconnect below still cleans up.
    } finally {
      clearTimeout(timer);
    }
    if ((redis.status as string) !== "end") redis.disconnect();
    return;
  }
  redis.disconnect();
}

/** Closes every client this isolate created through {@linkcode getRedis}. */
export async function closeAllRedis(): Promise<void> {
  await Promise.all([...clients.values()].map((client) => closeRedis(client)));
}

/** What kind of Redis trouble an error shows, for the message a caller gets. */
export type RedisProblem = "down" | "credentials" | "memory" | "busy";

/** The Redis problem `error` shows, or undefined when it is not one (a wrong command, a bug). */
export function redisProblem(error: unknown): RedisProblem | undefined {
  if (error instanceof UnavailableError) return "down";
  const message = error instanceof Error ? error.message : "";
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message) || /\bWRONGPASS\b|\bNOAUTH\b/.test(message)) {
    return "credentials";
  }
  if (/^OOM /.test(message) || /\bOOM command not allowed\b/.test(message)) return "memory";
  if (error instanceof ReplyError) {
    return REDIS_NOT_SERVING.test(message) ? "busy" : undefined;
  }
  if (!(error instanceof Error)) return undefined;
  // Redis Cluster: redirections that did not settle mean a failover is under way.
  if (/^Too many Cluster redirections/.test(message)) return "busy";
  // The engine's list (shared/queue/errors.ts): a sink error it calls a stall is a 503 here.
  if (!REDIS_CONNECTION_LOST.test(message)) return undefined;
  return Date.now() - credentialsRejectedAt < 30000 ? "credentials" : "down";
}

/** True when `error` means Redis could not serve the command now, not that a command was wrong. */
export function isRedisUnavailable(error: unknown): boolean {
  return redisProblem(error) !== undefined;
}

/** The sentence a caller reads for a Redis problem; never the raw client error. */
export function describeRedisProblem(problem: RedisProblem): string {
  switch (problem) {
    case "credentials":
      return "Redis rejected the credentials in REDIS_URL";
    case "memory":
      return "Redis is out of memory (maxmemory reached): emits are refused until drains and trimming free memory";
    case "busy":
      return "Redis cannot serve commands right now (loading, failing over or busy)";
    default:
      return "Redis is unavailable: it cannot be reached";
  }
}

/** Rethrows a Redis problem as a 503 {@linkcode UnavailableError}; other errors unchanged. */
export function toUnavailable(error: unknown): unknown {
  if (error instanceof UnavailableError) return error;
  const problem = redisProblem(error);
  if (problem === undefined) return error;
  return new UnavailableError(describeRedisProblem(problem), { cause: error });
}
