import assert from "node:assert/strict";
import {
  drainGroup,
  openQueue,
  queueKeys,
  resetGroupCache,
  type StepHandler,
} from "../../shared/queue/mod.ts";
import { startRedis, type TestRedis } from "../_redis_server.ts";
import { type Word, wordCounter } from "./_words.ts";

let server: TestRedis;

async function fresh(now: () => number = Date.now) {
  server ??= await startRedis();
  await server.flush();
  resetGroupCache();
  const redis = server.client();
  const queue = openQueue(redis, queueKeys("words"), {
    claimIdleMs: 200,
    retryDelayMs: 0,
    maxDeliveries: 3,
    now,
  });
  return { redis, queue };
}

function words(list: string[]): string[][] {
  return list.map((w) => ["word", w]);
}

Deno.test("a drain reads the next chunk while one runs, and puts back as unread what its budget leaves", async () => {
  let clock = 1_000_000;
  const { redis, queue } = await fresh(() => clock);
  await queue.stream.append(words(["apple", "banana", "cherry", "date", "elder", "fig"]));
  const counter = wordCounter();
  // Each step takes a fake second, so the first chunk spends the budget.
  const slow: StepHandler<Word, string[]> = {
    ...counter,
    step(state, item, context) {
      clock += 1000;
      return counter.step(state, item, context);
    },
  };
  const first = await drainGroup(queue, slow, { count: 2, budgetMs: 1500 });
  assert.equal(first.read, 2);
  assert.equal(first.acked, 2);
  assert.equal(first.more, true);
  // The chunk read ahead went back as never read: nothing pending, and the lag counts it.
  assert.equal((await queue.stream.group("word-count").pendingEntries()).length, 0);
  assert.equal(first.lag, 4);

  // The next drain reads it as new entries, then the rest.
  const next = await drainGroup(queue, counter, { count: 2, budgetMs: 5000 });
  assert.equal(next.claimed, 0);
  assert.equal(next.acked, 4);
  assert.equal(next.failed, 0);
  assert.equal(next.lag, 0);
  const outputs = await redis.xrange("words:out", "-", "+");
  assert.deepEqual(outputs.map(([, fields]) => fields[1]), [
    "apple",
    "banana",
    "cherry",
    "date",
    "elder",
    "fig",
  ]);
  assert.equal((await redis.hgetall(queue.keys.counters))["acked:word-count"], "6");
});

Deno.test("a failed entry sends the chunk read ahead back, so a later entry of its key never overtakes its retry", async () => {
  const { redis, queue } = await fresh();
  await queue.stream.append(words(["apple", "bad", "cherry", "banana", "date", "blue"]));
  const counter = wordCounter();
  let failures = 0;
  // "bad" fails on its first delivery only.
  const flaky: StepHandler<Word, string[]> = {
    ...counter,
    step(state, item, context) {
      if (item.word === "bad" && failures++ === 0) throw new Error(`Cannot count "bad" yet`);
      return counter.step(state, item, context);
    },
  };
  const result = await drainGroup(queue, flaky, { count: 2, budgetMs: 5000 });
  assert.equal(failures, 2);
  assert.equal(result.acked, 6);
  assert.equal(result.deadLettered, 0);
  // Only the retry of "bad" was claimed: the chunk read ahead went back as unread.
  assert.equal(result.claimed, 1);
  assert.deepEqual(JSON.parse((await redis.hget(queue.keys.state("word-count"), "b"))!), [
    "bad",
    "banana",
    "blue",
  ]);
  assert.equal((await queue.stream.group("word-count").pendingEntries()).length, 0);
});

Deno.test("a chunk read ahead that cannot go back as unread stays pending, claimable at once, its delivery given back", async () => {
  let clock = 1_000_000;
  const { redis, queue } = await fresh(() => clock);
  await queue.stream.append(words(["apple", "banana", "cherry", "date", "elder"]));
  const counter = wordCounter();
  let stepped = 0;
  const slow: StepHandler<Word, string[]> = {
    ...counter,
    step(state, item, context) {
      clock += 1000;
      // Another reader of the group (outside the engine) moves it past the chunk read ahead.
      if (++stepped === 2) {
        redis.call("XGROUP", "SETID", queue.stream.key, "word-count", "$");
      }
      return counter.step(state, item, context);
    },
  };
  const first = await drainGroup(queue, slow, { count: 2, budgetMs: 1500 });
  assert.equal(first.acked, 2);
  const pending = await queue.stream.group("word-count").pendingEntries();
  assert.equal(pending.length, 2);
  for (const entry of pending) {
    assert.equal(entry.deliveries, 0);
    assert.ok(entry.idleMs >= 200, `idle ${entry.idleMs} ms`);
  }
  const next = await drainGroup(queue, counter, { count: 2, budgetMs: 5000 });
  assert.equal(next.claimed, 2);
  assert.equal(next.acked, 2);
  assert.equal(next.deadLettered, 0);
});

Deno.test("read-ahead tests close their redis-server", async () => {
  await server?.stop();
});
