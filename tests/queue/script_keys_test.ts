import assert from "node:assert/strict";
import {
  acquireLease,
  DependencyError,
  drainGroup,
  openQueue,
  queueKeys,
  releaseLease,
  renewLease,
  replayDeadLetters,
  resetGroupCache,
  type SinkHandler,
  type StepHandler,
  updateLatest,
} from "../../shared/queue/mod.ts";
import { SCRIPTS } from "../../shared/queue/scripts.ts";
import { startMonitor } from "../_monitor.ts";
import { startRedis } from "../_redis_server.ts";
import { type Word, wordCounter } from "./_words.ts";

/** Runs every engine script at least once on a queue whose keys carry the tag `{t1}`. */
async function exerciseEverything(
  redis: ReturnType<Awaited<ReturnType<typeof startRedis>>["client"]>,
) {
  const keys = queueKeys("words", { hashTag: "t1" });
  const queue = openQueue(redis, keys, {
    claimIdleMs: 100,
    retryDelayMs: 0,
    maxDeliveries: 2,
    consumerIdleMs: 0,
    maxLen: 2,
  });
  const idem = keys.idempotency("request-1");
  await redis.set(idem, "token");
  await queue.stream.append([["word", "apple"], ["word", "bad"], ["word", "cherry"]], {
    maxLen: 2,
    guard: { key: keys.related("words:sim"), expected: "0", next: "1", state: "{}" },
    idempotency: { key: idem, token: "token", fingerprint: "f", ttlMs: 60000 },
    latest: { key: keys.related("words:latest"), items: [{ index: 0, field: "a", rest: "}" }] },
    counter: { key: keys.counters, field: "emitted" },
  });
  const output = keys.related("words:out");
  const counter = wordCounter({ output, failing: new Set(["bad"]) });
  await drainGroup(queue, counter, { budgetMs: 0, maxChunks: 1 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  await drainGroup(queue, counter, { budgetMs: 2000 });
  await replayDeadLetters(queue, wordCounter({ output }));
  const sink: SinkHandler<Word> = {
    name: "sink",
    start: "0",
    decode: (fields) => ({ word: fields[1] }),
    key: (item) => item.word,
    write: () => Promise.reject(new DependencyError("disk", "Cannot write")),
  };
  await drainGroup(queue, sink, { budgetMs: 0 });
  // A drain stopped while a chunk runs puts the chunk it read ahead back as unread.
  await queue.stream.append([["word", "fig"], ["word", "grape"], ["word", "kiwi"]]);
  const stop = new AbortController();
  const stopping = wordCounter({ output, name: "stopping" });
  const stopper: StepHandler<Word, string[]> = {
    ...stopping,
    step(state, item, context) {
      stop.abort();
      return stopping.step(state, item, context);
    },
  };
  await drainGroup(queue, stopper, { count: 1, budgetMs: 2000, signal: stop.signal });
  await updateLatest(redis, keys.related("words:latest"), [{ field: "a", id: "9-0", rest: "}" }]);
  await queue.stream.trim(0);
  await queue.stream.oldestNeededId();
  const lease = await acquireLease(redis, keys.lease("other"));
  assert.ok(lease);
  await renewLease(redis, lease);
  await releaseLease(redis, lease);
}

Deno.test("every key a script touches comes in its KEYS, and every KEYS of a call shares the queue's hash tag", async () => {
  const server = await startRedis();
  const redis = server.client();
  resetGroupCache();
  const monitor = await startMonitor(server.port);
  try {
    await exerciseEverything(redis);
    const marker = `done-${crypto.randomUUID()}`;
    await redis.echo(marker);
    await monitor.waitFor(marker);
  } finally {
    monitor.close();
  }
  const shas = new Set<string>();
  let current: { sha: string; keys: string[] } | undefined;
  const inner: { script: { sha: string; keys: string[] }; args: string[] }[] = [];
  for (const { source, args } of monitor.seen) {
    if (source === "lua") {
      assert.ok(current, `a script command with no script: ${args.join(" ")}`);
      inner.push({ script: current, args });
    } else if (args[0] === "evalsha" || args[0] === "eval") {
      const keys = args.slice(3, 3 + Number(args[2]));
      const sha = args[0] === "evalsha"
        ? args[1]
        : Object.values(SCRIPTS).find((s) => s.source === args[1])?.sha ?? "?";
      current = { sha, keys };
      shas.add(sha);
      for (const key of keys) assert.match(key, /\{t1\}/, `key without the hash tag: ${key}`);
    } else {
      current = undefined;
    }
  }
  // Every script of the engine ran.
  for (const script of Object.values(SCRIPTS)) {
    assert.ok(shas.has(script.sha), `script ${script.name} did not run`);
  }
  // Redis tells which arguments of a command are keys.
  const checked = new Set<string>();
  for (const { script, args } of inner) {
    let touched: string[] = [];
    try {
      touched = (await server.client().call("COMMAND", "GETKEYS", ...args)) as string[];
    } catch (error) {
      // Commands without key arguments (none in our scripts) say so.
      assert.match(String(error), /no key arguments|Invalid arguments/, args.join(" "));
    }
    for (const key of touched) {
      assert.ok(
        script.keys.includes(key),
        `${args[0]} touches ${key}, which is not in KEYS [${script.keys.join(", ")}]`,
      );
      checked.add(args[0]);
    }
  }
  // A drain's read is a plain XREADGROUP in a transaction with read_guard.lua, not in a script.
  for (
    const name of ["xadd", "xack", "hset", "hincrby", "xautoclaim", "xpending", "xtrim", "xgroup"]
  ) {
    assert.ok(checked.has(name), `no ${name} inside a script was checked`);
  }

  // The same check catches a script that reaches a key it did not declare.
  const control = await startMonitor(server.port);
  await redis.eval("return redis.pcall('GET', 'undeclared')", 1, "declared{t1}");
  const marker = `control-${crypto.randomUUID()}`;
  await redis.echo(marker);
  await control.waitFor(marker);
  control.close();
  const get = control.seen.find((c) => c.source === "lua" && c.args[0] === "get");
  assert.deepEqual(get?.args, ["get", "undeclared"]);
  assert.deepEqual(await server.client().call("COMMAND", "GETKEYS", ...get!.args), ["undeclared"]);
  await server.stop();
});
