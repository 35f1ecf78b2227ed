import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { closeLive, createLiveApp, liveReaders } from "../functions/live.ts";
import type { Config } from "../shared/config.ts";
import type { Deps } from "../shared/http.ts";
import { nodeCommand } from "../scripts/_cluster_admin.ts";
import { parseCursor } from "../shared/live/mod.ts";
import { partitionOf } from "../shared/partitions.ts";
import { closeCluster, createClusterClient } from "../shared/redis_cluster.ts";
import { stockKeys } from "../shared/stock_queue.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { addAlert, addQuote, receivedKeys, symbolsByPartition, waitFor } from "./_live_feed.ts";
import { startRedisCluster } from "./_redis_cluster.ts";
import { SseReader } from "./_sse.ts";
import { serve, siteConfig, siteDeps } from "./_site.ts";

const N = 4;
const SYMBOLS = symbolsByPartition(N);

Deno.test("on Redis Cluster the live feed delivers every partition and resumes per partition", async () => {
  await using cluster = await startRedisCluster();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-live-cluster-" });
  const client = createClusterClient(cluster.seeds);
  const config: Config = siteConfig("redis://127.0.0.1:1", dir, {
    STREAM_PARTITIONS: String(N),
    REDIS_CLUSTER_NODES: cluster.seeds,
  });
  // The cluster client serves the Redis calls the feed makes outside its readers.
  const deps: Deps = siteDeps(config, {
    redis: client as unknown as Redis,
    quoteStore: createQuoteStore(config),
  });
  const server = serve(createLiveApp(deps));
  try {
    // Partitions live on different masters, so one XREAD could not read them all.
    const masters = await Promise.all(
      Array.from({ length: N }, (_, p) => cluster.masterFor(stockKeys(config, p).stream)),
    );
    const owners = new Set(masters.map((node) => node.port));
    assert.ok(owners.size > 1, "every partition landed on one master");

    const first = await fetch(`${server.url}/live`);
    assert.equal(first.status, 200);
    const reader = new SseReader(first.body!);
    await waitFor(() => liveReaders() === 1);
    const expected: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const symbols of SYMBOLS) {
        for (const symbol of symbols) {
          expected.push(`quote:${symbol}:${await addQuote(client, config, symbol)}`);
        }
      }
      const symbol = SYMBOLS[round][0];
      expected.push(`alert:${symbol}:${await addAlert(client, config, symbol)}`);
    }
    assert.ok(await reader.readUntil(() => reader.events.length >= expected.length));
    assert.deepEqual(receivedKeys(reader).toSorted(), expected.toSorted());
    assert.equal(parseCursor(reader.lastId)!.length, 2 * N);
    // The shared command client is not held by the blocked readers: they have their own connections.
    assert.equal(await client.call("PING"), "PONG");
    let blocked = 0;
    for (const port of owners) {
      const list = String(await nodeCommand(port, ["CLIENT", "LIST"]));
      blocked += list.split("\n").filter((line) =>
        line.includes("name=tickstream-live ") && line.includes("cmd=xread")
      ).length;
    }
    assert.equal(blocked, N, "one blocked reader per partition");
    await reader.cancel();
    await closeLive();

    // Written while disconnected: resuming gets exactly these, in each partition's order.
    const missed: string[] = [];
    for (const symbols of SYMBOLS.toReversed()) {
      for (const symbol of symbols) {
        missed.push(`quote:${symbol}:${await addQuote(client, config, symbol)}`);
      }
    }
    const again = await fetch(`${server.url}/live`, {
      headers: { "Last-Event-ID": reader.lastId },
    });
    const resumed = new SseReader(again.body!);
    try {
      assert.ok(await resumed.readUntil(() => resumed.events.length >= missed.length));
      const live = `quote:${SYMBOLS[1][1]}:${await addQuote(client, config, SYMBOLS[1][1])}`;
      assert.ok(await resumed.readUntil(() => resumed.events.length >= missed.length + 1));
      await resumed.readUntil(() => false, { timeoutMs: 150 });
      const got = receivedKeys(resumed);
      assert.deepEqual(got.toSorted(), [...missed, live].toSorted());
      for (let p = 0; p < N; p++) {
        const inPartition = (key: string) => partitionOf(key.split(":")[1], N) === p;
        assert.deepEqual(got.filter(inPartition), [...missed, live].filter(inPartition));
      }
    } finally {
      await resumed.cancel();
    }
  } finally {
    await closeLive();
    await server.close();
    await closeCluster(client);
    await Deno.remove(dir, { recursive: true });
  }
});
