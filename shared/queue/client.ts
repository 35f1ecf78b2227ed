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

/** Commands queued to go in one round trip, to one node (an ioredis pipeline fits). */
export interface CommandPipeline {
  /** Queues `command` with `args`. */
  call(command: string, ...args: CommandArg[]): unknown;
  /** Sends the queued commands; resolves to an [error, reply] pair per command. */
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** A Redis client, as every engine call takes it (an ioredis `Redis` fits). */
export interface RedisClient {
  /** Sends `command` with `args` and resolves to Redis's raw reply. */
  call(command: string, ...args: CommandArg[]): Promise<unknown>;
  /** Starts a pipeline; on a cluster client it goes to the node of its commands' keys. */
  pipeline(): CommandPipeline;
  /** Starts a MULTI/EXEC transaction, sent as one pipeline. */
  multi(): CommandPipeline;
}

/** How many replicas a write must reach, and how long to wait for them. */
export interface WaitReplicas {
  /** Replicas to wait for. */
  count: number;
  /** Longest wait, in ms; WAIT without a timeout blocks for ever once no replica is left. */
  timeoutMs: number;
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

/**
 * Sends `name` with `args`, then WAIT for `wait.count` replicas in the same
 * round trip and on the same connection (so on the node that took the write);
 * resolves to the reply and the replicas that acknowledged it.
 *
 * @example
 * ```ts
 * declare const redis: RedisClient;
 * const { replicas } = await commandAndWait(redis, { count: 1, timeoutMs: 500 }, "SET", "k{p0}", "v");
 * ```
 */
export async function commandAndWait(
  client: RedisClient,
  wait: WaitReplicas,
  name: string,
  ...args: CommandArg[]
): Promise<{ reply: unknown; replicas: number }> {
  const pipeline = client.pipeline();
  pipeline.call(name, ...args);
  pipeline.call("WAIT", wait.count, wait.timeoutMs);
  const replies = await pipeline.exec();
  if (replies === null) throw new Error(`Cannot send ${name}: the pipeline was discarded`);
  const [[error, reply], [waitError, replicas]] = replies;
  if (error !== null) throw error;
  if (waitError !== null) throw waitError;
  return { reply, replicas: Number(replicas) };
}
