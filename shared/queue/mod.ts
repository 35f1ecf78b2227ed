/**
 * The queue engine: Redis Streams with consumer groups, exactly-once effects
 * and bounded invocations, for any group that fills in a {@linkcode Handler}.
 * It knows Redis Streams, not stocks; it imports only ioredis.
 *
 * - {@linkcode queueKeys} derives every key from a namespace (with an
 *   optional hash tag, so one call's keys share a Redis Cluster slot).
 * - {@linkcode openQueue} binds the keys and settings to a client.
 * - {@linkcode drainGroup} drains one group within a budget under a fenced
 *   lease, committing each chunk's state, outputs, dead letters and counters
 *   with its acks in one script.
 * - {@linkcode appendEntries} (or `queue.stream.append`) adds a batch
 *   atomically with its guard, latest-entry index and idempotency record.
 * - {@linkcode replayDeadLetters} runs a handler again on its dead letters.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { drainGroup, type Handler, openQueue, queueKeys } from "./mod.ts";
 *
 * const counter: Handler<{ word: string }, number> = {
 *   name: "word-count",
 *   start: "0",
 *   decode: (fields) => ({ word: fields[1] }),
 *   key: (item) => item.word,
 *   step: (count) => ({ state: (count ?? 0) + 1 }),
 * };
 * const queue = openQueue(new Redis(), queueKeys("words"));
 * await queue.stream.append([["word", "hello"]]);
 * const result = await drainGroup(queue, counter, { budgetMs: 1000 });
 * result.acked; // 1
 * ```
 *
 * @module
 */

export { appendEntries, type AppendOptions, type AppendResult, TRIM_STEP } from "./append.ts";
export type { CommandArg, CommandPipeline, RedisClient, WaitReplicas } from "./client.ts";
export {
  commitChunk,
  type CommitOptions,
  type CommitResult,
  type OutputWrite,
  type RetryMark,
} from "./commit.ts";
export { consumerName, type ConsumerNameOptions } from "./consumer.ts";
export {
  type DeadLetter,
  findDeadLetters,
  type FindDeadLettersOptions,
  MAX_REPLAY,
  parseDeadLetter,
  replayDeadLetters,
  type ReplayOptions,
  type ReplayResult,
} from "./dead_letters.ts";
export { drainGroup, type DrainOptions, type DrainResult, type StalledDrain } from "./drain.ts";
export {
  ensureGroups,
  type EnsureGroupsOptions,
  type GroupStart,
  isMissingGroupError,
  recoverGroup,
  resetGroupCache,
} from "./ensure.ts";
export { fieldsToRecord, type StreamEntry } from "./entry.ts";
export {
  asDependencyError,
  DependencyError,
  messageOf,
  PoisonError,
  REDIS_CONNECTION_LOST,
  REDIS_NOT_SERVING,
} from "./errors.ts";
export {
  type ClaimOptions,
  type ClaimResult,
  type EnsureGroupOptions,
  type FencedRead,
  type ReadFencedOptions,
  type ReadGroupOptions,
  StreamGroup,
  type StreamRef,
} from "./group.ts";
export {
  type Handler,
  type HandlerBase,
  isSink,
  type Output,
  type SinkHandler,
  type SinkItem,
  type StepContext,
  type StepHandler,
  type StepOutcome,
} from "./handler.ts";
export {
  claimIdempotency,
  type ClaimIdempotencyOptions,
  type IdempotencyClaim,
  releaseIdempotency,
} from "./idempotency.ts";
export { compareIds, isStreamId } from "./ids.ts";
export { type QueueKeys, queueKeys, type QueueKeysOptions } from "./keys.ts";
export { type LatestItem, updateLatest } from "./latest.ts";
export {
  acquireLease,
  type Fence,
  type Lease,
  type LeaseKeys,
  type LeaseOptions,
  releaseLease,
  renewLease,
} from "./lease.ts";
export type {
  ConsumerInfo,
  DeleteIdleConsumersOptions,
  PendingEntriesOptions,
  PendingEntry,
  PendingSummary,
} from "./pending.ts";
export { leaseTtlMs, openQueue, type Queue, type QueueOptions } from "./queue.ts";
export { readStall, readStalls, type Stall } from "./stalls.ts";
export {
  type GroupInfo,
  openStream,
  type RangeOptions,
  type ReadOptions,
  readStreams,
  Stream,
  type StreamInfo,
  type TrimOptions,
} from "./stream.ts";
