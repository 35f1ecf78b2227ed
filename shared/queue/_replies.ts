/**
 * Private helpers: argument checks and the parsing of the flat arrays that
 * ioredis returns for stream replies.
 *
 * @module
 */

import type { StreamEntry } from "./entry.ts";

/** The range a numeric option must be in, and what to say when it is not. */
interface IntegerRule {
  /** What the call does, for the message: "Cannot <action> as ...". */
  action: string;
  /** Name of the option. */
  name: string;
  /** Smallest value allowed. */
  min: number;
  /** Largest value allowed; no upper bound when undefined. */
  max?: number;
}

/** Throws a RangeError naming the option and its value when `value` breaks `rule`. */
export function checkInteger(value: number, rule: IntegerRule): void {
  const { action, name, min, max } = rule;
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new RangeError(
      `Cannot ${action} as '${name}' must be ${range}: current value is ${value}`,
    );
  }
}

/** Most entries one read, range, claim or pending listing may ask for. */
const MAX_COUNT = 10000;

/** Checks a COUNT option. */
export function checkCount(action: string, count: number): void {
  checkInteger(count, { action, name: "count", min: 1, max: MAX_COUNT });
}

/** Checks a BLOCK option. */
export function checkBlock(action: string, blockMs: number | undefined): void {
  if (blockMs !== undefined) checkInteger(blockMs, { action, name: "blockMs", min: 0 });
}

/** Parses a list of entries; XAUTOCLAIM's nil fields (deleted while pending) become []. */
export function toEntries(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  const out: StreamEntry[] = [];
  for (const item of raw) {
    if (Array.isArray(item) && typeof item[0] === "string") {
      out.push({ id: item[0], fields: Array.isArray(item[1]) ? item[1] : [] });
    }
  }
  return out;
}

/** Turns a flat [name, value, ...] reply into a record. */
export function flatToRecord(flat: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

/** A number, or null for nil or a non-number. */
export function toNumberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}
