/**
 * The queue's Prometheus metrics: gauges and counters read from Redis at
 * scrape time (one pipelined round trip), and histograms kept per process.
 * See docs/metrics.md for every metric and its meaning.
 *
 * @module
 */

export {
  counterField,
  type Counters,
  emptyCounters,
  GROUP_COUNTERS,
  type GroupCounter,
  mergeCounters,
  parseCounters,
} from "./counters.ts";
export { METRICS_CONTENT_TYPE, renderMetrics, snapshotRegistry } from "./exposition.ts";
export { observeDrain, observeEmit, processRegistry } from "./histograms.ts";
export {
  type GroupSnapshot,
  type QueueSnapshot,
  readPartitionedSnapshot,
  readQueueSnapshot,
  type SnapshotKeys,
  type SnapshotOptions,
  SnapshotReadError,
} from "./snapshot.ts";
