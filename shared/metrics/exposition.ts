/**
 * Turns one {@linkcode QueueSnapshot} into Prometheus metrics. A fresh
 * registry per scrape: the values are Redis' at this instant, shared by
 * every process, so nothing of them is kept between scrapes.
 *
 * @module
 */

import { Counter, Gauge, Registry } from "prom-client";
import { GROUP_COUNTERS, type GroupCounter } from "./counters.ts";
import { processRegistry } from "./histograms.ts";
import type { PartitionSnapshot, QueueSnapshot } from "./snapshot.ts";

/** Help text of each per-group counter, by its field prefix. */
const GROUP_COUNTER_HELP: Record<GroupCounter, string> = {
  acked: "Entries a group acknowledged (processed, or dead-lettered)",
  failed: "Deliveries on which a group's handler failed",
  claimed: "Entries a group took over from idle consumers",
  dead_lettered: "Entries a group moved to the dead-letter stream",
  replayed: "Dead letters of a group put back on the quote stream",
};

function gauge(registry: Registry, name: string, help: string, labels: string[]): Gauge {
  return new Gauge({ name, help, labelNames: labels, registers: [registry] });
}

/** Lag and pending per group and partition: with STREAM_PARTITIONS > 1 only. */
function partitionGauges(registry: Registry, partitions: PartitionSnapshot[]): void {
  const lag = gauge(
    registry,
    "tickstream_partition_lag",
    "Entries of one partition not yet delivered to the group",
    ["group", "partition"],
  );
  const pending = gauge(
    registry,
    "tickstream_partition_pending",
    "Entries of one partition delivered to the group and not acknowledged",
    ["group", "partition"],
  );
  for (const { partition, groups } of partitions) {
    for (const g of groups) {
      const labels = { group: g.name, partition: String(partition) };
      if (g.lag !== null) lag.set(labels, g.lag);
      pending.set(labels, g.pending);
    }
  }
}

/** The Redis-side metrics of `snapshot` in a new registry. */
export function snapshotRegistry(snapshot: QueueSnapshot): Registry {
  const registry = new Registry();
  const exists = gauge(
    registry,
    "tickstream_group_exists",
    "1 when the registered group exists on the quote stream, 0 when Redis lost it",
    ["group"],
  );
  const lag = gauge(
    registry,
    "tickstream_group_lag",
    "Entries not yet delivered to the group (absent while Redis cannot tell)",
    ["group"],
  );
  const pending = gauge(
    registry,
    "tickstream_group_pending",
    "Entries delivered to the group and not acknowledged",
    ["group"],
  );
  const oldest = gauge(
    registry,
    "tickstream_group_oldest_pending_age_seconds",
    "Idle time of the group's oldest pending entry, 0 when nothing is pending",
    ["group"],
  );
  const consumers = gauge(
    registry,
    "tickstream_group_consumers",
    "Consumers of the group",
    ["group"],
  );
  const dead = gauge(
    registry,
    "tickstream_group_dead_letters",
    "Dead letters of the group in the dead-letter stream",
    ["group"],
  );
  const lastDrain = gauge(
    registry,
    "tickstream_group_last_drain_timestamp_seconds",
    "Time of the group's last drain, in seconds since the epoch",
    ["group"],
  );
  const length = gauge(
    registry,
    "tickstream_stream_length",
    "Entries in a stream: quotes, alerts or dead_letters",
    ["stream"],
  );
  for (const g of snapshot.groups) {
    const labels = { group: g.name };
    exists.set(labels, g.exists ? 1 : 0);
    if (g.lag !== null) lag.set(labels, g.lag);
    pending.set(labels, g.pending);
    oldest.set(labels, g.oldestPendingIdleMs / 1000);
    consumers.set(labels, g.consumers);
    dead.set(labels, g.deadLetters);
  }
  for (const [group, ms] of snapshot.counters.lastDrainMs) lastDrain.set({ group }, ms / 1000);
  if (snapshot.partitions !== undefined) partitionGauges(registry, snapshot.partitions);
  for (const [stream, value] of Object.entries(snapshot.streams)) length.set({ stream }, value);

  const { counters } = snapshot;
  new Counter({
    name: "tickstream_emitted_total",
    help: "Quotes appended to the quote stream",
    registers: [registry],
  }).inc(counters.emitted);
  const registered = snapshot.groups.map((g) => g.name);
  for (const name of GROUP_COUNTERS) {
    const counter = new Counter({
      name: `tickstream_${name}_total`,
      help: GROUP_COUNTER_HELP[name],
      labelNames: ["group"],
      registers: [registry],
    });
    // Every registered group from 0, so rate() sees the first increment.
    const values = counters.groups[name];
    for (const group of new Set([...registered, ...values.keys()])) {
      counter.inc({ group }, values.get(group) ?? 0);
    }
  }
  const alerts = new Counter({
    name: "tickstream_alerts_total",
    help: "Alerts written, by group and alert type",
    labelNames: ["group", "type"],
    registers: [registry],
  });
  for (const [group, byType] of counters.alerts) {
    for (const [type, value] of byType) alerts.inc({ group, type }, value);
  }
  return registry;
}

/** Content type of the exposition, Prometheus text format 0.0.4. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** The exposition text of `snapshot` plus this process's histograms. */
export async function renderMetrics(snapshot: QueueSnapshot): Promise<string> {
  return await Registry.merge([snapshotRegistry(snapshot), processRegistry()]).metrics();
}
