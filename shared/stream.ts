/**
 * The stream module: the one place that speaks Redis Streams commands.
 * {@linkcode openStream} wraps a key on an ioredis client in a {@linkcode Stream}
 * handle (no I/O, no connection of its own); {@linkcode Stream.group} gives a
 * {@linkcode StreamGroup} handle for one consumer group. Replies that ioredis
 * returns as flat arrays are parsed into typed objects here.
 *
 * @example
 * ```ts
 * const stream = openStream(redis, "stock_quotes");
 * await stream.append([encodeQuote(quote)]);
 * const group = stream.group("price-alerts");
 * await group.ensure();
 * const entries = await group.read("worker-1", { count: 100 });
 * await group.ack(entries.map((e) => e.id));
 * ```
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

/** Most entries one read, range, claim or pending listing may ask for. */
export const MAX_COUNT = 10000;

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

function checkInteger(value: number, rule: IntegerRule): void {
  const { action, name, min, max } = rule;
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new RangeError(
      `Cannot ${action} as '${name}' must be ${range}: current value is ${value}`,
    );
  }
}

function checkCount(action: string, count: number): void {
  checkInteger(count, { action, name: "count", min: 1, max: MAX_COUNT });
}

function checkBlock(action: string, blockMs: number | undefined): void {
  if (blockMs !== undefined) checkInteger(blockMs, { action, name: "blockMs", min: 0 });
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

/**
 * Compares two stream ids numerically: negative when a < b.
 *
 * @example
 * ```ts
 * compareIds("1700000000000-2", "1700000000000-10"); // -1
 * ```
 */
export function compareIds(a: string, b: string): number {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

const MAX_ID_PART = 2n ** 64n - 1n;

/**
 * True when `text` is a complete stream entry id `<ms>-<seq>`, each part an
 * unsigned 64-bit integer, as Redis accepts it.
 *
 * @example
 * ```ts
 * isStreamId("1700000000000-0"); // true
 * isStreamId("18446744073709551616-0"); // false: beyond 64 bits
 * ```
 */
export function isStreamId(text: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(text);
  return match !== null && BigInt(match[1]) <= MAX_ID_PART && BigInt(match[2]) <= MAX_ID_PART;
}

/** Options of {@linkcode Stream.readAfter} and {@linkcode readStreams}. */
export interface ReadOptions {
  /**
   * Most entries to read (per stream), 1 to {@linkcode MAX_COUNT}.
   * @default {100}
   */
  count?: number;
  /**
   * Wait up to this many ms for new entries (0 waits for ever); undefined does not block.
   * @default {undefined}
   */
  blockMs?: number;
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
  options: ReadOptions = {},
): Promise<Map<string, StreamEntry[]>> {
  const { count = 100, blockMs } = options;
  checkCount("read entries", count);
  checkBlock("read entries", blockMs);
  const args: (string | number)[] = ["COUNT", count];
  if (blockMs !== undefined) args.push("BLOCK", blockMs);
  args.push("STREAMS", ...streams.map(([key]) => key), ...streams.map(([, id]) => id));
  // deno-lint-ignore no-explicit-any
  const reply = await (redis as any).xread(...args) as [string, unknown][] | null;
  const out = new Map<string, StreamEntry[]>(streams.map(([key]) => [key, []]));
  for (const [key, entries] of reply ?? []) out.set(String(key), toEntries(entries));
  return out;
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

// allow-oom: the quote-store group runs this before its ack; a full Redis
// must not stall the group that frees memory by draining.
const UPDATE_LATEST_SCRIPT = lua(`#!lua flags=allow-oom
${LUA_ID_HELPERS}
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

const TRIM_SCRIPT = lua(`${LUA_ID_HELPERS}
return safe_trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
`);

const OLDEST_NEEDED_SCRIPT = lua(`${LUA_ID_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return oldest_needed(KEYS[1])`);

/** Options of {@linkcode Stream.append}. */
export interface AppendOptions {
  /**
   * Entries every consumer group is done with that the stream keeps; older
   * ones are trimmed, never one a group still needs. Undefined keeps all.
   * @default {undefined}
   */
  maxLen?: number;
  /**
   * Most entries one append may trim, so its cost stays bounded.
   * @default {min(TRIM_STEP, max(1000, 2 x batch size))}
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

/** Result of {@linkcode Stream.append}. */
export interface AppendResult {
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

/** One field of the latest-entry index, for {@linkcode Stream.updateLatest}. */
export interface LatestItem {
  /** Hash field, e.g. the symbol. */
  field: string;
  /** Stream entry id the value belongs to. */
  id: string;
  /** The JSON object's members after "id", without the leading brace. */
  rest: string;
}

/** Options of {@linkcode Stream.range}. */
export interface RangeOptions {
  /**
   * First id to include ("-" for the oldest; "(id" excludes id).
   * @default {"-"}
   */
  start?: string;
  /**
   * Last id to include ("+" for the newest; "(id" excludes id).
   * @default {"+"}
   */
  end?: string;
  /**
   * Most entries to return, 1 to {@linkcode MAX_COUNT}.
   * @default {100}
   */
  count?: number;
  /**
   * Newest first (XREVRANGE) instead of oldest first.
   * @default {false}
   */
  reverse?: boolean;
}

/** Options of {@linkcode Stream.trim}. */
export interface TrimOptions {
  /**
   * Most entries one call removes. It trims in steps of at most TRIM_STEP
   * entries, one script each, so Redis is never blocked for long.
   * @default {10000}
   */
  limit?: number;
}

/** Most entries one trim script removes: it reads them, so this bounds its run time. */
export const TRIM_STEP = 10000;

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
 * Wraps the stream `key` on `redis` in a handle; sends no command.
 *
 * @example
 * ```ts
 * const stream = openStream(redis, "stock_quotes");
 * const info = await stream.info();
 * ```
 */
export function openStream(redis: Redis, key: string): Stream {
  return new Stream(redis, key);
}

/** A stream on one client: every command this module speaks about that key. */
export class Stream {
  /** Client the commands go to. */
  readonly redis: Redis;
  /** Stream key. */
  readonly key: string;

  /**
   * Creates the handle; {@linkcode openStream} is the usual way.
   *
   * @example
   * ```ts
   * const stream = new Stream(redis, "stock_quotes");
   * ```
   */
  constructor(redis: Redis, key: string) {
    this.redis = redis;
    this.key = key;
  }

  /**
   * The consumer group `name` of this stream, as a handle; sends no command.
   *
   * @example
   * ```ts
   * const group = openStream(redis, "stock_quotes").group("price-alerts");
   * ```
   */
  group(name: string): StreamGroup {
    return new StreamGroup(this, name);
  }

  /**
   * Appends a batch of entries in one round trip and one atomic step (a Lua
   * script), optionally guarded, recorded for idempotency and trimmed safely.
   *
   * @example
   * ```ts
   * const result = await stream.append([encodeQuote(quote)], { maxLen: 100000 });
   * result.firstId; // "1700000000000-0"
   * ```
   */
  async append(entries: string[][], options: AppendOptions = {}): Promise<AppendResult> {
    if (entries.length === 0) throw new RangeError("Cannot append an empty batch");
    const { maxLen, trimLimit = Math.min(TRIM_STEP, Math.max(1000, 2 * entries.length)) } = options;
    const action = "append entries";
    if (maxLen !== undefined) checkInteger(maxLen, { action, name: "maxLen", min: 0 });
    checkInteger(trimLimit, { action, name: "trimLimit", min: 1 });
    if (options.idempotency) {
      checkInteger(options.idempotency.ttlMs, { action, name: "idempotency.ttlMs", min: 1 });
    }
    for (const item of options.latest?.items ?? []) {
      checkInteger(item.index, {
        action,
        name: "latest.items.index",
        min: 0,
        max: entries.length - 1,
      });
    }
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
    const reply = await runScript(this.redis, APPEND_SCRIPT, {
      keys: [this.key],
      args: [JSON.stringify(payload)],
    });
    return JSON.parse(String(reply)) as AppendResult;
  }

  /**
   * Updates the latest-entry index hash `key` that {@linkcode Stream.append}
   * maintains (its `latest` option), in one round trip: for each item, sets
   * `field` to the JSON object `{"id": id, ...}` only when `id` is newer than
   * the id stored there, so entries that reach it late or twice never replace
   * a newer one. Returns how many fields changed.
   *
   * @example
   * ```ts
   * await stream.updateLatest("stock_quotes:latest", [
   *   { field: "AAPL", id: "1700000000000-0", rest: '"symbol":"AAPL","price":190}' },
   * ]); // 1, or 0 when AAPL already holds a newer id
   * ```
   */
  async updateLatest(key: string, items: LatestItem[]): Promise<number> {
    if (items.length === 0) return 0;
    const payload = JSON.stringify(items.map((item) => [item.field, item.id, item.rest]));
    return Number(
      await runScript(this.redis, UPDATE_LATEST_SCRIPT, { keys: [key], args: [payload] }),
    );
  }

  /**
   * Counts the entries (XLEN); 0 when the stream does not exist.
   *
   * @example
   * ```ts
   * const length = await openStream(redis, "stock_alerts").length();
   * ```
   */
  async length(): Promise<number> {
    return await this.redis.xlen(this.key);
  }

  /**
   * Reads XINFO STREAM (not FULL, so its cost does not grow with the stream).
   * Returns null when the stream does not exist.
   *
   * @example
   * ```ts
   * const info = await stream.info();
   * info?.length;
   * ```
   */
  async info(): Promise<StreamInfo | null> {
    let reply: unknown;
    try {
      reply = await this.redis.xinfo("STREAM", this.key);
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

  /**
   * Lists the consumer groups of the stream (XINFO GROUPS); empty when the stream does not exist.
   *
   * @example
   * ```ts
   * const groups = await stream.groups();
   * groups.map((g) => [g.name, g.lag]);
   * ```
   */
  async groups(): Promise<GroupInfo[]> {
    let reply: unknown;
    try {
      reply = await this.redis.xinfo("GROUPS", this.key);
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

  /**
   * Reads entries between two ids inclusive (XRANGE), or newest first with `reverse`.
   *
   * @example
   * ```ts
   * const latest = await openStream(redis, "stock_alerts").range({ reverse: true, count: 20 });
   * ```
   */
  async range(options: RangeOptions = {}): Promise<StreamEntry[]> {
    const { start = "-", end = "+", count = 100, reverse = false } = options;
    checkCount("read entries", count);
    const reply = reverse
      ? await this.redis.xrevrange(this.key, end, start, "COUNT", count)
      : await this.redis.xrange(this.key, start, end, "COUNT", count);
    return toEntries(reply);
  }

  /**
   * Reads entries after `afterId` without a group (XREAD), optionally blocking.
   *
   * @example
   * ```ts
   * const entries = await stream.readAfter("0", { count: 10 });
   * ```
   */
  async readAfter(afterId: string, options: ReadOptions = {}): Promise<StreamEntry[]> {
    const { count = 100, blockMs } = options;
    checkCount("read entries", count);
    checkBlock("read entries", blockMs);
    const args: (string | number)[] = ["COUNT", count];
    if (blockMs !== undefined) args.push("BLOCK", blockMs);
    args.push("STREAMS", this.key, afterId);
    // deno-lint-ignore no-explicit-any
    const reply = await (this.redis as any).xread(...args) as [string, unknown][] | null;
    if (!reply || reply.length === 0) return [];
    return toEntries(reply[0][1]);
  }

  /**
   * Trims the oldest entries beyond `maxLen`, but never one that some group has
   * not yet read and acknowledged (XTRIM MINID below the oldest needed entry).
   * At most `limit` entries go per call so the cost stays bounded.
   *
   * @example
   * ```ts
   * const trimmed = await stream.trim(100000);
   * ```
   */
  async trim(maxLen: number, options: TrimOptions = {}): Promise<number> {
    const { limit = 10000 } = options;
    checkInteger(maxLen, { action: "trim the stream", name: "maxLen", min: 0 });
    checkInteger(limit, { action: "trim the stream", name: "limit", min: 1 });
    let trimmed = 0;
    while (trimmed < limit) {
      const step = Math.min(TRIM_STEP, limit - trimmed);
      const removed = Number(
        await runScript(this.redis, TRIM_SCRIPT, { keys: [this.key], args: [maxLen, step] }),
      );
      trimmed += removed;
      if (removed < step) break;
    }
    return trimmed;
  }

  /**
   * Returns the smallest id that some group still needs (its oldest pending
   * entry or the one after its last delivered), or null without groups.
   *
   * @example
   * ```ts
   * const needed = await stream.oldestNeededId();
   * ```
   */
  async oldestNeededId(): Promise<string | null> {
    const reply = await runScript(this.redis, OLDEST_NEEDED_SCRIPT, { keys: [this.key] });
    return reply ? String(reply) : null;
  }
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

// allow-oom: a full Redis must still take acks, state and the trim that
// frees memory; without the flag a script whose first write is refused would
// stop the queue, and one refused halfway would ack without its effects.
const COMMIT_SCRIPT = lua(`#!lua flags=allow-oom
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
for _, w in ipairs(p.hdel) do redis.call('HDEL', w[1], w[2]) end
for _, d in ipairs(p.dead) do redis.call('XADD', p.dead_key, '*', unpack(d)) end
for _, c in ipairs(p.incr) do redis.call('HINCRBY', c[1], c[2], c[3]) end
-- Entries left pending for a retry get the idle time that makes them
-- claimable when their retry is due (same owner). One held back behind a
-- failed entry of its symbol was delivered but not attempted: that delivery
-- is given back, so the count MAX_DELIVERIES checks counts handler attempts.
for _, r in ipairs(p.retry) do
  local e = redis.call('XPENDING', stream, p.group, r[1], r[1], 1)[1]
  if e then
    local count = e[4]
    if r[3] == 0 and count > 0 then count = count - 1 end
    redis.call('XCLAIM', stream, p.group, e[2], 0, r[1], 'IDLE', r[2], 'RETRYCOUNT', count,
      'JUSTID')
  end
end
return cjson.encode({status = 'ok', done = done})
`);

/** Options of {@linkcode StreamGroup.ensure}. */
export interface EnsureGroupOptions {
  /**
   * Id the group starts after; "0" so entries added before the first read are not missed.
   * @default {"0"}
   */
  startId?: string;
}

/** Options of {@linkcode StreamGroup.read}. */
export interface ReadGroupOptions {
  /**
   * Most entries to read, 1 to {@linkcode MAX_COUNT}.
   * @default {100}
   */
  count?: number;
  /**
   * Wait up to this many ms for new entries (0 waits for ever); undefined does not block.
   * @default {undefined}
   */
  blockMs?: number;
  /**
   * Id to read from: ">" for new entries, "0" for this consumer's own pending ones.
   * @default {">"}
   */
  from?: string;
}

/** A lease that a fenced call checks: nothing happens unless `key` still holds `token`. */
export interface Fence {
  /** Redis key of the lease. */
  key: string;
  /** Token the lease must still hold. */
  token: string;
}

/** Options of {@linkcode StreamGroup.readFenced}. */
export interface ReadFencedOptions {
  /**
   * Most entries to read or claim, 1 to {@linkcode MAX_COUNT}.
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

/** Result of {@linkcode StreamGroup.readFenced}. */
export interface FencedRead {
  /** "ok", or "fenced" when the lease no longer held its token and nothing was read. */
  status: "ok" | "fenced";
  /** Entries now delivered to the consumer. */
  entries: StreamEntry[];
}

/** Options of {@linkcode StreamGroup.claim}. */
export interface ClaimOptions {
  /**
   * Id to scan pending entries from; pass the previous call's `next` to go on.
   * @default {"0-0"}
   */
  start?: string;
  /**
   * Most entries to claim, 1 to {@linkcode MAX_COUNT}.
   * @default {100}
   */
  count?: number;
}

/** Result of {@linkcode StreamGroup.claim}. */
export interface ClaimResult {
  /** Cursor for the next call; "0-0" when the scan is complete. */
  next: string;
  /** Entries now owned by the claiming consumer. */
  entries: StreamEntry[];
  /** Ids that were pending but no longer exist in the stream (removed from the PEL by Redis). */
  deleted: string[];
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
   * Most entries to list, 1 to {@linkcode MAX_COUNT}.
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

/** A pending entry left for a retry, as {@linkcode StreamGroup.commit} marks it. */
export interface RetryMark {
  /** Entry id. */
  id: string;
  /** Idle time to give it: CLAIM_IDLE_MS minus the delay until its retry. */
  idleMs: number;
  /** False for an entry delivered but not run, whose delivery is given back. */
  attempted: boolean;
}

/** What {@linkcode StreamGroup.commit} writes besides the acks, in the same atomic step. */
export interface CommitOptions {
  /**
   * Alerts stream key, required with `alerts`.
   * @default {undefined}
   */
  alertsKey?: string;
  /**
   * Approximate MAXLEN of the alerts stream.
   * @default {10000}
   */
  alertsMaxLen?: number;
  /**
   * Alerts to append to `alertsKey`, as flat field/value lists.
   * @default {[]}
   */
  alerts?: string[][];
  /**
   * Hash fields to set: [key, field, value].
   * @default {[]}
   */
  hashWrites?: [string, string, string][];
  /**
   * Hash fields to delete: [key, field].
   * @default {[]}
   */
  hashDeletes?: [string, string][];
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
   * Pending entries left for a retry: each gets idle time `idleMs`, so it is
   * claimable when its retry is due; one that was not `attempted` (held back
   * behind a failed entry of its symbol) also gets its delivery given back.
   * @default {[]}
   */
  retry?: RetryMark[];
  /**
   * Lease that must still hold its token, else nothing is written (fencing).
   * @default {undefined}
   */
  fence?: Fence;
  /**
   * Commit a replay: the ids are entries of this dead-letter stream, deleted instead of acked.
   * @default {undefined}
   */
  deadSource?: string;
}

/** Result of {@linkcode StreamGroup.commit}. */
export interface CommitResult {
  /** "ok"; "fenced" when the lease was lost; "stale" when some ids were committed already. */
  status: "ok" | "fenced" | "stale";
  /** Entries acked (or deleted from the dead-letter stream). */
  done?: number;
  /** Ids no longer pending (or no longer dead-lettered); nothing was written. */
  stale?: string[];
}

/** A consumer group of a {@linkcode Stream}: reads, claims, acks and commits for its consumers. */
export class StreamGroup {
  /** Stream the group belongs to. */
  readonly stream: Stream;
  /** Group name. */
  readonly name: string;

  /**
   * Creates the handle; {@linkcode Stream.group} is the usual way.
   *
   * @example
   * ```ts
   * const group = new StreamGroup(openStream(redis, "stock_quotes"), "price-alerts");
   * ```
   */
  constructor(stream: Stream, name: string) {
    this.stream = stream;
    this.name = name;
  }

  /**
   * Creates the group if it does not exist (MKSTREAM; BUSYGROUP ignored); true when created.
   *
   * @example
   * ```ts
   * await openStream(redis, "stock_quotes").group("price-alerts").ensure(); // true when created
   * ```
   */
  async ensure(options: EnsureGroupOptions = {}): Promise<boolean> {
    const { startId = "0" } = options;
    try {
      await this.stream.redis.xgroup("CREATE", this.stream.key, this.name, startId, "MKSTREAM");
      return true;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("BUSYGROUP")) return false;
      // A full Redis refuses XGROUP CREATE before it looks for the group, and
      // a drain of an existing group must still run so it can free memory.
      if (error instanceof Error && error.message.startsWith("OOM")) {
        const groups = await this.stream.groups();
        if (groups.some((g) => g.name === this.name)) return false;
      }
      throw error;
    }
  }

  /**
   * Reads one chunk for `consumer` (XREADGROUP).
   *
   * @example
   * ```ts
   * const entries = await group.read("worker-1", { count: 100 });
   * ```
   */
  async read(consumer: string, options: ReadGroupOptions = {}): Promise<StreamEntry[]> {
    const { count = 100, blockMs, from = ">" } = options;
    checkCount("read entries", count);
    checkBlock("read entries", blockMs);
    const args: (string | number)[] = ["GROUP", this.name, consumer, "COUNT", count];
    if (blockMs !== undefined) args.push("BLOCK", blockMs);
    args.push("STREAMS", this.stream.key, from);
    // deno-lint-ignore no-explicit-any
    const reply = await (this.stream.redis as any).xreadgroup(...args) as
      | [string, unknown][]
      | null;
    if (!reply || reply.length === 0) return [];
    return toEntries(reply[0][1]);
  }

  /**
   * Reads new entries, or claims pending ones, for `consumer` only while
   * `fence` holds its token, in one atomic step. A holder that lost its lease
   * is handed nothing, so it cannot take entries ahead of the new holder and
   * break their order.
   *
   * @example
   * ```ts
   * const read = await group.readFenced("worker-1", lease, { count: 100 });
   * read.status; // "ok", or "fenced" when the lease was lost
   * ```
   */
  async readFenced(
    consumer: string,
    fence: Fence,
    options: ReadFencedOptions = {},
  ): Promise<FencedRead> {
    const { count = 100, claim } = options;
    checkCount("read entries", count);
    if (claim) {
      checkInteger(claim.minIdleMs, { action: "read entries", name: "claim.minIdleMs", min: 0 });
    }
    const reply = await runScript(this.stream.redis, FENCED_READ_SCRIPT, {
      keys: [this.stream.key, fence.key],
      args: [
        fence.token,
        this.name,
        consumer,
        count,
        claim ? claim.minIdleMs : "",
        claim ? claim.start : "",
      ],
    }) as unknown[];
    if (reply[0] !== "ok") return { status: "fenced", entries: [] };
    return { status: "ok", entries: toEntries(reply[1]) };
  }

  /**
   * Takes over, for `consumer`, entries pending longer than `minIdleMs` (XAUTOCLAIM).
   *
   * @example
   * ```ts
   * const { entries, next } = await group.claim("worker-2", 60000);
   * ```
   */
  async claim(
    consumer: string,
    minIdleMs: number,
    options: ClaimOptions = {},
  ): Promise<ClaimResult> {
    const { start = "0-0", count = 100 } = options;
    checkInteger(minIdleMs, { action: "claim entries", name: "minIdleMs", min: 0 });
    checkCount("claim entries", count);
    const reply = await this.stream.redis.xautoclaim(
      this.stream.key,
      this.name,
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

  /**
   * Acknowledges a batch of ids in one call (XACK); returns how many were pending.
   *
   * @example
   * ```ts
   * await group.ack(["1700000000000-0"]); // 1
   * ```
   */
  async ack(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return await this.stream.redis.xack(this.stream.key, this.name, ...ids);
  }

  /**
   * Summarises the group's pending entries (XPENDING key group).
   *
   * @example
   * ```ts
   * const { count } = await group.pending();
   * ```
   */
  async pending(): Promise<PendingSummary> {
    const reply = await this.stream.redis.xpending(this.stream.key, this.name) as unknown[];
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

  /**
   * Lists pending entries in id order (XPENDING extended form).
   *
   * @example
   * ```ts
   * const [oldest] = await group.pendingEntries({ count: 1 });
   * ```
   */
  async pendingEntries(options: PendingEntriesOptions = {}): Promise<PendingEntry[]> {
    const { start = "-", end = "+", count = 100, consumer } = options;
    checkCount("list pending entries", count);
    const args: (string | number)[] = [this.stream.key, this.name, start, end, count];
    if (consumer !== undefined) args.push(consumer);
    // deno-lint-ignore no-explicit-any
    const reply = await (this.stream.redis as any).xpending(...args) as [
      string,
      string,
      number,
      number,
    ][];
    return reply.map(([id, name, idle, deliveries]) => ({
      id,
      consumer: name,
      idleMs: Number(idle),
      deliveries: Number(deliveries),
    }));
  }

  /**
   * Lists the consumers of the group (XINFO CONSUMERS).
   *
   * @example
   * ```ts
   * const consumers = await group.consumers();
   * ```
   */
  async consumers(): Promise<ConsumerInfo[]> {
    const reply = await this.stream.redis.xinfo(
      "CONSUMERS",
      this.stream.key,
      this.name,
    ) as unknown[];
    return reply.map((flat) => {
      const r = flatToRecord(flat);
      return { name: String(r.name), pending: Number(r.pending), idleMs: Number(r.idle) };
    });
  }

  /**
   * Removes consumers idle longer than `idleMs` that hold no pending entry,
   * checked and deleted atomically: DELCONSUMER would drop a consumer's pending
   * entries from the group, so one that holds any is never removed.
   *
   * @example
   * ```ts
   * const removed = await group.deleteIdleConsumers(3600000, { keep: "worker-1" });
   * ```
   */
  async deleteIdleConsumers(
    idleMs: number,
    options: DeleteIdleConsumersOptions = {},
  ): Promise<string[]> {
    checkInteger(idleMs, { action: "delete idle consumers", name: "idleMs", min: 0 });
    const reply = await runScript(this.stream.redis, DELETE_IDLE_CONSUMERS_SCRIPT, {
      keys: [this.stream.key],
      args: [this.name, idleMs, options.keep ?? ""],
    });
    return (reply as string[]).map(String);
  }

  /**
   * Commits a processed chunk atomically (one Lua script): checks the fence
   * and that every id is still pending, then acks the ids and writes the
   * alerts, state, dead letters and counters. All or nothing, so an invocation
   * killed at any line leaves either no effect or the whole effect and the ack.
   *
   * @example
   * ```ts
   * const result = await group.commit(["1700000000000-0"], {
   *   alertsKey: "stock_alerts",
   *   alerts: [["type", "price_move", "symbol", "AAPL"]],
   * });
   * result.status; // "ok"
   * ```
   */
  async commit(ids: string[], options: CommitOptions = {}): Promise<CommitResult> {
    const { alertsKey, alertsMaxLen = 10000 } = options;
    if ((options.alerts?.length ?? 0) > 0 && !alertsKey) {
      throw new RangeError("Cannot commit alerts as 'alertsKey' is not set");
    }
    if ((options.deadLetters?.length ?? 0) > 0 && !options.deadKey) {
      throw new RangeError("Cannot commit dead letters as 'deadKey' is not set");
    }
    checkInteger(alertsMaxLen, { action: "commit entries", name: "alertsMaxLen", min: 1 });
    const payload = {
      group: this.name,
      ids,
      alerts_maxlen: alertsMaxLen,
      alerts: options.alerts ?? [],
      hset: options.hashWrites ?? [],
      hdel: options.hashDeletes ?? [],
      dead: options.deadLetters ?? [],
      dead_key: options.deadKey ?? "",
      incr: options.counters ?? [],
      retry: (options.retry ?? []).map((
        r,
      ) => [r.id, Math.max(0, Math.round(r.idleMs)), r.attempted ? 1 : 0]),
      fence: options.fence ? { key: options.fence.key, token: options.fence.token } : undefined,
      dead_source: options.deadSource,
    };
    // cjson turns an empty JSON array into an empty table either way.
    const reply = await runScript(this.stream.redis, COMMIT_SCRIPT, {
      keys: alertsKey ? [this.stream.key, alertsKey] : [this.stream.key],
      args: [JSON.stringify(payload)],
    });
    return JSON.parse(String(reply)) as CommitResult;
  }
}
