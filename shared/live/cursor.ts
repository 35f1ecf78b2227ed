/**
 * Live-feed cursors: where a client is in every stream the feed reads. The
 * feed reads two streams per partition, quotes and alerts, so a cursor is the
 * last entry id passed in each, in partition order: `[q0, a0, q1, a1, ...]`.
 *
 * As text (the SSE event id, the WebSocket `id`, `since`):
 * - one partition: `"<quoteId>,<alertId>"`, e.g. `"1700000000000-3,1699999999000-0"`,
 *   exactly as before partitions existed;
 * - N partitions: N such pairs joined by `;`, partition 0 first, each id
 *   shortened (`"<ms>"` when its sequence is 0, `"0"` for nothing yet), e.g.
 *   `"1700000000000-3,0;1700000000001,1699999999000-2"`.
 *
 * A single pair (or a single id) given for N partitions is a point in time
 * applied to every partition: each resumes after that id.
 *
 * @module
 */

import { BadRequestError } from "../errors.ts";

/** A stream entry id as two numbers (ms < 2^53, so exact). */
export interface EntryId {
  /** Milliseconds part. */
  ms: number;
  /** Sequence number within the millisecond. */
  seq: number;
}

/** Last entry passed in every stream the feed reads: `[q0, a0, q1, a1, ...]`. */
export type Cursor = readonly EntryId[];

/** The id before every entry. */
export const ZERO: EntryId = { ms: 0, seq: 0 };

const ID_TEXT = /^(\d{1,16})(?:-(\d{1,16}))?$/;
// Longest cursor text accepted: 256 partitions of two full ids each fit.
const MAX_CURSOR_TEXT = 256 * 2 * 34;

/** Parses `"<ms>-<seq>"` or `"<ms>"`; null when it is neither. */
export function parseEntryId(text: string): EntryId | null {
  const match = ID_TEXT.exec(text);
  if (match === null) return null;
  const ms = Number(match[1]);
  const seq = Number(match[2] ?? 0);
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms, seq } : null;
}

/** Formats an id as Redis writes it, `"<ms>-<seq>"`. */
export function idText(id: EntryId): string {
  return `${id.ms}-${id.seq}`;
}

/** Formats an id as a partitioned cursor writes it: `"<ms>"` when seq is 0, `"0"` for none. */
export function shortIdText(id: EntryId): string {
  return id.seq === 0 ? `${id.ms}` : `${id.ms}-${id.seq}`;
}

/** True when `a` comes after `b`. */
export function isAfter(a: EntryId, b: EntryId): boolean {
  return a.ms > b.ms || (a.ms === b.ms && a.seq > b.seq);
}

/** The later of two ids. */
export function later(a: EntryId, b: EntryId): EntryId {
  return isAfter(a, b) ? a : b;
}

/** The earlier of two ids. */
export function earlier(a: EntryId, b: EntryId): EntryId {
  return isAfter(a, b) ? b : a;
}

/** Elementwise later of two cursors of the same layout. */
export function laterCursor(a: Cursor, b: Cursor): EntryId[] {
  return a.map((id, i) => later(id, b[i] ?? ZERO));
}

/**
 * Joins per-stream id texts (`[q0, a0, q1, a1, ...]`, already formatted) into
 * cursor text: `"q0,a0"` for one partition, `"q0,a0;q1,a1;..."` for more.
 */
export function joinIdTexts(texts: readonly string[]): string {
  if (texts.length === 2) return `${texts[0]},${texts[1]}`;
  let out = "";
  for (let i = 0; i < texts.length; i += 2) {
    out += `${i === 0 ? "" : ";"}${texts[i]},${texts[i + 1]}`;
  }
  return out;
}

/** Formats one stream's id for a cursor of `streams` streams (full for one partition). */
export function cursorIdText(id: EntryId, streams: number): string {
  return streams === 2 ? idText(id) : shortIdText(id);
}

/**
 * Formats a cursor as its event id: `"<quoteId>,<alertId>"` for one
 * partition, `"<q0>,<a0>;<q1>,<a1>;..."` (short ids) for more.
 */
export function cursorText(cursor: Cursor): string {
  return joinIdTexts(cursor.map((id) => cursorIdText(id, cursor.length)));
}

/**
 * Parses a resume point: `"<quoteId>,<alertId>"` pairs joined by `;` (one per
 * partition), or one pair, or one id for both streams; undefined or "" means
 * "from now" (null). {@linkcode resolveCursor} fits it to a partition count.
 *
 * @example
 * ```ts
 * parseCursor("1700000000000-3,1699999999000-0"); // one partition, both ids
 * parseCursor("1700000000000"); // same id for quotes and alerts
 * parseCursor("1700000000000-3,0;1700000000001,0"); // two partitions
 * ```
 * @throws {BadRequestError} When the text is none of these.
 */
export function parseCursor(raw: string | undefined): Cursor | null {
  if (raw === undefined || raw.trim() === "") return null;
  const text = raw.trim();
  const bad = () =>
    new BadRequestError(
      `Malformed event id: "${text.slice(0, 80)}${
        text.length > 80 ? "..." : ""
      }": expected "<quoteId>,<alertId>" per partition joined by ";", or one entry id`,
    );
  if (text.length > MAX_CURSOR_TEXT) throw bad();
  const out: EntryId[] = [];
  for (const pair of text.split(";")) {
    const parts = pair.split(",");
    const ids = parts.map(parseEntryId);
    if (parts.length > 2 || ids.some((id) => id === null)) throw bad();
    out.push(ids[0]!, ids[ids.length - 1]!);
  }
  return out;
}

/**
 * Fits a parsed cursor to `partitions`: one with a pair per partition stays
 * as it is; a single pair applies to every partition; any other count is refused.
 *
 * @throws {BadRequestError} When the cursor names another number of partitions.
 */
export function resolveCursor(cursor: Cursor, partitions: number): Cursor {
  if (cursor.length === partitions * 2) return cursor;
  if (cursor.length === 2) {
    return Array.from({ length: partitions * 2 }, (_, i) => cursor[i % 2]);
  }
  throw new BadRequestError(
    `Event id names ${
      cursor.length / 2
    } partitions but the feed has ${partitions} (STREAM_PARTITIONS): resume with one id, or none`,
  );
}
