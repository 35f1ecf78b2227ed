/**
 * `deno task dev:cluster`: runs a local Redis Cluster of 3 masters and 3
 * replicas (ports 7000-7005 by default, bus ports 17000-17005) with one
 * directory per node under ./data/cluster, prints the REDIS_CLUSTER_NODES
 * line to use and stops the nodes on Ctrl-C. The cluster is created afresh
 * on every start and keeps nothing on disk (save "", appendonly no).
 *
 * Options: `--dir <path>` (default ./data/cluster), `--base-port <n>` (default 7000).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { LocalClusterError, startLocalCluster } from "./_cluster.ts";
import { pickClusterPorts } from "./_cluster_admin.ts";

const NODES = 6;

async function main(args: string[]): Promise<number> {
  let dir: string;
  let basePort: number;
  try {
    const { values } = parseArgs({
      args,
      options: { dir: { type: "string" }, "base-port": { type: "string" } },
      strict: true,
      allowPositionals: false,
    });
    dir = resolve(values.dir ?? "data/cluster");
    const port = values["base-port"] ?? "7000";
    basePort = Number(port);
    if (!/^\d+$/.test(port) || basePort < 1024 || basePort + NODES - 1 + 10000 > 65535) {
      throw new LocalClusterError(
        `Cannot use --base-port ${port}: it must be an integer from 1024 to ${
          65535 - 10000 - NODES + 1
        }`,
      );
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error("Usage: deno task dev:cluster [--dir data/cluster] [--base-port 7000]");
    return 2;
  }
  try {
    // Checked before the wipe below, so a running cluster keeps its directories.
    pickClusterPorts(NODES, basePort);
  } catch (error) {
    if (!(error instanceof LocalClusterError)) throw error;
    console.error(`${error.message}: pick other ports with --base-port <n>`);
    return 1;
  }
  // A node directory from an earlier run holds its old nodes-<port>.conf,
  // which would make `redis-cli --cluster create` refuse the node.
  for (let i = 0; i < NODES; i++) {
    await Deno.remove(join(dir, String(basePort + i)), { recursive: true }).catch(() => {});
  }
  console.log(`Starting a Redis Cluster of 3 masters + 3 replicas in ${dir}`);
  let cluster;
  try {
    cluster = await startLocalCluster(dir, { basePort });
  } catch (error) {
    if (!(error instanceof LocalClusterError)) throw error;
    console.error(error.message);
    return 1;
  }
  for (const node of cluster.nodes) {
    console.log(`  ${node.role.padEnd(7)} ${node.host}:${node.port}  (log: ${node.dir}/redis.log)`);
  }
  console.log(`Up in ${cluster.startupMs} ms. Use it with:\n`);
  console.log(`  REDIS_CLUSTER_NODES=${cluster.seeds}\n`);
  console.log("Ctrl-C stops the nodes.");
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await stopped;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  await cluster.stop();
  console.log("Cluster stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
