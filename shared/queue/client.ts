/**
 * What the engine needs of a Redis client: one generic command call. An
 * ioredis `Redis` or `Cluster` is one (a cluster client routes each call by
 * its keys). Keeping to it keeps the engine's public types its own, and every
 * command reads as the Redis docs write it.
 *
 * @module
 */

/** An argument of a command. */
export type CommandArg = string | number;

/** A Redis client, as every engine call takes it (an ioredis `Redis` fits). */
export interface RedisClient {
  /** Sends `command` with `args` and resolves to Redis's raw reply. */
  call(command: string, ...args: CommandArg[]): Promise<unknown>;
}

/**
 * Sends `name` with `args` on `client`: the one place the engine sends a command.
 *
 * @example
 * ```ts
 * declare const redis: RedisClient;
 * await command(redis, "XLEN", "stock_quotes");
 * ```
 */
export function command(
  client: RedisClient,
  name: string,
  ...args: CommandArg[]
): Promise<unknown> {
  return client.call(name, ...args);
}
