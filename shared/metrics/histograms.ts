/**
 * Histograms this process keeps in memory: how long drains and emits take
 * and how many entries a drain reads. They are per process on purpose:
 * timings are observed where the work runs, and adding each observation to
 * Redis would cost a write per drain and per tick for figures that
 * Prometheus sums across instances anyway (`sum by (le)`). A restart resets
 * them, which Prometheus' `rate()` and `histogram_quantile()` handle.
 *
 * @module
 */

import { Histogram, Registry } from "prom-client";
import type { DrainResult } from "../queue/mod.ts";

const registry = new Registry();

/** Upper bounds of the drain duration buckets, in seconds: a chunk up to a whole cron budget. */
const DRAIN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];
/** Upper bounds of the entries-per-drain buckets. */
const ENTRY_BUCKETS = [0, 1, 10, 50, 100, 500, 1000, 5000, 10000, 50000];
/** Upper bounds of the emit duration buckets, in seconds: one atomic append. */
const EMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const drainDuration = new Histogram({
  name: "tickstream_drain_duration_seconds",
  help: "Wall time of one drain of a group in this process (busy drains excluded)",
  labelNames: ["group"],
  buckets: DRAIN_BUCKETS,
  registers: [registry],
});

const drainEntries = new Histogram({
  name: "tickstream_drain_entries",
  help: "Entries one drain of a group read or reclaimed in this process (busy drains excluded)",
  labelNames: ["group"],
  buckets: ENTRY_BUCKETS,
  registers: [registry],
});

const emitDuration = new Histogram({
  name: "tickstream_emit_duration_seconds",
  help: "Wall time of one emit (one atomic append of a batch) in this process",
  buckets: EMIT_BUCKETS,
  registers: [registry],
});

/**
 * Records one drain's duration and entries read. A busy drain (another
 * invocation held the lease) did no work, so it is left out rather than
 * pulling the durations towards zero.
 */
export function observeDrain(
  result: Pick<DrainResult, "group" | "read" | "durationMs" | "busy">,
): void {
  if (result.busy) return;
  drainDuration.observe({ group: result.group }, result.durationMs / 1000);
  drainEntries.observe({ group: result.group }, result.read);
}

/** Records one emit's duration, in ms. */
export function observeEmit(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`Cannot observe an emit as 'ms' must be a number >= 0: got ${ms}`);
  }
  emitDuration.observe(ms / 1000);
}

/** This process's histogram registry, merged into each scrape. */
export function processRegistry(): Registry {
  return registry;
}
