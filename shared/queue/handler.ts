/**
 * The contract a consumer group fills in; the engine does the rest (leases,
 * reads, claims, retries, dead letters, the atomic commit, trimming).
 *
 * A group decodes each entry into an item and names its key (the per-key
 * order: entries of one key are applied in stream order, and a failed one
 * holds back the later ones of its key). Then it either folds items into a
 * per-key state with `step` (state, outputs and ack committed atomically),
 * or hands them to an external sink with `write` (idempotent by entry id,
 * acked once it resolved).
 *
 * Errors: `decode` throwing (best a {@linkcode PoisonError}) dead-letters the
 * entry at once; `step` or `write` throwing a {@linkcode DependencyError}
 * stalls the drain without counting a delivery; any other error is retried
 * with back-off until the delivery limit, then dead-lettered.
 *
 * @module
 */

/** An output of one step: an entry for the handler's output stream. */
export interface Output {
  /** The entry, as a flat field/value list. */
  fields: string[];
  /** Kind of output, counted per group and kind (`outputs:<group>:<kind>`). */
  kind: string;
}

/** What a step is told besides the item. */
export interface StepContext {
  /** Id of the entry in the main stream (for a replay, the original entry's). */
  id: string;
  /** Time of processing, in ms since the epoch. */
  now: number;
}

/** Result of one step. */
export interface StepOutcome<S> {
  /** The key's state after the item; JSON-serialisable. */
  state: S;
  /**
   * Entries for the output stream, possibly none.
   * @default {[]}
   */
  outputs?: Output[];
}

/** A decoded entry handed to a sink. */
export interface SinkItem<T> {
  /** Stream entry id: the sink's idempotency key. */
  id: string;
  /** The decoded item. */
  item: T;
}

/** Fields every handler has: its name, start, decoding and key. */
export interface HandlerBase<T> {
  /** Consumer group name. */
  name: string;
  /**
   * Where a new group starts: "$" (only entries added from now on), "0" (the whole stream) or an id.
   * @default {"$"}
   */
  start?: string;
  /** Decodes an entry's fields; throws for an entry that can never be processed. */
  decode(fields: string[]): T;
  /** The per-key order: entries with the same key are applied in stream order. */
  key(item: T): string;
}

/** A stateful group: folds each item into its key's state; committed with the ack. */
export interface StepHandler<T, S = unknown> extends HandlerBase<T> {
  /** Applies one item to its key's state (undefined for a key never seen). Pure. */
  step(state: S | undefined, item: T, context: StepContext): StepOutcome<S>;
  /**
   * Stream the outputs go to, and its approximate length; required when `step` returns outputs.
   * @default {undefined}
   */
  output?: { key: string; maxLen: number };
}

/** A group whose effect lives outside Redis: `write` is idempotent by entry id. */
export interface SinkHandler<T> extends HandlerBase<T> {
  /** Writes a chunk (one transaction); throws to leave the whole chunk pending. */
  write(items: SinkItem<T>[]): Promise<void>;
}

/** A consumer group the engine can drain. */
export type Handler<T = unknown, S = unknown> = StepHandler<T, S> | SinkHandler<T>;

/** True when `handler` is a sink. */
export function isSink<T, S>(handler: Handler<T, S>): handler is SinkHandler<T> {
  return "write" in handler;
}
