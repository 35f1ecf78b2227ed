/**
 * The queue's counters, kept by Redis in one hash so that every process and
 * every isolate adds to the same figures: the field names, and how a scrape
 * turns the hash into counter values.
 *
 * The hash is the queue's `counters` key (`${STREAM_KEY}:counters`); its fields:
 *
 * | Field                    | Added to when                                   |
 * | ------------------------ | ----------------------------------------------- |
 * | `emitted`                | quotes are appended to the quote stream         |
 * | `acked:<group>`          | a group acknowledges entries (processed or dead) |
 * | `failed:<group>`         | a group's handler fails on an entry             |
 * | `claimed:<group>`        | a group takes entries over from idle consumers  |
 * | `dead_lettered:<group>`  | a group moves entries to the dead-letter stream |
 * | `replayed:<group>`       | dead letters of a group are replayed            |
 * | `outputs:<group>:<type>` | a group writes an alert of that type            |
 * | `last_drain_ms:<group>`  | set (not added to) to the ms time of a drain    |
 *
 * The engine's Lua scripts HINCRBY these fields inside the same atomic step
 * as the work they count, so a counter never runs ahead of or behind the
 * stream. The engine does not import this module (no engine code depends on
 * app code): the table above and {@linkcode counterField} are the contract.
 * Group names hold no `:`, so `outputs:<group>:<type>`splits at the first one.
 *
 * @module
 */

/** Builders of the counter hash's field names; the one place they are spelled. */
export const counterField = {
  /** Quotes appended to the stream. */
  emitted(): string {
    return "emitted";
  },
  /** Entries a group acknowledged. */
  acked(group: string): string {
    return `acked:${group}`;
  },
  /** Entries a group's handler failed on. */
  failed(group: string): string {
    return `failed:${group}`;
  },
  /** Entries a group took over from idle consumers. */
  claimed(group: string): string {
    return `claimed:${group}`;
  },
  /** Entries a group moved to the dead-letter stream. */
  deadLettered(group: string): string {
    return `dead_lettered:${group}`;
  },
  /** Dead letters of a group put back on the stream. */
  replayed(group: string): string {
    return `replayed:${group}`;
  },
  /** Alerts of `type` a group wrote. */
  alerts(group: string, type: string): string {
    return `outputs:${group}:${type}`;
  },
  /** Time of a group's last drain, in ms since the epoch (a value, not a count). */
  lastDrainMs(group: string): string {
    return `last_drain_ms:${group}`;
  },
} as const;

/** The per-group counters, by their field prefix. */
export const GROUP_COUNTERS = ["acked", "failed", "claimed", "dead_lettered", "replayed"] as const;

/** One per-group counter's name. */
export type GroupCounter = typeof GROUP_COUNTERS[number];

/** The counter hash, parsed. */
export interface Counters {
  /** Quotes appended to the stream. */
  emitted: number;
  /** Per-group counters: counter name, then group, then value. */
  groups: Record<GroupCounter, Map<string, number>>;
  /** Alerts written: group, then alert type, then count. */
  alerts: Map<string, Map<string, number>>;
  /** Last drain per group in ms since the epoch. */
  lastDrainMs: Map<string, number>;
}

/** Empty counters, as a fresh Redis has them. */
export function emptyCounters(): Counters {
  return {
    emitted: 0,
    groups: {
      acked: new Map(),
      failed: new Map(),
      claimed: new Map(),
      dead_lettered: new Map(),
      replayed: new Map(),
    },
    alerts: new Map(),
    lastDrainMs: new Map(),
  };
}

/**
 * Parses the counter hash (HGETALL reply); fields it does not know and
 * values that are not finite numbers are skipped, so a newer engine's extra
 * fields do not break an older scrape.
 *
 * @example
 * ```ts
 * const counters = parseCounters({ emitted: "16", "acked:price-alerts": "8" });
 * counters.groups.acked.get("price-alerts"); // 8
 * ```
 */
export function parseCounters(hash: Record<string, string>): Counters {
  const out = emptyCounters();
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    if (field === counterField.emitted()) {
      out.emitted = value;
      continue;
    }
    const colon = field.indexOf(":");
    if (colon <= 0) continue;
    const prefix = field.slice(0, colon);
    const rest = field.slice(colon + 1);
    if (rest === "") continue;
    if ((GROUP_COUNTERS as readonly string[]).includes(prefix)) {
      out.groups[prefix as GroupCounter].set(rest, value);
    } else if (prefix === "last_drain_ms") {
      out.lastDrainMs.set(rest, value);
    } else if (prefix === "outputs") {
      const split = rest.indexOf(":");
      if (split <= 0 || split === rest.length - 1) continue;
      const group = rest.slice(0, split);
      const byType = out.alerts.get(group) ?? new Map<string, number>();
      byType.set(rest.slice(split + 1), value);
      out.alerts.set(group, byType);
    }
  }
  return out;
}

/** Counters of several partitions as one: sums, and the latest drain per group. */
export function mergeCounters(all: Counters[]): Counters {
  const out = emptyCounters();
  const add = (map: Map<string, number>, key: string, value: number) =>
    map.set(key, (map.get(key) ?? 0) + value);
  for (const c of all) {
    out.emitted += c.emitted;
    for (const name of GROUP_COUNTERS) {
      for (const [group, value] of c.groups[name]) add(out.groups[name], group, value);
    }
    for (const [group, byType] of c.alerts) {
      const merged = out.alerts.get(group) ?? new Map<string, number>();
      for (const [type, value] of byType) add(merged, type, value);
      out.alerts.set(group, merged);
    }
    for (const [group, ms] of c.lastDrainMs) {
      out.lastDrainMs.set(group, Math.max(out.lastDrainMs.get(group) ?? 0, ms));
    }
  }
  return out;
}
