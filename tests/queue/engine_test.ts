import assert from "node:assert/strict";
import { isRedisUnavailable } from "../../shared/redis.ts";
import {
  asDependencyError,
  DependencyError,
  drainGroup,
  openQueue,
  queueKeys,
  readStalls,
  replayDeadLetters,
  resetGroupCache,
  type SinkHandler,
} from "../../shared/queue/mod.ts";
import { readNew } from "../../shared/queue/_read.ts";
import { acquireLease } from "../../shared/queue/mod.ts";
import { startRedis, type TestRedis } from "../_redis_server.ts";
import { type Word, wordCounter } from "./_words.ts";

let server: TestRedis;

async function fresh(namespace = "words") {
  server ??= await startRedis();
  await server.flush();
  resetGroupCache();
  const redis = server.client();
  const queue = openQueue(redis, queueKeys(namespace), {
    claimIdleMs: 200,
    retryDelayMs: 0,
    maxDeliveries: 2,
  });
  return { redis, queue };
}

Deno.test("a tiny group drains exactly once: state, outputs, counters and acks commit together", async () => {
  const { redis, queue } = await fresh();
  const words = ["apple", "avocado", "banana", "blueberry", "cherry"];
  await queue.stream.append(words.map((w) => ["word", w]), {
    counter: { key: queue.keys.counters, field: "emitted" },
  });
  const first = await drainGroup(queue, wordCounter(), { budgetMs: 2000 });
  assert.equal(first.acked, 5);
  assert.equal(first.outputs, 5);
  assert.equal(first.lag, 0);
  const again = await drainGroup(queue, wordCounter(), { budgetMs: 2000 });
  assert.equal(again.read, 0);
  assert.deepEqual(JSON.parse((await redis.hget(queue.keys.state("word-count"), "a"))!), [
    "apple",
    "avocado",
  ]);
  assert.equal(await redis.xlen("words:out"), 5);
  const counters = await redis.hgetall(queue.keys.counters);
  assert.equal(counters.emitted, "5");
  assert.equal(counters["acked:word-count"], "5");
  assert.equal(counters["outputs:word-count:word"], "5");
  assert.ok(Number(counters["last_drain_ms:word-count"]) > 0);
});

Deno.test("a failing entry holds back only the later entries of its key, then goes to the dead letters", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "apple"], ["word", "bad"], ["word", "banana"], [
    "word",
    "cherry",
  ]]);
  const handler = wordCounter({ failing: new Set(["bad"]) });
  const first = await drainGroup(queue, handler, { budgetMs: 0, maxChunks: 1 });
  assert.equal(first.acked, 2);
  assert.equal(first.failed, 1);
  assert.equal(first.deferred, 1);
  // The retry is due after claimIdleMs; the second delivery is the last.
  await new Promise((resolve) => setTimeout(resolve, 250));
  const second = await drainGroup(queue, handler, { budgetMs: 2000 });
  assert.equal(second.deadLettered, 1);
  assert.equal(second.acked, 2);
  assert.deepEqual(JSON.parse((await redis.hget(queue.keys.state("word-count"), "b"))!), [
    "banana",
  ]);
  assert.equal(await redis.hget(queue.keys.deadCount, "word-count"), "1");
  const counters = await redis.hgetall(queue.keys.counters);
  assert.equal(counters["failed:word-count"], "1");
  assert.equal(counters["dead_lettered:word-count"], "1");
  assert.equal(counters["claimed:word-count"], "2");

  // Fixed, the replay succeeds and the dead letter leaves.
  const replay = await replayDeadLetters(queue, wordCounter(), {});
  assert.deepEqual([replay.attempted, replay.succeeded, replay.failed], [1, 1, 0]);
  assert.equal(await redis.xlen(queue.keys.deadLetters), 0);
  assert.equal(await redis.hget(queue.keys.deadCount, "word-count"), "0");
  assert.equal((await redis.hgetall(queue.keys.counters))["replayed:word-count"], "1");
  assert.deepEqual(JSON.parse((await redis.hget(queue.keys.state("word-count"), "b"))!), [
    "banana",
    "bad",
  ]);
});

Deno.test("an entry that cannot be decoded is dead-lettered at once, without retries", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["noise", "x"], ["word", "kiwi"]]);
  const result = await drainGroup(queue, wordCounter(), { budgetMs: 2000 });
  assert.equal(result.deadLettered, 1);
  assert.equal(result.acked, 2);
  const [letter] = await redis.xrange(queue.keys.deadLetters, "-", "+");
  assert.match(letter[1][letter[1].indexOf("error") + 1], /^PoisonError: Entry has no word/);
});

Deno.test("a new group starts at the end of the stream by default, at 0 on request", async () => {
  const { queue } = await fresh();
  await queue.stream.append([["word", "old"]]);
  const fromEnd = await drainGroup(queue, wordCounter({ start: undefined, name: "late" }));
  const fromZero = await drainGroup(queue, wordCounter({ name: "early" }));
  assert.equal(fromEnd.read, 0);
  assert.equal(fromZero.read, 1);
  await queue.stream.append([["word", "new"]]);
  assert.equal((await drainGroup(queue, wordCounter({ start: undefined, name: "late" }))).read, 1);
});

Deno.test("a sink whose dependency fails stalls the group: nothing acked, no delivery counted", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "fig"], ["word", "grape"]]);
  let up = false;
  const written: string[] = [];
  const sink: SinkHandler<Word> = {
    name: "sink",
    start: "0",
    decode: (fields) => ({ word: fields[1] }),
    key: (item) => item.word,
    write(items) {
      if (!up) return Promise.reject(new DependencyError("disk", "Cannot write the file"));
      written.push(...items.map((i) => i.item.word));
      return Promise.resolve();
    },
  };
  const stalled = await drainGroup(queue, sink, { budgetMs: 500 });
  assert.equal(stalled.acked, 0);
  assert.equal(stalled.stalled?.dependency, "disk");
  assert.equal((await readStalls(redis, queue.keys.stalled)).get("sink")?.failures, 1);
  const [pending] = await queue.stream.group("sink").pendingEntries();
  assert.equal(pending.deliveries, 0);
  up = true;
  await new Promise((resolve) => setTimeout(resolve, 250));
  const recovered = await drainGroup(queue, sink, { budgetMs: 2000 });
  assert.equal(recovered.acked, 2);
  assert.deepEqual(written, ["fig", "grape"]);
  assert.equal((await readStalls(redis, queue.keys.stalled)).size, 0);
});

Deno.test("a read under a lost lease, or past pending entries, takes nothing and leaves the group's position and lag as they were", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "a"], ["word", "b"], ["word", "c"]]);
  await queue.stream.group("g").ensure({ startId: "0" });
  const lease = (await acquireLease(redis, queue.keys.lease("g")))!;
  const request = { group: "g", consumer: "c1", count: 2, lease, renewTtlMs: undefined };
  const first = await readNew(queue, request);
  assert.equal(first.status, "ok");
  const before = (await queue.stream.groups())[0];
  // Two entries are pending now: a read must not go past them.
  const pending = await readNew(queue, request);
  assert.equal(pending.status, "pending");
  // A holder whose token is stale is fenced.
  const fenced = await readNew(queue, { ...request, lease: { ...lease, token: "0" } });
  assert.equal(fenced.status, "fenced");
  const after = (await queue.stream.groups())[0];
  assert.deepEqual(after, before);
  assert.equal(after.lag, 1);
  assert.equal(await redis.exists(queue.keys.readHold("g")), 0);
  // Once the pending entries are acked, the next read takes the third entry.
  await queue.stream.group("g").ack(first.status === "ok" ? first.entries.map((e) => e.id) : []);
  const next = await readNew(queue, request);
  assert.equal(next.status, "ok");
  assert.deepEqual(next.status === "ok" ? next.entries.map((e) => e.fields[1]) : [], ["c"]);
});

Deno.test("a commit of a whole pending chunk still finds ids acked behind its back, and takes a chunk with others pending by the full check", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "a"], ["word", "b"], ["word", "c"], ["word", "d"]]);
  await queue.stream.group("g").ensure({ startId: "0" });
  const lease = (await acquireLease(redis, queue.keys.lease("g")))!;
  const group = queue.stream.group("g");
  const request = { group: "g", consumer: "c1", count: 3, lease, renewTtlMs: undefined };
  const read = await readNew(queue, request);
  assert.equal(read.status, "ok");
  const ids = read.status === "ok" ? read.entries.map((e) => e.id) : [];
  assert.equal(ids.length, 3);
  // Someone acks the middle entry: count and ends no longer match, so nothing commits.
  await group.ack([ids[1]]);
  const stale = await group.commit(ids, {
    fence: lease,
    wholePending: true,
    hashWrites: [["words:probe", "x", "1"]],
  });
  assert.equal(stale.status, "stale");
  assert.deepEqual(stale.stale, [ids[1]]);
  assert.equal(await redis.exists("words:probe"), 0);
  // The fourth entry is pending too (another read): a wrong "whole" claim falls back to the range check.
  await redis.call("XREADGROUP", "GROUP", "g", "c2", "COUNT", 1, "STREAMS", queue.stream.key, ">");
  const ok = await group.commit([ids[0], ids[2]], {
    fence: lease,
    wholePending: true,
    hashWrites: [["words:probe", "x", "1"]],
  });
  assert.equal(ok.status, "ok");
  assert.equal(ok.done, 2);
  assert.equal(await redis.hget("words:probe", "x"), "1");
  assert.equal((await group.pendingEntries()).length, 1);
});

Deno.test("a commit sent before its read ahead's reply takes the read's span from the read's record, and ignores another holder's record", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "a"], ["word", "b"], ["word", "c"], ["word", "d"]]);
  const group = queue.stream.group("g");
  await group.ensure({ startId: "0" });
  const lease = (await acquireLease(redis, queue.keys.lease("g")))!;
  const base = { group: "g", consumer: "c1", count: 2, lease, renewTtlMs: undefined };
  const first = await readNew(queue, base);
  const ids = first.status === "ok" ? first.entries.map((e) => e.id) : [];
  assert.equal(ids.length, 2);
  const record = queue.keys.readAhead("g");
  assert.equal(await redis.exists(record), 0, "a plain read leaves no record");
  const ahead = await readNew(queue, {
    ...base,
    ahead: { count: 2, firstId: ids[0], lastId: ids[1] },
  });
  assert.equal(ahead.status, "ok");
  const later = ahead.status === "ok" ? ahead.entries.map((e) => e.id) : [];
  assert.deepEqual(JSON.parse(String(await redis.get(record))), {
    token: lease.token,
    n: 4,
    high: later[1],
  });
  // The commit names the record instead of the read's span: the whole-pending check passes.
  const ok = await group.commit(ids, { fence: lease, wholePending: true, readAheadKey: record });
  assert.equal(ok.status, "ok");
  assert.equal(await redis.exists(record), 0, "the commit consumes the record");
  // Another holder's record is no proof, even one that fits what is pending: taken at its
  // word it would pass the summary check with an id acked behind the commit's back. The
  // commit drops its whole-pending claim and the range check finds that id.
  await group.ack([later[1]]);
  await redis.set(record, JSON.stringify({ token: "other", n: 1, high: later[0] }));
  const stale = await group.commit(later, {
    fence: lease,
    wholePending: true,
    readAheadKey: record,
  });
  assert.equal(stale.status, "stale");
  assert.deepEqual(stale.stale, [later[1]]);
  assert.deepEqual((await group.pendingEntries()).map((p) => p.id), [later[0]]);
});

Deno.test("a commit told its ids are in order reads the range off their ends, and refuses ids out of order as stale", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append([["word", "a"], ["word", "b"], ["word", "c"], ["word", "d"]]);
  const group = queue.stream.group("g");
  await group.ensure({ startId: "0" });
  const read = await group.read("c1", { count: 4 });
  const ids = read.map((e) => e.id);
  // Out of order, the ends span only the first two ids: the others are outside the range.
  const wrong = await group.commit([ids[1], ids[3], ids[2], ids[0]], {
    ordered: true,
    hashWrites: [["words:probe", "x", "1"]],
  });
  assert.equal(wrong.status, "stale");
  assert.equal(await redis.exists("words:probe"), 0);
  assert.equal((await group.pendingEntries()).length, 4);
  // In order, acks and retry marks each in stream order: all of it commits.
  const ok = await group.commit([ids[0], ids[2]], {
    ordered: true,
    retry: [{ id: ids[1], idleMs: 0, attempted: true }, { id: ids[3], idleMs: 0, attempted: true }],
    hashWrites: [["words:probe", "x", "1"]],
  });
  assert.equal(ok.status, "ok");
  assert.equal(ok.done, 2);
  assert.deepEqual((await group.pendingEntries()).map((p) => p.id), [ids[1], ids[3]]);
});

Deno.test("a sink failing because Redis or every cluster node is gone stalls: the engine and the app's 503s read errors alike", async () => {
  const outages = [
    "Connection is closed.",
    "None of startup nodes is available",
    "Cluster is ended.",
    "Too many Cluster redirections. Last error: Error: Connection is closed.",
    "connect ECONNREFUSED 127.0.0.1:6379",
    "Command timed out",
  ];
  for (const message of outages) {
    assert.ok(asDependencyError(new Error(message)) instanceof DependencyError, message);
    assert.ok(isRedisUnavailable(new Error(message)), message);
  }
  // A bug in the handler is the entry's failure, not an outage.
  assert.equal(asDependencyError(new TypeError("Cannot read properties of undefined")), undefined);
  assert.equal(isRedisUnavailable(new TypeError("Cannot read properties of undefined")), false);
  // And a sink that hits one is stalled, not dead-lettered.
  const { queue } = await fresh();
  await queue.stream.append([["word", "fig"]]);
  const sink: SinkHandler<Word> = {
    name: "cluster-sink",
    start: "0",
    decode: (fields) => ({ word: fields[1] }),
    key: (item) => item.word,
    write: () => Promise.reject(new Error("None of startup nodes is available")),
  };
  const result = await drainGroup(queue, sink, { budgetMs: 200 });
  assert.equal(result.stalled?.dependency, "redis");
  assert.equal(result.deadLettered, 0);
});

Deno.test("engine tests close their redis-server", async () => {
  await server?.stop();
});
