import assert from "node:assert/strict";
import {
  ackEntries,
  appendBatch,
  autoClaim,
  commitEntries,
  compareIds,
  consumersInfo,
  deleteIdleConsumers,
  ensureGroup,
  groupsInfo,
  oldestNeededId,
  pendingEntries,
  pendingSummary,
  rangeEntries,
  readAfter,
  readGroup,
  streamInfo,
  trimStream,
} from "../shared/stream.ts";
import { acquireLease, releaseLease, renewLease } from "../shared/lease.ts";
import { startRedis } from "./_redis_server.ts";

const server = await startRedis();
const redis = server.client();

function quoteFields(i: number): string[] {
  return ["symbol", "AAPL", "price", String(100 + i), "volume", "10", "timestamp", "1700000000"];
}

async function fresh(): Promise<void> {
  await server.flush();
}

Deno.test("appendBatch adds a batch atomically and reports the first and last id", async () => {
  await fresh();
  const result = await appendBatch(redis, "s", [quoteFields(1), quoteFields(2), quoteFields(3)]);
  assert.equal(result.status, "ok");
  assert.equal(result.emitted, 3);
  const entries = await rangeEntries(redis, "s");
  assert.equal(entries.length, 3);
  assert.equal(result.firstId, entries[0].id);
  assert.equal(result.lastId, entries[2].id);
  assert.deepEqual(entries[1].fields, quoteFields(2));
});

Deno.test("appendBatch writes nothing when its version guard does not match", async () => {
  await fresh();
  await redis.hset("sim", "version", "3");
  const refused = await appendBatch(redis, "s", [quoteFields(1)], {
    guard: { key: "sim", expected: "2", next: "3", state: "{}" },
  });
  assert.equal(refused.status, "conflict");
  assert.equal(await redis.xlen("s"), 0);
  const accepted = await appendBatch(redis, "s", [quoteFields(1)], {
    guard: { key: "sim", expected: "3", next: "4", state: '{"x":1}' },
  });
  assert.equal(accepted.status, "ok");
  assert.deepEqual(await redis.hgetall("sim"), { version: "4", state: '{"x":1}' });
});

Deno.test("ensureGroup creates a group at 0 once and ignores BUSYGROUP", async () => {
  await fresh();
  await appendBatch(redis, "s", [quoteFields(1)]);
  assert.equal(await ensureGroup(redis, "s", "g"), true);
  assert.equal(await ensureGroup(redis, "s", "g"), false);
  // Started at 0, so the entry added before the group is still delivered.
  const entries = await readGroup(redis, "s", "g", "c1");
  assert.equal(entries.length, 1);
  assert.equal(await ensureGroup(redis, "missing", "g"), true, "MKSTREAM creates the stream");
  assert.equal(await redis.exists("missing"), 1);
});

Deno.test("readGroup, pending, ack and autoClaim follow the group's life cycle", async () => {
  await fresh();
  await appendBatch(redis, "s", [quoteFields(1), quoteFields(2), quoteFields(3)]);
  await ensureGroup(redis, "s", "g");
  const read = await readGroup(redis, "s", "g", "c1", { count: 2 });
  assert.equal(read.length, 2);
  const summary = await pendingSummary(redis, "s", "g");
  assert.equal(summary.count, 2);
  assert.equal(summary.minId, read[0].id);
  assert.deepEqual(summary.consumers, [{ name: "c1", pending: 2 }]);
  assert.equal(await ackEntries(redis, "s", "g", [read[0].id]), 1);
  assert.equal(await ackEntries(redis, "s", "g", [read[0].id]), 0);
  const [pending] = await pendingEntries(redis, "s", "g");
  assert.equal(pending.id, read[1].id);
  assert.equal(pending.consumer, "c1");
  assert.equal(pending.deliveries, 1);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const claimed = await autoClaim(redis, "s", "g", "c2", { minIdleMs: 20 });
  assert.deepEqual(claimed.entries.map((e) => e.id), [read[1].id]);
  assert.equal(claimed.next, "0-0");
  const [after] = await pendingEntries(redis, "s", "g");
  assert.equal(after.consumer, "c2");
  assert.equal(after.deliveries, 2);
  assert.deepEqual(await readGroup(redis, "s", "g", "c2", { from: "0" }).then((e) => e.length), 1);
});

Deno.test("readGroup with BLOCK waits for an entry added by another connection", async () => {
  await fresh();
  await ensureGroup(redis, "s", "g");
  const blocking = redis.duplicate();
  try {
    const waiting = readGroup(blocking, "s", "g", "c1", { blockMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await appendBatch(redis, "s", [quoteFields(9)]);
    const entries = await waiting;
    assert.equal(entries.length, 1);
    const after = await readAfter(redis, "s", "0");
    assert.equal(after.length, 1);
  } finally {
    blocking.disconnect();
  }
});

Deno.test("XINFO replies are parsed into typed objects", async () => {
  await fresh();
  assert.equal(await streamInfo(redis, "nothing"), null);
  assert.deepEqual(await groupsInfo(redis, "nothing"), []);
  await appendBatch(redis, "s", [quoteFields(1), quoteFields(2)]);
  await ensureGroup(redis, "s", "g");
  await readGroup(redis, "s", "g", "c1", { count: 1 });
  const info = await streamInfo(redis, "s");
  assert.equal(info?.length, 2);
  assert.equal(info?.entriesAdded, 2);
  assert.equal(info?.groups, 1);
  const [group] = await groupsInfo(redis, "s");
  assert.equal(group.name, "g");
  assert.equal(group.pending, 1);
  assert.equal(group.lag, 1);
  assert.equal(group.entriesRead, 1);
  const [consumer] = await consumersInfo(redis, "s", "g");
  assert.equal(consumer.name, "c1");
  assert.equal(consumer.pending, 1);
  assert.ok(consumer.idleMs >= 0);
});

Deno.test("trimStream never removes an entry a group has not read and acked", async () => {
  await fresh();
  const batch = Array.from({ length: 20 }, (_, i) => quoteFields(i));
  await appendBatch(redis, "s", batch);
  await ensureGroup(redis, "s", "fast");
  await ensureGroup(redis, "s", "slow");
  const all = await rangeEntries(redis, "s", { count: 100 });
  const fast = await readGroup(redis, "s", "fast", "c", { count: 20 });
  await ackEntries(redis, "s", "fast", fast.map((e) => e.id));
  const slow = await readGroup(redis, "s", "slow", "c", { count: 10 });
  await ackEntries(redis, "s", "slow", slow.slice(0, 5).map((e) => e.id));
  // slow still needs entry 5 (pending) and everything after 9 (unread).
  assert.equal(await oldestNeededId(redis, "s"), all[5].id);
  assert.equal(await trimStream(redis, "s", { maxLen: 2 }), 5);
  const left = await rangeEntries(redis, "s", { count: 100 });
  assert.equal(left[0].id, all[5].id);
  await ackEntries(redis, "s", "slow", slow.slice(5).map((e) => e.id));
  const rest = await readGroup(redis, "s", "slow", "c", { count: 100 });
  await ackEntries(redis, "s", "slow", rest.map((e) => e.id));
  await trimStream(redis, "s", { maxLen: 2 });
  assert.equal(await redis.xlen("s"), 2);
  assert.equal(compareIds((await rangeEntries(redis, "s"))[0].id, all[18].id), 0);
});

Deno.test("deleteIdleConsumers keeps consumers that hold pending entries", async () => {
  await fresh();
  await appendBatch(redis, "s", [quoteFields(1)]);
  await ensureGroup(redis, "s", "g");
  await readGroup(redis, "s", "g", "holder");
  await redis.xgroup("CREATECONSUMER", "s", "g", "empty");
  await new Promise((resolve) => setTimeout(resolve, 30));
  const removed = await deleteIdleConsumers(redis, "s", "g", { idleMs: 10 });
  assert.deepEqual(removed, ["empty"]);
  assert.deepEqual((await consumersInfo(redis, "s", "g")).map((c) => c.name), ["holder"]);
  assert.equal((await pendingSummary(redis, "s", "g")).count, 1);
});

Deno.test("commitEntries writes alerts, state and acks together, or nothing", async () => {
  await fresh();
  await appendBatch(redis, "s", [quoteFields(1), quoteFields(2)]);
  await ensureGroup(redis, "s", "g");
  const read = await readGroup(redis, "s", "g", "c");
  const lease = await acquireLease(redis, "lease", 5000);
  assert.ok(lease);
  const fenced = await commitEntries(redis, "s", {
    group: "g",
    ids: [read[0].id],
    alertsKey: "alerts",
    alerts: [["type", "t"]],
    fence: { key: "lease", token: "not-the-token" },
  });
  assert.equal(fenced.status, "fenced");
  assert.equal(await redis.xlen("alerts"), 0);
  const ok = await commitEntries(redis, "s", {
    group: "g",
    ids: [read[0].id],
    alertsKey: "alerts",
    alerts: [["type", "t"]],
    hashWrites: [["state", "AAPL", "{}"]],
    counters: [["count", "g", 2]],
    fence: lease,
  });
  assert.deepEqual(ok, { status: "ok", done: 1 });
  assert.equal(await redis.xlen("alerts"), 1);
  assert.equal(await redis.hget("state", "AAPL"), "{}");
  assert.equal(await redis.hget("count", "g"), "2");
  // Committing the same id again is refused whole: its effects happened already.
  const again = await commitEntries(redis, "s", {
    group: "g",
    ids: [read[0].id, read[1].id],
    alertsKey: "alerts",
    alerts: [["type", "t"]],
  });
  assert.deepEqual(again, { status: "stale", stale: [read[0].id] });
  assert.equal(await redis.xlen("alerts"), 1);
  assert.equal((await pendingSummary(redis, "s", "g")).count, 1);
});

Deno.test("a lease is exclusive, renewable by its holder only, and fenced by token", async () => {
  await fresh();
  const first = await acquireLease(redis, "l", 1000);
  assert.ok(first);
  assert.equal(await acquireLease(redis, "l", 1000), null);
  assert.equal(await renewLease(redis, first, 2000), true);
  assert.equal(await releaseLease(redis, first), true);
  const second = await acquireLease(redis, "l", 1000);
  assert.ok(second);
  assert.ok(Number(second.token) > Number(first.token));
  assert.equal(await renewLease(redis, first, 2000), false);
  assert.equal(await releaseLease(redis, first), false);
});

Deno.test({
  name: "stream tests close their redis-server",
  async fn() {
    await server.stop();
  },
});
