/**
 * Tells a failing dependency from a bad entry. A handler that cannot reach
 * what it writes to (a database, Redis) throws {@linkcode DependencyError}:
 * the drain stops, leaves the chunk pending without counting a delivery and
 * backs off, because a broken sink is not a poison entry. Any other error of
 * a handler counts toward MAX_DELIVERIES and ends in the dead letters.
 *
 * @module
 */

import { isRedisUnavailable } from "./redis.ts";

/** Raised when a dependency of a handler (database, Redis) cannot do its part right now. */
export class DependencyError extends Error {
  /** Which dependency failed, e.g. "sqlite", "postgresql" or "redis". */
  readonly dependency: string;
  /** Creates the error; `dependency` names what failed. */
  constructor(dependency: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DependencyError";
    this.dependency = dependency;
  }
}

/**
 * The dependency error `error` stands for, or undefined when `error` is the
 * entry's own fault (a poison entry).
 *
 * @example
 * ```ts
 * asDependencyError(new DependencyError("sqlite", "Cannot open the quote store")); // the same error
 * asDependencyError(new TypeError("bad quote")); // undefined
 * ```
 */
export function asDependencyError(error: unknown): DependencyError | undefined {
  if (error instanceof DependencyError) return error;
  if (error instanceof Error && /^OOM /.test(error.message)) {
    return new DependencyError("redis", "Redis is out of memory (maxmemory reached)", {
      cause: error,
    });
  }
  if (isRedisUnavailable(error)) {
    return new DependencyError("redis", `Redis is unavailable: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return undefined;
}

/** The message of an error, or its text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
