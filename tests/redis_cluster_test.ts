import assert from "node:assert/strict";
import { type Cluster, ReplyError } from "ioredis";
import { nodeCommand } from "../scripts/_cluster_admin.ts";
import { redisProblem } from "../shared/redis.ts";
import {
  closeCluster,
  ClusterNodesError,
  createClusterClient,
  execPerNode,
  isClusterUnavailable,
  parseClusterNodes,
} from "../shared/redis_cluster.ts";
import pairScript from "./_cluster_pair.lua" with { type: "text" };
import { startRedisCluster } from "./_redis_cluster.ts";

/** Hang guard, not a timing assertion: a command that never settles fails the test. */
const HANG_MS = 10000;

const TAGGED_KEYS = Array.from({ length: 8 }, (_, i) => `name:{p${i}}`);

async function settle<T>(what: string, promise: Promise<T>): Promise<[unknown, T | undefined]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle in ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    return [undefined, await Promise.race([promise, hung])];
  } catch (error) {
    if (error instanceof Error && error.message.endsWith(`settle in ${HANG_MS} ms`)) throw error;
    return [error, undefined];
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

Deno.test("parseClusterNodes reads host:port lists and names the bad entry", () => {
  assert.deepEqual(parseClusterNodes("127.0.0.1:7000, redis-a:7001,[::1]:7002"), [
    { host: "127.0.0.1", port: 7000 },
    { host: "redis-a", port: 7001 },
    { host: "::1", port: 7002 },
  ]);
  for (const [value, bad] of [["", ""], ["a:1,b", "b"], ["a:0", "a:0"], ["a:70000", "a:70000"]]) {
    assert.throws(() => parseClusterNodes(value), (error: unknown) => {
      assert.ok(error instanceof ClusterNodesError);
      assert.ok(error.message.includes(`'${bad}'`) || value === "", error.message);
      return true;
    });
  }
  assert.throws(() => parseClusterNodes("a:1,a:1"), /appears twice/);
  assert.throws(() => parseClusterNodes("redis://a:1"), /'redis:\/\/a:1'/);
});

Deno.test("cluster outages are told from command errors", () => {
  const outages = [
    "CLUSTERDOWN The cluster is down",
    "MOVED 3999 127.0.0.1:7002",
    "ASK 3999 127.0.0.1:7002",
    "Too many Cluster redirections. Last error: Error: Connection is closed.",
    "Connection is closed.",
    "Command aborted due to connection close",
    "None of startup nodes is available",
  ];
  for (const message of outages) {
    // Server replies arrive as ReplyError, client-side failures as plain errors.
    const error = /^[A-Z]+ /.test(message) ? new ReplyError(message) : new Error(message);
    assert.equal(isClusterUnavailable(error), true, message);
    assert.notEqual(redisProblem(error), undefined, message);
  }
  assert.equal(redisProblem(new Error(outages[3])), "busy");
  for (const message of ["CROSSSLOT Keys in request don't hash to the same slot", "ERR syntax"]) {
    assert.equal(isClusterUnavailable(new Error(message)), false, message);
  }
});

Deno.test("a local Redis Cluster serves, splits pipelines per master and fails over", async (t) => {
  await using harness = await startRedisCluster();
  console.log(`cluster of 3+3 up in ${harness.startupMs} ms: ${harness.seeds}`);
  const cluster: Cluster = createClusterClient(harness.seeds);
  try {
    await t.step("every node reports cluster_state:ok and every replica is linked", async () => {
      assert.deepEqual(harness.nodes.map((node) => node.role).sort(), [
        "master",
        "master",
        "master",
        "replica",
        "replica",
        "replica",
      ]); // deno-fmt-ignore
      for (const node of harness.nodes) {
        const info = String(await nodeCommand(node.port, ["CLUSTER", "INFO"]));
        assert.match(info, /cluster_state:ok/);
        assert.match(info, /cluster_known_nodes:6/);
        if (node.role === "replica") {
          assert.match(String(await nodeCommand(node.port, ["INFO", "replication"])), /master_link_status:up/);
        }
      }
      assert.equal(await cluster.ping(), "PONG");
    });

    await t.step("keys name:{p0} to name:{p7} spread over all three masters", async () => {
      const owners = new Map<string, number>();
      for (const key of TAGGED_KEYS) {
        await cluster.set(key, key);
        const master = await harness.masterFor(key);
        assert.equal(await nodeCommand(master.port, ["EXISTS", key]), 1, key);
        owners.set(key, master.port);
      }
      const masters = harness.nodes.filter((node) => node.role === "master").map((node) =>
        node.port
      );
      assert.deepEqual([...new Set(owners.values())].sort(), masters.sort());
    });

    await t.step(
      "execPerNode runs a mixed pipeline across masters in the original order",
      async () => {
        for (const key of ["count:{p0}", "list:{p2}", "count:{p3}", "name:{p5}"]) {
          await cluster.del(key);
        }
        const commands: [string, ...string[]][] = [
          ["INCR", "count:{p0}"],
          ["RPUSH", "list:{p2}", "a", "b"],
          ["GET", "name:{p1}"],
          ["INCR", "count:{p3}"],
          ["PING"],
          ["GET", "name:{p5}"],
          ["INCR", "count:{p0}"],
          ["LRANGE", "list:{p2}", "0", "-1"],
          ["HSET", "name:{p3}", "field", "value"],
        ];
        await assert.rejects(
          cluster.pipeline(commands.map(([name, ...args]) => [name.toLowerCase(), ...args])).exec(),
          /All keys in the pipeline should belong to the same slots allocation group/,
        );
        const results = await execPerNode(cluster, commands);
        assert.deepEqual(results.slice(0, 8), [
          [null, 1],
          [null, 2],
          [null, "name:{p1}"],
          [null, 1],
          [null, "PONG"],
          [null, null],
          [null, 2],
          [null, ["a", "b"]],
        ]); // deno-fmt-ignore
        assert.match(messageOf(results[8][0]), /^WRONGTYPE/);
        assert.deepEqual(await execPerNode(cluster, []), []);
      },
    );

    await t.step(
      "a script runs when its keys share a hash tag and CROSSSLOT refuses others",
      async () => {
        assert.deepEqual(await cluster.eval(pairScript, 2, "pair:{p4}:a", "pair:{p4}:b", "v"), [
          "v",
          "v",
        ]);
        const [error] = await settle(
          "cross-slot script",
          cluster.eval(pairScript, 2, "pair:{p4}:a", "pair:{p6}:b", "v"),
        );
        assert.match(messageOf(error), /^CROSSSLOT Keys in request don't hash to the same slot/);
        assert.equal(isClusterUnavailable(error), false);
      },
    );

    await t.step("WAIT 1 with a timeout after a write returns the replica count", async () => {
      // WAIT is keyless: it rides in the write's pipeline to the same master.
      // Always give it a timeout: WAIT 1 0 blocks forever on a master without replicas.
      const results = await execPerNode(cluster, [
        ["SET", "wait:{p1}", "1"],
        ["WAIT", "1", "1000"],
        ["SET", "wait:{p2}", "1"],
        ["WAIT", "1", "1000"],
      ]);
      assert.deepEqual(results, [[null, "OK"], [null, 1], [null, "OK"], [null, 1]]);
    });

    await t.step("a user with a password connects; a wrong password fails fast", async () => {
      for (const node of harness.nodes) {
        await nodeCommand(node.port, [
          "ACL",
          "SETUSER",
          "app",
          "on",
          ">s3cret",
          "~*",
          "&*",
          "+@all",
        ]);
      }
      const user = createClusterClient(harness.seeds, { username: "app", password: "s3cret" });
      try {
        assert.equal(await user.set("auth:{p0}", "1"), "OK");
      } finally {
        await closeCluster(user);
      }
      const wrong = createClusterClient(harness.seeds, { username: "app", password: "wrong" });
      try {
        const started = Date.now();
        const [error] = await settle("wrong password", wrong.get("auth:{p0}"));
        console.log(`wrong password failed in ${Date.now() - started} ms: ${messageOf(error)}`);
        assert.ok(isClusterUnavailable(error), messageOf(error));
      } finally {
        await closeCluster(wrong);
      }
    });

    await t.step(
      "a killed master fails over: 503-style errors meanwhile, then writes work",
      async () => {
        const key = "name:{p0}";
        const master = await harness.masterFor(key);
        await harness.killMaster(master.port);
        const killedAt = Date.now();
        const errors: unknown[] = [];
        let firstSuccessMs: number | undefined;
        while (firstSuccessMs === undefined && Date.now() - killedAt < 30000) {
          const [error] = await settle("write during failover", cluster.set(key, "after"));
          if (error === undefined) firstSuccessMs = Date.now() - killedAt;
          else errors.push(error);
        }
        const failover = await harness.waitForFailover(master.port);
        console.log(
          `failover of ${master.port}: ${failover.newMaster.port} promoted, cluster ok after ` +
            `${failover.elapsedMs} ms, first client write after ${firstSuccessMs} ms, ` +
            `${errors.length} errors meanwhile: ${[...new Set(errors.map(messageOf))].join(" / ")}`,
        );
        assert.ok(firstSuccessMs !== undefined, "No write succeeded within 30 s of the kill");
        assert.ok(errors.length > 0, "No write failed while the master was failing over");
        for (const error of errors) assert.ok(isClusterUnavailable(error), messageOf(error));
        assert.notEqual(failover.newMaster.port, master.port);
        assert.equal((await harness.masterFor(key)).port, failover.newMaster.port);
        assert.equal(await cluster.get(key), "after");
        assert.equal(await cluster.set("name:{p3}", "still"), "OK");
      },
    );

    await t.step("with every node down a command fails within a bounded time", async () => {
      await harness.stop();
      const started = Date.now();
      const [error] = await settle("write with every node down", cluster.set("name:{p1}", "x"));
      console.log(`every node down: failed in ${Date.now() - started} ms: ${messageOf(error)}`);
      assert.ok(error instanceof Error, "The write succeeded with every node down");
      assert.ok(isClusterUnavailable(error), messageOf(error));
      const [later] = await settle("second write", cluster.get("name:{p1}"));
      assert.ok(isClusterUnavailable(later), messageOf(later));
    });
  } finally {
    await closeCluster(cluster);
  }
});
