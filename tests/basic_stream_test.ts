import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { runBasicExample } from "../scripts/basic_stream.ts";
import { startRedis } from "./_redis_server.ts";

const server = await startRedis();
const url = server.url;

Deno.test({
  name: "the basic stream example walks every step and deletes its scratch stream",
  async fn() {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      const lines: string[] = [];
      const result = await runBasicExample(redis, {
        log: (line) => lines.push(line),
        blockMs: 2000,
        wakeDelayMs: 100,
      });
      assert.match(result.streamKey, /^tickstream:example:/);
      assert.equal(result.addedIds.length, 3);
      assert.deepEqual(result.readQuotes.map((q) => q.symbol), ["AAPL", "MSFT", "TSLA"]);
      assert.deepEqual(result.groupReadIds, result.addedIds);
      assert.equal(result.pendingBeforeAck, 3);
      assert.equal(result.acked, 3);
      assert.equal(result.pendingAfterAck, 0);
      assert.equal(result.lengthAfterTrim, 2);
      assert.equal(result.wokenBy?.symbol, "AAPL");
      // Woken by the second connection, well before the block would have timed out.
      assert.ok(
        result.blockedMs >= 50 && result.blockedMs < 1500,
        `blocked ${result.blockedMs} ms`,
      );
      assert.equal(await redis.exists(result.streamKey), 0);
      for (const command of ["XADD", "XREAD", "XGROUP CREATE", "XREADGROUP", "XPENDING", "XACK"]) {
        assert.ok(lines.some((line) => line.includes(command)), `no step printed ${command}`);
      }
      assert.ok(
        lines.some((line) => line.includes("XTRIM")) && lines.some((l) => l.includes("BLOCK")),
      );
    } finally {
      await redis.quit();
    }
  },
});

Deno.test({
  name: "the basic stream example uses the stream key it is given and still deletes it",
  async fn() {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      const streamKey = `tickstream:example:test-${crypto.randomUUID().slice(0, 8)}`;
      const result = await runBasicExample(redis, { streamKey, log: () => {}, wakeDelayMs: 0 });
      assert.equal(result.streamKey, streamKey);
      assert.ok(result.wokenBy);
      assert.equal(await redis.exists(streamKey), 0);
    } finally {
      await redis.quit();
    }
  },
});

Deno.test({
  name: "basic stream tests close their redis-server",
  async fn() {
    await server.stop();
  },
});
