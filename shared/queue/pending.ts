/**
 * What a consumer group holds: its pending entries (delivered, not yet
 * acknowledged) and its consumers, as XPENDING and XINFO CONSUMERS report them.
 *
 * @module
 */

/** XPENDING summary of a group. */
export interface PendingSummary {
  /** Entries delivered and not yet acknowledged. */
  count: number;
  /** Smallest pending id, or null. */
  minId: string | null;
  /** Largest pending id, or null. */
  maxId: string | null;
  /** Pending count per consumer holding any. */
  consumers: { name: string; pending: number }[];
}

/** Options of {@linkcode StreamGroup.pendingEntries}. */
export interface PendingEntriesOptions {
  /**
   * Smallest id to list ("-" for the oldest).
   * @default {"-"}
   */
  start?: string;
  /**
   * Largest id to list ("+" for the newest).
   * @default {"+"}
   */
  end?: string;
  /**
   * Most entries to list, 1 to 10000.
   * @default {100}
   */
  count?: number;
  /**
   * Only the entries this consumer holds; undefined lists every consumer's.
   * @default {undefined}
   */
  consumer?: string;
}

/** One pending entry as XPENDING's extended form reports it. */
export interface PendingEntry {
  /** Entry id. */
  id: string;
  /** Consumer that holds it. */
  consumer: string;
  /** Milliseconds since it was last delivered. */
  idleMs: number;
  /** Times it was delivered. */
  deliveries: number;
}

/** One consumer as XINFO CONSUMERS reports it. */
export interface ConsumerInfo {
  /** Consumer name. */
  name: string;
  /** Entries it holds pending. */
  pending: number;
  /** Milliseconds since its last interaction. */
  idleMs: number;
}

/** Options of {@linkcode StreamGroup.deleteIdleConsumers}. */
export interface DeleteIdleConsumersOptions {
  /**
   * A consumer never removed, e.g. the caller's own.
   * @default {undefined}
   */
  keep?: string;
}

/** Parses XPENDING's summary form. */
export function parsePendingSummary(reply: unknown): PendingSummary {
  const r = reply as unknown[];
  const consumers = Array.isArray(r[3])
    ? (r[3] as [string, string][]).map(([name, pending]) => ({ name, pending: Number(pending) }))
    : [];
  return {
    count: Number(r[0]),
    minId: r[1] ? String(r[1]) : null,
    maxId: r[2] ? String(r[2]) : null,
    consumers,
  };
}

/** Parses XPENDING's extended form. */
export function parsePendingEntries(reply: unknown): PendingEntry[] {
  return (reply as [string, string, number, number][]).map(([id, name, idle, deliveries]) => ({
    id,
    consumer: name,
    idleMs: Number(idle),
    deliveries: Number(deliveries),
  }));
}
