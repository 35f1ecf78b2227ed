import assert from "node:assert/strict";
import { compareIds, openStream } from "../shared/queue/mod.ts";
import { acquireLease, releaseLease, renewLease } from "../shared/queue/mod.ts";
import { startRedis } from "./_redis_server.ts";

const server = await startRedis();
const redis = server.client();
// Handles send no command, so one per key serves every test.
const stream = openStream(redis, "s");
const group = stream.group("g");

function quoteFields(i: number): string[] {
  return ["symbol", "AAPL", "price", String(100 + i), "volume", "10", "timestamp", "1700000000"];
}

async function fresh(): Promise<void> {
  await server.flush();
}

Deno.test("append adds a batch atomically and reports the first and last id", async () => {
  await fresh();
  const result = await stream.append([quoteFields(1), quoteFields(2), quoteFields(3)]);
  assert.equal(result.status, "ok");
  assert.equal(result.emitted, 3);
  const entries = await stream.range();
  assert.equal(entries.length, 3);
  assert.equal(result.firstId, entries[0].id);
  assert.equal(result.lastId, entries[2].id);
  assert.deepEqual(entries[1].fields, quoteFields(2));
});

Deno.test("append writes nothing when its version guard does not match", async () => {
  await fresh();
  await redis.hset("sim", "version", "3");
  const refused = await stream.append([quoteFields(1)], {
    guard: { key: "sim", expected: "2", next: "3", state: "{}" },
  });
  assert.equal(refused.status, "conflict");
  assert.equal(await redis.xlen("s"), 0);
  const accepted = await stream.append([quoteFields(1)], {
    guard: { key: "sim", expected: "3", next: "4", state: '{"x":1}' },
  });
  assert.equal(accepted.status, "ok");
  assert.deepEqual(await redis.hgetall("sim"), { version: "4", state: '{"x":1}' });
});

Deno.test("ensure creates a group at 0 once and ignores BUSYGROUP", async () => {
  await fresh();
  await stream.append([quoteFields(1)]);
  assert.equal(await group.ensure(), true);
  assert.equal(await group.ensure(), false);
  // Started at 0, so the entry added before the group is still delivered.
  const entries = await group.read("c1");
  assert.equal(entries.length, 1);
  assert.equal(
    await openStream(redis, "missing").group("g").ensure(),
    true,
    "MKSTREAM creates the stream",
  );
  assert.equal(await redis.exists("missing"), 1);
});

Deno.test("read, pending, ack and claim follow the group's life cycle", async () => {
  await fresh();
  await stream.append([quoteFields(1), quoteFields(2), quoteFields(3)]);
  await group.ensure();
  const read = await group.read("c1", { count: 2 });
  assert.equal(read.length, 2);
  const summary = await group.pending();
  assert.equal(summary.count, 2);
  assert.equal(summary.minId, read[0].id);
  assert.deepEqual(summary.consumers, [{ name: "c1", pending: 2 }]);
  assert.equal(await group.ack([read[0].id]), 1);
  assert.equal(await group.ack([read[0].id]), 0);
  const [pending] = await group.pendingEntries();
  assert.equal(pending.id, read[1].id);
  assert.equal(pending.consumer, "c1");
  assert.equal(pending.deliveries, 1);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const claimed = await group.claim("c2", 20);
  assert.deepEqual(claimed.entries.map((e) => e.id), [read[1].id]);
  assert.equal(claimed.next, "0-0");
  const [after] = await group.pendingEntries();
  assert.equal(after.consumer, "c2");
  assert.equal(after.deliveries, 2);
  assert.deepEqual(await group.read("c2", { from: "0" }).then((e) => e.length), 1);
});

Deno.test("read with BLOCK waits for an entry added by another connection", async () => {
  await fresh();
  await group.ensure();
  const blocking = redis.duplicate();
  try {
    const waiting = openStream(blocking, "s").group("g").read("c1", { blockMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await stream.append([quoteFields(9)]);
    const entries = await waiting;
    assert.equal(entries.length, 1);
    const after = await stream.readAfter("0");
    assert.equal(after.length, 1);
  } finally {
    blocking.disconnect();
  }
});

Deno.test("XINFO replies are parsed into typed objects", async () => {
  await fresh();
  assert.equal(await openStream(redis, "nothing").info(), null);
  assert.deepEqual(await openStream(redis, "nothing").groups(), []);
  await stream.append([quoteFields(1), quoteFields(2)]);
  await group.ensure();
  await group.read("c1", { count: 1 });
  const info = await stream.info();
  assert.equal(info?.length, 2);
  assert.equal(info?.entriesAdded, 2);
  assert.equal(info?.groups, 1);
  const [groupInfo] = await stream.groups();
  assert.equal(groupInfo.name, "g");
  assert.equal(groupInfo.pending, 1);
  assert.equal(groupInfo.lag, 1);
  assert.equal(groupInfo.entriesRead, 1);
  const [consumer] = await group.consumers();
  assert.equal(consumer.name, "c1");
  assert.equal(consumer.pending, 1);
  assert.ok(consumer.idleMs >= 0);
});

Deno.test("trim never removes an entry a group has not read and acked", async () => {
  await fresh();
  const batch = Array.from({ length: 20 }, (_, i) => quoteFields(i));
  const fastGroup = stream.group("fast");
  const slowGroup = stream.group("slow");
  await stream.append(batch);
  await fastGroup.ensure();
  await slowGroup.ensure();
  const all = await stream.range({ count: 100 });
  const fast = await fastGroup.read("c", { count: 20 });
  await fastGroup.ack(fast.map((e) => e.id));
  const slow = await slowGroup.read("c", { count: 10 });
  await slowGroup.ack(slow.slice(0, 5).map((e) => e.id));
  // slow still needs entry 5 (pending) and everything after 9 (unread).
  assert.equal(await stream.oldestNeededId(), all[5].id);
  assert.equal(await stream.trim(2), 5);
  const left = await stream.range({ count: 100 });
  assert.equal(left[0].id, all[5].id);
  await slowGroup.ack(slow.slice(5).map((e) => e.id));
  const rest = await slowGroup.read("c", { count: 100 });
  await slowGroup.ack(rest.map((e) => e.id));
  await stream.trim(2);
  assert.equal(await redis.xlen("s"), 2);
  assert.equal(compareIds((await stream.range())[0].id, all[18].id), 0);
});

Deno.test("deleteIdleConsumers keeps consumers that hold pending entries", async () => {
  await fresh();
  await stream.append([quoteFields(1)]);
  await group.ensure();
  await group.read("holder");
  await redis.xgroup("CREATECONSUMER", "s", "g", "empty");
  await new Promise((resolve) => setTimeout(resolve, 30));
  const removed = await group.deleteIdleConsumers(10);
  assert.deepEqual(removed, ["empty"]);
  assert.deepEqual((await group.consumers()).map((c) => c.name), ["holder"]);
  assert.equal((await group.pending()).count, 1);
});

Deno.test("commit writes alerts, state and acks together, or nothing", async () => {
  await fresh();
  await stream.append([quoteFields(1), quoteFields(2)]);
  await group.ensure();
  const read = await group.read("c");
  const lease = await acquireLease(redis, { key: "lease", tokens: "lease:tokens" }, {
    ttlMs: 5000,
  });
  assert.ok(lease);
  const fenced = await group.commit([read[0].id], {
    outputs: [{ key: "alerts", maxLen: 100, fields: ["type", "t"] }],
    fence: { key: "lease", token: "not-the-token" },
  });
  assert.equal(fenced.status, "fenced");
  assert.equal(await redis.xlen("alerts"), 0);
  const ok = await group.commit([read[0].id], {
    outputs: [{ key: "alerts", maxLen: 100, fields: ["type", "t"] }],
    hashWrites: [["state", "AAPL", "{}"]],
    counters: [["count", "g", 2]],
    fence: lease,
  });
  assert.deepEqual(ok, { status: "ok", done: 1 });
  assert.equal(await redis.xlen("alerts"), 1);
  assert.equal(await redis.hget("state", "AAPL"), "{}");
  assert.equal(await redis.hget("count", "g"), "2");
  // Committing the same id again is refused whole: its effects happened already.
  const again = await group.commit([read[0].id, read[1].id], {
    outputs: [{ key: "alerts", maxLen: 100, fields: ["type", "t"] }],
  });
  assert.deepEqual(again, { status: "stale", stale: [read[0].id] });
  assert.equal(await redis.xlen("alerts"), 1);
  assert.equal((await group.pending()).count, 1);
});

Deno.test("a lease is exclusive, renewable by its holder only, and fenced by token", async () => {
  await fresh();
  const first = await acquireLease(redis, { key: "l", tokens: "l:tokens" }, { ttlMs: 1000 });
  assert.ok(first);
  assert.equal(await acquireLease(redis, { key: "l", tokens: "l:tokens" }, { ttlMs: 1000 }), null);
  assert.equal(await renewLease(redis, first, { ttlMs: 2000 }), true);
  assert.equal(await releaseLease(redis, first), true);
  const second = await acquireLease(redis, { key: "l", tokens: "l:tokens" }, { ttlMs: 1000 });
  assert.ok(second);
  assert.ok(Number(second.token) > Number(first.token));
  assert.equal(await renewLease(redis, first, { ttlMs: 2000 }), false);
  assert.equal(await releaseLease(redis, first), false);
});

Deno.test({
  name: "stream tests close their redis-server",
  async fn() {
    await server.stop();
  },
});
