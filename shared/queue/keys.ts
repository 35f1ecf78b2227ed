/**
 * Every key of a queue, derived from one namespace (the stream's name). With
 * a hash tag every key carries it, so all the keys one script call touches
 * live in one slot and the same scripts run unchanged on Redis Cluster.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { LeaseKeys } from "./lease.ts";

/** Options of {@linkcode queueKeys}. */
export interface QueueKeysOptions {
  /**
   * Hash tag every key carries (`{tag}`), e.g. a partition's; undefined adds none.
   * @default {undefined}
   */
  hashTag?: string;
  /**
   * Name of the dead-letter stream.
   * @default {`${namespace}:dead`}
   */
  deadLetters?: string;
}

/** The keys of one queue. */
export interface QueueKeys {
  /** The stream. */
  readonly stream: string;
  /** Dead-letter stream: entries a group gave up on. */
  readonly deadLetters: string;
  /** Hash group -> number of its dead letters. */
  readonly deadCount: string;
  /** Hash group -> JSON record of the dependency its drain is stalled on. */
  readonly stalled: string;
  /** Hash of counters kept by the scripts (`acked:<group>`, `emitted`, ...). */
  readonly counters: string;
  /** Hash tag the keys carry, or undefined. */
  readonly hashTag: string | undefined;
  /** Hash key -> JSON state of a stateful group. */
  state(group: string): string;
  /** The lease of a group: its key and the counter its fencing tokens come from. */
  lease(group: string): LeaseKeys;
  /** Where a drain's read transaction parks a group's position while it must read nothing. */
  readHold(group: string): string;
  /** What a group's last read ahead left pending, for the commit sent before its reply is in. */
  readAhead(group: string): string;
  /** Record of an idempotent append, by the caller's key (hashed, so any text is safe). */
  idempotency(key: string): string;
  /** Any other key of the application that must live beside the queue's (same hash tag). */
  related(name: string): string;
}

const TAG_PATTERN = /^[^{}]{1,64}$/;

/**
 * Derives every key of the queue `namespace`.
 *
 * @example
 * ```ts
 * const keys = queueKeys("stock_quotes");
 * keys.state("price-alerts"); // "stock_quotes:state:price-alerts"
 * queueKeys("stock_quotes", { hashTag: "p0" }).stream; // "stock_quotes{p0}"
 * ```
 */
export function queueKeys(namespace: string, options: QueueKeysOptions = {}): QueueKeys {
  const { hashTag } = options;
  if (namespace === "" || /[{}]/.test(namespace)) {
    throw new RangeError(
      `Cannot derive queue keys as the namespace must be non-empty without braces: current value is "${namespace}"`,
    );
  }
  if (hashTag !== undefined && !TAG_PATTERN.test(hashTag)) {
    throw new RangeError(
      `Cannot derive queue keys as 'hashTag' must be 1 to 64 characters without braces: current value is "${hashTag}"`,
    );
  }
  const related = (name: string) => hashTag === undefined ? name : `${name}{${hashTag}}`;
  const stream = related(namespace);
  const deadLetters = options.deadLetters === undefined
    ? `${stream}:dead`
    : related(options.deadLetters);
  return {
    stream,
    deadLetters,
    deadCount: `${deadLetters}:count`,
    stalled: `${stream}:stalled`,
    counters: `${stream}:counters`,
    hashTag,
    state: (group) => `${stream}:state:${group}`,
    lease: (group) => ({
      key: `${stream}:lease:${group}`,
      tokens: `${stream}:lease:${group}:fence`,
    }),
    readHold: (group) => `${stream}:lease:${group}:hold`,
    readAhead: (group) => `${stream}:lease:${group}:ahead`,
    idempotency: (key) => `${stream}:idem:${createHash("sha256").update(key).digest("hex")}`,
    related,
  };
}
