/**
 * Test helper: starts a private Redis Cluster (3 masters + 3 replicas by
 * default) on free ports in a temporary directory, so cluster tests can kill
 * masters and watch failovers without touching anything else.
 *
 * @module
 */

import {
  type LocalCluster,
  type LocalClusterOptions,
  startLocalCluster,
} from "../scripts/_cluster.ts";

export type {
  FailoverResult,
  LocalClusterNode,
  WaitForFailoverOptions,
} from "../scripts/_cluster.ts";

/** A cluster owned by a test; `stop()` (or `await using`) kills it and removes its data. */
export interface TestRedisCluster extends LocalCluster, AsyncDisposable {
  /** Temporary directory holding one directory per node. */
  readonly dir: string;
}

/** Options of {@linkcode startRedisCluster}; ports are always picked at random. */
export type StartRedisClusterOptions = Omit<LocalClusterOptions, "basePort">;

/** Starts a private Redis Cluster; call `stop()` in `finally` or bind it with `await using`. */
export async function startRedisCluster(
  options: StartRedisClusterOptions = {},
): Promise<TestRedisCluster> {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-cluster-" });
  let cluster: LocalCluster;
  try {
    cluster = await startLocalCluster(dir, options);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  async function stop(): Promise<void> {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return {
    get nodes() {
      return cluster.nodes;
    },
    seeds: cluster.seeds,
    startupMs: cluster.startupMs,
    dir,
    masterFor: cluster.masterFor,
    killMaster: cluster.killMaster,
    waitForFailover: cluster.waitForFailover,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
