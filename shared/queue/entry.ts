/**
 * A stream entry, and its flat field list turned into a record.
 *
 * @module
 */

/** One stream entry: its id and its flat field/value list. */
export interface StreamEntry {
  /** Entry id, "ms-seq". */
  id: string;
  /** Flat list: field, value, field, value... */
  fields: string[];
}

/**
 * Turns a flat field/value list into a record (the last value of a repeated field wins).
 *
 * @example
 * ```ts
 * fieldsToRecord(["symbol", "AAPL", "price", "190"]); // { symbol: "AAPL", price: "190" }
 * ```
 */
export function fieldsToRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1];
  return out;
}
