/**
 * The stream module: the one place that speaks Redis Streams commands. Every
 * function takes the ioredis client as its first argument and never connects
 * on its own. Replies that ioredis returns as flat arrays are parsed into
 * typed objects here.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { lua, LUA_ID_HELPERS, runScript } from "./_lua.ts";

/** One stream entry: its id and its flat field/value list. */
export interface StreamEntry {
  /** Entry id, "ms-seq". */
  id: string;
  /** Flat list: field, value, field, value... */
  fields: string[];
}

/** Raised when a stream command is refused for a reason other than an outage. */
export class StreamError extends Error {
  /** Creates the error with the failed action in the message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreamError";
  }
}

function toEntries(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  const out: StreamEntry[] = [];
  for (const item of raw) {
    // XAUTOCLAIM returns nil fields for entries deleted while pending.
    if (Array.isArray(item) && typeof item[0] === "string") {
      out.push({ id: item[0], fields: Array.isArray(item[1]) ? item[1] : [] });
    }
  }
  return out;
}

function flatToRecord(flat: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

function toNumberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** Compares two stream ids numerically: negative when a < b. */
export function compareIds(a: string, b: string): number {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** Milliseconds part of a stream id (the time Redis added the entry). */
export function idTime(id: string): number {
  return Number(id.split("-")[0]);
}

const APPEND_SCRIPT = lua(`${LUA_ID_HELPERS}
local stream = KEYS[1]
local p = cjson.decode(ARGV[1])
if p.idem then
  if redis.call('GET', p.idem.key) ~= p.idem.token then return cjson.encode({status = 'lost'}) end
end
if p.guard then
  local version = redis.call('HGET', p.guard.key, 'version') or '0'
  if version ~= p.guard.expected then return cjson.encode({status = 'conflict'}) end
end
local first, last
local ids = {}
for i, fields in ipairs(p.entries) do
  local id = redis.call('XADD', stream, '*', unpack(fields))
  ids[i] = id
  if i == 1 then first = id end
  last = id
end
if p.guard then
  redis.call('HSET', p.guard.key, 'version', p.guard.next, 'state', p.guard.state)
end
if p.latest then
  for _, item in ipairs(p.latest.items) do
    redis.call('HSET', p.latest.key, item[2], '{"id":"' .. ids[item[1]] .. '",' .. item[3])
  end
end
local result = {status = 'ok', stream = stream, emitted = #p.entries, firstId = first, lastId = last}
if p.idem then
  redis.call('SET', p.idem.key, cjson.encode({state = 'done', fp = p.idem.fp, response = result}),
    'PX', p.idem.ttl)
end
if p.maxlen then result.trimmed = safe_trim(stream, p.maxlen, p.trimLimit) end
return cjson.encode(result)
`);

/** Options of {@linkcode appendBatch}. */
export interface AppendBatchOptions {
  /**
   * Entries every consumer group is done with that the stream keeps; older
   * ones are trimmed, never one a group still needs. Undefined keeps all.
   * @default {undefined}
   */
  maxLen?: number;
  /**
   * Most entries one append may trim, so its cost stays bounded.
   * @default {max(1000, 2 x batch size)}
   */
  trimLimit?: number;
  /**
   * Optimistic guard on a hash with a `version` field: the append happens only
   * while the version equals `expected`, and then writes `state` and `next`.
   * @default {undefined}
   */
  guard?: { key: string; expected: string; next: string; state: string };
  /**
   * Idempotency record: the append happens only while `key` still holds
   * `token`, and replaces it with the response for `ttlMs`.
   * @default {undefined}
   */
  idempotency?: { key: string; token: string; fingerprint: string; ttlMs: number };
  /**
   * Latest-entry index: for each item, HSET key field to the JSON object whose
   * members after "id" are `rest` (a JSON object text without its leading brace).
   * `index` is the 0-based position of the entry in the batch.
   * @default {undefined}
   */
  latest?: { key: string; items: { index: number; field: string; rest: string }[] };
}

/** Result of {@linkcode appendBatch}. */
export interface AppendBatchResult {
  /** "ok", or why nothing was written: "conflict" (guard) or "lost" (idempotency token). */
  status: "ok" | "conflict" | "lost";
  /** Stream key. */
  stream?: string;
  /** Entries added. */
  emitted?: number;
  /** Id of the first entry added. */
  firstId?: string;
  /** Id of the last entry added. */
  lastId?: string;
  /** Entries trimmed. */
  trimmed?: number;
}

/**
 * Appends a batch of entries in one round trip and one atomic step (a Lua
 * script), optionally guarded, recorded for idempotency and trimmed safely.
 *
 * @example
 * ```ts
 * const result = await appendBatch(redis, "stock_quotes", [encodeQuote(quote)], { maxLen: 100000 });
 * result.firstId; // "1700000000000-0"
 * ```
 */
export async function appendBatch(
  redis: Redis,
  key: string,
  entries: string[][],
  options: AppendBatchOptions = {},
): Promise<AppendBatchResult> {
  if (entries.length === 0) throw new RangeError("Cannot append an empty batch");
  const { maxLen, trimLimit = Math.max(1000, 2 * entries.length) } = options;
  const payload = {
    entries,
    maxlen: maxLen,
    trimLimit,
    guard: options.guard,
    idem: options.idempotency
      ? {
        key: options.idempotency.key,
        token: options.idempotency.token,
        fp: options.idempotency.fingerprint,
        ttl: options.idempotency.ttlMs,
      }
      : undefined,
    latest: options.latest
      ? {
        key: options.latest.key,
        items: options.latest.items.map((item) => [item.index + 1, item.field, item.rest]),
      }
      : undefined,
  };
  const reply = await runScript(redis, APPEND_SCRIPT, [key], [JSON.stringify(payload)]);
  return JSON.parse(String(reply)) as AppendBatchResult;
}

const UPDATE_LATEST_SCRIPT = lua(`${LUA_ID_HELPERS}
local key = KEYS[1]
local updated = 0
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local current = redis.call('HGET', key, item[1])
  local current_id = current and string.match(current, '^{"id":"([0-9]+%-[0-9]+)"')
  if not current_id or id_less(current_id, item[2]) then
    redis.call('HSET', key, item[1], '{"id":"' .. item[2] .. '",' .. item[3])
    updated = updated + 1
  end
end
return updated
`);

/**
 * Updates the latest-entry index that {@linkcode appendBatch} maintains, in one
 * round trip: for each item, sets `field` to the JSON object `{"id": id, ...}`
 * only when `id` is newer than the id stored there, so entries that reach it
 * late or twice never replace a newer one. Returns how many fields changed.
 *
 * @example
 * ```ts
 * await updateLatest(redis, "stock_quotes:latest", [
 *   { field: "AAPL", id: "1700000000000-0", rest: '"symbol":"AAPL","price":190}' },
 * ]); // 1, or 0 when AAPL already holds a newer id
 * ```
 */
export async function updateLatest(
  redis: Redis,
  key: string,
  items: { field: string; id: string; rest: string }[],
): Promise<number> {
  if (items.length === 0) return 0;
  const payload = JSON.stringify(items.map((item) => [item.field, item.id, item.rest]));
  return Number(await runScript(redis, UPDATE_LATEST_SCRIPT, [key], [payload]));
}

/**
 * Creates a consumer group if it does not exist (MKSTREAM; BUSYGROUP ignored).
 * It starts at `0` by default so entries added before the first read are not missed.
 *
 * @example
 * ```ts
 * await ensureGroup(redis, "stock_quotes", "price-alerts"); // true when created
 * ```
 */
export async function ensureGroup(
  redis: Redis,
  key: string,
  group: string,
  startId = "0",
): Promise<boolean> {
  try {
    await redis.xgroup("CREATE", key, group, startId, "MKSTREAM");
    return true;
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("BUSYGROUP")) return false;
    throw error;
  }
}

/** Options of {@linkcode readGroup}. */
export interface ReadGroupOptions {
  /**
   * Most entries to read.
   * @default {100}
   */
  count?: number;
  /**
   * Wait up to this many ms for new entries; undefined does not block.
   * @default {undefined}
   */
  blockMs?: number;
  /**
   * Id to read from: ">" for new entries, "0" for this consumer's own pending ones.
   * @default {">"}
   */
  from?: string;
}

/**
 * Reads one chunk for `consumer` in `group` (XREADGROUP).
 *
 * @example
 * ```ts
 * const entries = await readGroup(redis, "stock_quotes", "price-alerts", "worker-1", { count: 100 });
 * ```
 */
export async function readGroup(
  redis: Redis,
  key: string,
  group: string,
  consumer: string,
  options: ReadGroupOptions = {},
): Promise<StreamEntry[]> {
  const { count = 100, blockMs, from = ">" } = options;
  const args: (string | number)[] = ["GROUP", group, consumer, "COUNT", count];
  if (blockMs !== undefined) args.push("BLOCK", blockMs);
  args.push("STREAMS", key, from);
  // deno-lint-ignore no-explicit-any
  const reply = await (redis as any).xreadgroup(...args) as [string, unknown][] | null;
  if (!reply || reply.length === 0) return [];
  return toEntries(reply[0][1]);
}

/**
 * Reads entries after `afterId` without a group (XREAD), optionally blocking.
 *
 * @example
 * ```ts
 * const entries = await readAfter(redis, "stock_quotes", "0", { count: 10 });
 * ```
 */
export async function readAfter(
  redis: Redis,
  key: string,
  afterId: string,
  options: { count?: number; blockMs?: number } = {},
): Promise<StreamEntry[]> {
  const { count = 100, blockMs } = options;
  const args: (string | number)[] = ["COUNT", count];
  if (blockMs !== undefined) args.push("BLOCK", blockMs);
  args.push("STREAMS", key, afterId);
  // deno-lint-ignore no-explicit-any
  const reply = await (redis as any).xread(...args) as [string, unknown][] | null;
  if (!reply || reply.length === 0) return [];
  return toEntries(reply[0][1]);
}

/**
 * Reads entries after a given id from several streams in one call (XREAD),
 * optionally blocking until any of them has one. Returns the entries per key;
 * a key without new entries maps to an empty list.
 *
 * @example
 * ```ts
 * const read = await readStreams(redis, [["stock_quotes", "0-0"], ["stock_alerts", "0-0"]], {
 *   blockMs: 5000,
 * });
 * read.get("stock_quotes"); // [{ id: "1700000000000-0", fields: [...] }]
 * ```
 */
export async function readStreams(
  redis: Redis,
  streams: [key: string, afterId: string][],
  options: { count?: number; blockMs?: number } = {},
): Promise<Map<string, StreamEntry[]>> {
  const { count = 100, blockMs } = options;
  const args: (string | number)[] = ["COUNT", count];
  if (blockMs !== undefined) args.push("BLOCK", blockMs);
  args.push("STREAMS", ...streams.map(([key]) => key), ...streams.map(([, id]) => id));
  // deno-lint-ignore no-explicit-any
  const reply = await (redis as any).xread(...args) as [string, unknown][] | null;
  const out = new Map<string, StreamEntry[]>(streams.map(([key]) => [key, []]));
  for (const [key, entries] of reply ?? []) out.set(String(key), toEntries(entries));
  return out;
}

/**
 * Reads entries between two ids inclusive (XRANGE), or newest first with `reverse`.
 *
 * @example
 * ```ts
 * const latest = await rangeEntries(redis, "stock_alerts", { reverse: true, count: 20 });
 * ```
 */
export async function rangeEntries(
  redis: Redis,
  key: string,
  options: { start?: string; end?: string; count?: number; reverse?: boolean } = {},
): Promise<StreamEntry[]> {
  const { start = "-", end = "+", count = 100, reverse = false } = options;
  const reply = reverse
    ? await redis.xrevrange(key, end, start, "COUNT", count)
    : await redis.xrange(key, start, end, "COUNT", count);
  return toEntries(reply);
}

/** Result of {@linkcode autoClaim}. */
export interface AutoClaimResult {
  /** Cursor for the next call; "0-0" when the scan is complete. */
  next: string;
  /** Entries now owned by the claiming consumer. */
  entries: StreamEntry[];
  /** Ids that were pending but no longer exist in the stream (removed from the PEL by Redis). */
  deleted: string[];
}

/**
 * Takes over entries pending longer than `minIdleMs` (XAUTOCLAIM).
 *
 * @example
 * ```ts
 * const { entries, next } = await autoClaim(redis, "stock_quotes", "price-alerts", "worker-2", { minIdleMs: 60000 });
 * ```
 */
export async function autoClaim(
  redis: Redis,
  key: string,
  group: string,
  consumer: string,
  options: { minIdleMs: number; start?: string; count?: number },
): Promise<AutoClaimResult> {
  const { minIdleMs, start = "0-0", count = 100 } = options;
  const reply = await redis.xautoclaim(
    key,
    group,
    consumer,
    minIdleMs,
    start,
    "COUNT",
    count,
  ) as unknown[];
  return {
    next: String(reply[0]),
    entries: toEntries(reply[1]),
    deleted: Array.isArray(reply[2]) ? reply[2].map(String) : [],
  };
}

const FENCED_READ_SCRIPT = lua(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
if ARGV[5] ~= '' then
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], 'COUNT', ARGV[4])
  return {'ok', r[2]}
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
if not r then return {'ok', {}} end
return {'ok', r[1][2]}
`);

/** Options of {@linkcode readFenced}. */
export interface ReadFencedOptions {
  /** Consumer group. */
  group: string;
  /** Consumer that receives the entries. */
  consumer: string;
  /** Lease that must still hold `token`, else nothing is read. */
  fence: { key: string; token: string };
  /**
   * Most entries to read or claim.
   * @default {100}
   */
  count?: number;
  /**
   * Claim entries pending at least `minIdleMs` from `start` (XAUTOCLAIM)
   * instead of reading new ones (XREADGROUP ">").
   * @default {undefined}
   */
  claim?: { minIdleMs: number; start: string };
}

/**
 * Reads new entries, or claims pending ones, only while `fence` holds its
 * token, in one atomic step. A holder that lost its lease is handed nothing,
 * so it cannot take entries ahead of the new holder and break their order.
 *
 * @example
 * ```ts
 * const read = await readFenced(redis, "stock_quotes", {
 *   group: "price-alerts",
 *   consumer: "worker-1",
 *   fence: { key: lease.key, token: lease.token },
 * });
 * read.status; // "ok", or "fenced" when the lease was lost
 * ```
 */
export async function readFenced(
  redis: Redis,
  key: string,
  options: ReadFencedOptions,
): Promise<{ status: "ok" | "fenced"; entries: StreamEntry[] }> {
  const { group, consumer, fence, count = 100, claim } = options;
  const reply = await runScript(redis, FENCED_READ_SCRIPT, [key, fence.key], [
    fence.token,
    group,
    consumer,
    count,
    claim ? claim.minIdleMs : "",
    claim ? claim.start : "",
  ]) as unknown[];
  if (reply[0] !== "ok") return { status: "fenced", entries: [] };
  return { status: "ok", entries: toEntries(reply[1]) };
}

/**
 * Acknowledges a batch of ids in one call (XACK); returns how many were pending.
 *
 * @example
 * ```ts
 * await ackEntries(redis, "stock_quotes", "price-alerts", ["1700000000000-0"]); // 1
 * ```
 */
export async function ackEntries(
  redis: Redis,
  key: string,
  group: string,
  ids: string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  return await redis.xack(key, group, ...ids);
}

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

/**
 * Summarises a group's pending entries (XPENDING key group).
 *
 * @example
 * ```ts
 * const { count } = await pendingSummary(redis, "stock_quotes", "price-alerts");
 * ```
 */
export async function pendingSummary(
  redis: Redis,
  key: string,
  group: string,
): Promise<PendingSummary> {
  const reply = await redis.xpending(key, group) as unknown[];
  const consumers = Array.isArray(reply[3])
    ? (reply[3] as [string, string][]).map(([name, pending]) => ({
      name,
      pending: Number(pending),
    }))
    : [];
  return {
    count: Number(reply[0]),
    minId: reply[1] ? String(reply[1]) : null,
    maxId: reply[2] ? String(reply[2]) : null,
    consumers,
  };
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

/**
 * Lists pending entries in id order (XPENDING extended form).
 *
 * @example
 * ```ts
 * const [oldest] = await pendingEntries(redis, "stock_quotes", "price-alerts", { count: 1 });
 * ```
 */
export async function pendingEntries(
  redis: Redis,
  key: string,
  group: string,
  options: { start?: string; end?: string; count?: number; consumer?: string } = {},
): Promise<PendingEntry[]> {
  const { start = "-", end = "+", count = 100, consumer } = options;
  const args: (string | number)[] = [key, group, start, end, count];
  if (consumer !== undefined) args.push(consumer);
  // deno-lint-ignore no-explicit-any
  const reply = await (redis as any).xpending(...args) as [string, string, number, number][];
  return reply.map(([id, name, idle, deliveries]) => ({
    id,
    consumer: name,
    idleMs: Number(idle),
    deliveries: Number(deliveries),
  }));
}

/** XINFO STREAM, parsed. */
export interface StreamInfo {
  /** Entries in the stream. */
  length: number;
  /** Id of the first entry, or null. */
  firstId: string | null;
  /** Id of the last entry generated. */
  lastGeneratedId: string;
  /** Entries ever added (Redis 7). */
  entriesAdded: number | null;
  /** Consumer groups on the stream. */
  groups: number;
}

/**
 * Reads XINFO STREAM (not FULL, so its cost does not grow with the stream).
 * Returns null when the stream does not exist.
 *
 * @example
 * ```ts
 * const info = await streamInfo(redis, "stock_quotes");
 * info?.length;
 * ```
 */
export async function streamInfo(redis: Redis, key: string): Promise<StreamInfo | null> {
  let reply: unknown;
  try {
    reply = await redis.xinfo("STREAM", key);
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return null;
    throw error;
  }
  const r = flatToRecord(reply);
  const first = r["first-entry"];
  return {
    length: Number(r.length),
    firstId: Array.isArray(first) ? String(first[0]) : null,
    lastGeneratedId: String(r["last-generated-id"]),
    entriesAdded: toNumberOrNull(r["entries-added"]),
    groups: Number(r.groups),
  };
}

/** One consumer group as XINFO GROUPS reports it. */
export interface GroupInfo {
  /** Group name. */
  name: string;
  /** Consumers in the group. */
  consumers: number;
  /** Entries delivered and not acknowledged. */
  pending: number;
  /** Last id delivered to the group. */
  lastDeliveredId: string;
  /** Entries the group has read (Redis 7), or null. */
  entriesRead: number | null;
  /** Entries not yet delivered to the group (Redis 7), or null when Redis cannot tell. */
  lag: number | null;
}

/**
 * Lists the consumer groups of a stream (XINFO GROUPS); empty when the stream does not exist.
 *
 * @example
 * ```ts
 * const groups = await groupsInfo(redis, "stock_quotes");
 * groups.map((g) => [g.name, g.lag]);
 * ```
 */
export async function groupsInfo(redis: Redis, key: string): Promise<GroupInfo[]> {
  let reply: unknown;
  try {
    reply = await redis.xinfo("GROUPS", key);
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return [];
    throw error;
  }
  return (reply as unknown[]).map((flat) => {
    const r = flatToRecord(flat);
    return {
      name: String(r.name),
      consumers: Number(r.consumers),
      pending: Number(r.pending),
      lastDeliveredId: String(r["last-delivered-id"]),
      entriesRead: toNumberOrNull(r["entries-read"]),
      lag: toNumberOrNull(r.lag),
    };
  });
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

/**
 * Lists the consumers of a group (XINFO CONSUMERS).
 *
 * @example
 * ```ts
 * const consumers = await consumersInfo(redis, "stock_quotes", "price-alerts");
 * ```
 */
export async function consumersInfo(
  redis: Redis,
  key: string,
  group: string,
): Promise<ConsumerInfo[]> {
  const reply = await redis.xinfo("CONSUMERS", key, group) as unknown[];
  return reply.map((flat) => {
    const r = flatToRecord(flat);
    return { name: String(r.name), pending: Number(r.pending), idleMs: Number(r.idle) };
  });
}

const DELETE_IDLE_CONSUMERS_SCRIPT = lua(`
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
`);

/**
 * Removes consumers idle longer than `idleMs` that hold no pending entry,
 * checked and deleted atomically: DELCONSUMER would drop a consumer's pending
 * entries from the group, so one that holds any is never removed.
 *
 * @example
 * ```ts
 * const removed = await deleteIdleConsumers(redis, "stock_quotes", "price-alerts", { idleMs: 3600000 });
 * ```
 */
export async function deleteIdleConsumers(
  redis: Redis,
  key: string,
  group: string,
  options: { idleMs: number; keep?: string },
): Promise<string[]> {
  const reply = await runScript(redis, DELETE_IDLE_CONSUMERS_SCRIPT, [key], [
    group,
    options.idleMs,
    options.keep ?? "",
  ]);
  return (reply as string[]).map(String);
}

const TRIM_SCRIPT = lua(`${LUA_ID_HELPERS}
return safe_trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
`);

/**
 * Trims the oldest entries beyond `maxLen`, but never one that some group has
 * not yet read and acknowledged (XTRIM MINID below the oldest needed entry).
 * At most `limit` entries go per call so the cost stays bounded.
 *
 * @example
 * ```ts
 * const trimmed = await trimStream(redis, "stock_quotes", { maxLen: 100000 });
 * ```
 */
export async function trimStream(
  redis: Redis,
  key: string,
  options: { maxLen: number; limit?: number },
): Promise<number> {
  const { maxLen, limit = 10000 } = options;
  return Number(await runScript(redis, TRIM_SCRIPT, [key], [maxLen, limit]));
}

const OLDEST_NEEDED_SCRIPT = lua(`${LUA_ID_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return oldest_needed(KEYS[1])`);

/**
 * Returns the smallest id that some group still needs (its oldest pending
 * entry or the one after its last delivered), or null without groups.
 *
 * @example
 * ```ts
 * const needed = await oldestNeededId(redis, "stock_quotes");
 * ```
 */
export async function oldestNeededId(redis: Redis, key: string): Promise<string | null> {
  const reply = await runScript(redis, OLDEST_NEEDED_SCRIPT, [key], []);
  return reply ? String(reply) : null;
}

const COMMIT_SCRIPT = lua(`
local stream, alerts_key = KEYS[1], KEYS[2]
local p = cjson.decode(ARGV[1])
if p.fence then
  if redis.call('GET', p.fence.key) ~= p.fence.token then
    return cjson.encode({status = 'fenced'})
  end
end
local stale = {}
if p.dead_source then
  for _, id in ipairs(p.ids) do
    if #redis.call('XRANGE', p.dead_source, id, id) == 0 then stale[#stale + 1] = id end
  end
else
  for _, id in ipairs(p.ids) do
    if #redis.call('XPENDING', stream, p.group, id, id, 1) == 0 then stale[#stale + 1] = id end
  end
end
if #stale > 0 then return cjson.encode({status = 'stale', stale = stale}) end
local done = 0
if #p.ids > 0 then
  if p.dead_source then
    done = redis.call('XDEL', p.dead_source, unpack(p.ids))
  else
    done = redis.call('XACK', stream, p.group, unpack(p.ids))
  end
end
for _, fields in ipairs(p.alerts) do
  redis.call('XADD', alerts_key, 'MAXLEN', '~', p.alerts_maxlen, '*', unpack(fields))
end
for _, w in ipairs(p.hset) do redis.call('HSET', w[1], w[2], w[3]) end
for _, d in ipairs(p.dead) do redis.call('XADD', p.dead_key, '*', unpack(d)) end
for _, c in ipairs(p.incr) do redis.call('HINCRBY', c[1], c[2], c[3]) end
-- Entries held back behind a failed entry of their symbol were delivered but
-- not attempted: give that delivery back (same owner and idle time), so the
-- delivery count that MAX_DELIVERIES checks counts handler attempts.
for _, id in ipairs(p.uncount) do
  local e = redis.call('XPENDING', stream, p.group, id, id, 1)[1]
  if e and e[4] > 0 then
    redis.call('XCLAIM', stream, p.group, e[2], 0, id, 'IDLE', e[3], 'RETRYCOUNT', e[4] - 1,
      'JUSTID')
  end
end
return cjson.encode({status = 'ok', done = done})
`);

/** What {@linkcode commitEntries} writes in one atomic step. */
export interface CommitOptions {
  /** Consumer group whose entries are acknowledged. */
  group: string;
  /** Ids to acknowledge (or, with `deadSource`, to delete from that dead-letter stream). */
  ids: string[];
  /** Alerts stream key. */
  alertsKey: string;
  /**
   * Approximate MAXLEN of the alerts stream.
   * @default {10000}
   */
  alertsMaxLen?: number;
  /**
   * Alerts to append, as flat field/value lists.
   * @default {[]}
   */
  alerts?: string[][];
  /**
   * Hash fields to set: [key, field, value].
   * @default {[]}
   */
  hashWrites?: [string, string, string][];
  /**
   * Dead-letter entries to append to `deadKey`, as flat field/value lists.
   * @default {[]}
   */
  deadLetters?: string[][];
  /**
   * Dead-letter stream key, required with `deadLetters`.
   * @default {undefined}
   */
  deadKey?: string;
  /**
   * Hash counters to change: [key, field, delta].
   * @default {[]}
   */
  counters?: [string, string, number][];
  /**
   * Pending ids that were delivered but not attempted (held back behind a
   * failed entry of their symbol): their delivery count goes back down by one.
   * @default {[]}
   */
  uncount?: string[];
  /**
   * Lease that must still hold `token`, else nothing is written (fencing).
   * @default {undefined}
   */
  fence?: { key: string; token: string };
  /**
   * Commit a replay: `ids` are entries of this dead-letter stream, deleted instead of acked.
   * @default {undefined}
   */
  deadSource?: string;
}

/** Result of {@linkcode commitEntries}. */
export interface CommitResult {
  /** "ok"; "fenced" when the lease was lost; "stale" when some ids were committed already. */
  status: "ok" | "fenced" | "stale";
  /** Entries acked (or deleted from the dead-letter stream). */
  done?: number;
  /** Ids no longer pending (or no longer dead-lettered); nothing was written. */
  stale?: string[];
}

/**
 * Commits a processed chunk atomically (one Lua script): checks the fence
 * and that every id is still pending, then acks the ids and writes the
 * alerts, state, dead letters and counters. All or nothing, so an invocation
 * killed at any line leaves either no effect or the whole effect and the ack.
 *
 * @example
 * ```ts
 * const result = await commitEntries(redis, "stock_quotes", {
 *   group: "price-alerts",
 *   ids: ["1700000000000-0"],
 *   alertsKey: "stock_alerts",
 *   alerts: [["type", "price_move", "symbol", "AAPL"]],
 * });
 * result.status; // "ok"
 * ```
 */
export async function commitEntries(
  redis: Redis,
  key: string,
  options: CommitOptions,
): Promise<CommitResult> {
  if ((options.deadLetters?.length ?? 0) > 0 && !options.deadKey) {
    throw new RangeError("Cannot commit dead letters as 'deadKey' is not set");
  }
  const payload = {
    group: options.group,
    ids: options.ids,
    alerts_maxlen: options.alertsMaxLen ?? 10000,
    alerts: options.alerts ?? [],
    hset: options.hashWrites ?? [],
    dead: options.deadLetters ?? [],
    dead_key: options.deadKey ?? "",
    incr: options.counters ?? [],
    uncount: options.uncount ?? [],
    fence: options.fence,
    dead_source: options.deadSource,
  };
  // cjson turns an empty JSON array into an empty table either way.
  const reply = await runScript(redis, COMMIT_SCRIPT, [key, options.alertsKey], [
    JSON.stringify(payload),
  ]);
  return JSON.parse(String(reply)) as CommitResult;
}
