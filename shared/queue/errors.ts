/**
 * The engine's named errors, and how it tells a failing dependency from a
 * bad entry: a handler that cannot reach what it writes to throws
 * {@linkcode DependencyError}, and the drain stalls (no delivery counted,
 * back-off); a {@linkcode PoisonError} goes to the dead letters at once; any
 * other error is retried with back-off until the delivery limit.
 *
 * @module
 */

/** Raised when a dependency of a handler (database, Redis) cannot do its part right now. */
export class DependencyError extends Error {
  /** Which dependency failed, e.g. "sqlite", "postgresql" or "redis". */
  readonly dependency: string;

  /**
   * Creates the error; `dependency` names what failed.
   *
   * @example
   * ```ts
   * declare const cause: Error;
   * throw new DependencyError("postgresql", "Cannot reach the quote store", { cause });
   * ```
   */
  constructor(dependency: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DependencyError";
    this.dependency = dependency;
  }
}

/** Raised by a handler's `decode` for an entry that can never succeed: it is dead-lettered at once. */
export class PoisonError extends Error {
  /**
   * Creates the error.
   *
   * @example
   * ```ts
   * throw new PoisonError(`Field "price" must be a number: got "abc"`);
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoisonError";
  }
}

/** Client errors that mean the connection to Redis (or to every cluster node) is gone. */
export const REDIS_CONNECTION_LOST =
  /Connection is closed|Command aborted due to connection close|None of startup nodes is available|Cluster is ended|Cluster isn't ready|Failed to refresh slots cache|max retries per request|Command timed out|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|Socket closed|Too many Cluster redirections/i;

/** Replies of a Redis that is there but cannot serve now (loading, failing over, busy). */
export const REDIS_NOT_SERVING =
  /^(LOADING|MASTERDOWN|READONLY|BUSY |TRYAGAIN|CLUSTERDOWN|MOVED |ASK )/;

/**
 * The dependency error `error` stands for, or undefined when `error` is the
 * entry's own fault: a {@linkcode DependencyError}, or a Redis that is full,
 * unreachable or not serving (a sink that writes to Redis throws those).
 *
 * @example
 * ```ts
 * asDependencyError(new DependencyError("sqlite", "Cannot open the quote store")); // the same error
 * asDependencyError(new TypeError("bad quote")); // undefined
 * ```
 */
export function asDependencyError(error: unknown): DependencyError | undefined {
  if (error instanceof DependencyError) return error;
  if (!(error instanceof Error)) return undefined;
  if (/^OOM /.test(error.message)) {
    return new DependencyError("redis", "Redis is out of memory (maxmemory reached)", {
      cause: error,
    });
  }
  const { message } = error;
  if (
    REDIS_CONNECTION_LOST.test(message) || REDIS_NOT_SERVING.test(message) ||
    /^(NOAUTH|WRONGPASS|NOPERM)/.test(message)
  ) {
    return new DependencyError("redis", `Redis is unavailable: ${error.message}`, {
      cause: error,
    });
  }
  return undefined;
}

/** The message of an error, or its text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An error's name and message, as a dead letter records it. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
