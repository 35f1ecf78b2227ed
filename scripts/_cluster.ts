/**
 * Private helper: runs a local Redis Cluster (masters plus replicas) as child
 * redis-server processes, one directory per node, for tests and
 * `deno task dev:cluster`. Nodes run in the foreground as children, so a
 * killed node is really gone once its status resolves (daemonized ones linger).
 *
 * @module
 */

import { join } from "node:path";
import {
  createCluster,
  HOST,
  LocalClusterError,
  nodeCommand,
  type NodeLine,
  parseClusterNodesReply,
  pickClusterPorts,
  sleep,
} from "./_cluster_admin.ts";

export { LocalClusterError } from "./_cluster_admin.ts";

/** A node of a {@linkcode LocalCluster}. */
export interface LocalClusterNode {
  /** Address it listens on. */
  host: string;
  /** Port it listens on; its cluster bus is port + 10000. */
  port: number;
  /** Its role as last seen in CLUSTER NODES. */
  role: "master" | "replica";
  /** Its cluster node id. */
  id: string;
  /** Its data directory (nodes.conf, log). */
  dir: string;
  /** False once killed or stopped. */
  alive: boolean;
}

/** What {@linkcode LocalCluster.waitForFailover} saw. */
export interface FailoverResult {
  /** The replica that took over the killed master's slots. */
  newMaster: LocalClusterNode;
  /** Time from the kill until every live node reported cluster_state:ok again, in ms. */
  elapsedMs: number;
}

/** Options of {@linkcode LocalCluster.waitForFailover}. */
export interface WaitForFailoverOptions {
  /**
   * Longest wait for the promotion, in ms.
   * @default {20000}
   */
  timeoutMs?: number;
}

/** A running local cluster; call `stop()` when done. */
export interface LocalCluster {
  /** Every node, masters first as created; roles and liveness are kept up to date. */
  readonly nodes: LocalClusterNode[];
  /** `host:port,...` of every node, the REDIS_CLUSTER_NODES format. */
  readonly seeds: string;
  /** Milliseconds from the first spawn until every node was ready. */
  readonly startupMs: number;
  /** The live master serving `key` (CLUSTER KEYSLOT, then CLUSTER NODES). */
  masterFor(key: string): Promise<LocalClusterNode>;
  /** Kills the master on `port` with SIGKILL and waits until its process is gone. */
  killMaster(port: number): Promise<void>;
  /** Waits until a replica of the master killed on `port` serves its slots and the cluster is ok. */
  waitForFailover(port: number, options?: WaitForFailoverOptions): Promise<FailoverResult>;
  /** Kills every node; safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startLocalCluster}. */
export interface LocalClusterOptions {
  /**
   * Number of masters (the hash slots are split between them).
   * @default {3}
   */
  masters?: number;
  /**
   * Replicas per master.
   * @default {1}
   */
  replicasPerMaster?: number;
  /**
   * First port of a consecutive range; undefined picks free ports at random.
   * @default {undefined}
   */
  basePort?: number;
  /**
   * cluster-node-timeout: how long a master may be silent before failover, in ms.
   * @default {2000}
   */
  nodeTimeoutMs?: number;
  /**
   * Password every node requires (requirepass, masterauth).
   * @default {undefined}
   */
  password?: string;
  /**
   * Longest wait for the cluster to come up, in ms.
   * @default {30000}
   */
  readyTimeoutMs?: number;
}

function requireInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot start local cluster as '${name}' must be an integer >= ${min}: current value is ${value}`,
    );
  }
}

/** Starts a local cluster with one directory per node under `dir` (created when missing). */
export async function startLocalCluster(
  dir: string,
  options: LocalClusterOptions = {},
): Promise<LocalCluster> {
  const {
    masters = 3,
    replicasPerMaster = 1,
    basePort,
    nodeTimeoutMs = 2000,
    password,
    readyTimeoutMs = 30000,
  } = options;
  requireInteger("masters", masters, 3);
  requireInteger("replicasPerMaster", replicasPerMaster, 0);
  requireInteger("nodeTimeoutMs", nodeTimeoutMs, 100);
  const started = Date.now();
  const ports = pickClusterPorts(masters * (1 + replicasPerMaster), basePort);
  const processes = new Map<number, Deno.ChildProcess>();
  const exited = new Set<number>();
  const stopping = new Set<number>();
  const nodes: LocalClusterNode[] = [];
  const killed = new Map<number, { at: number; id: string; slot: number }>();

  async function killNode(port: number): Promise<void> {
    const process = processes.get(port);
    if (!process) return;
    stopping.add(port);
    try {
      process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await process.status;
    processes.delete(port);
    const node = nodes.find((node) => node.port === port);
    if (node) node.alive = false;
  }

  async function stop(): Promise<void> {
    await Promise.all([...processes.keys()].map(killNode));
  }

  function livePorts(): number[] {
    return ports.filter((port) => processes.has(port) && !exited.has(port));
  }

  function nodeView(port: number): Promise<NodeLine[]> {
    return nodeCommand(port, ["CLUSTER", "NODES"], password).then((reply) =>
      parseClusterNodesReply(String(reply))
    );
  }

  /** CLUSTER NODES as one live node sees it; roles can lag there (gossip), slots do not. */
  async function clusterNodes(): Promise<NodeLine[]> {
    let lastError: unknown;
    for (const port of livePorts()) {
      try {
        return await nodeView(port);
      } catch (error) {
        lastError = error;
      }
    }
    throw new LocalClusterError("Cannot read CLUSTER NODES from any live node", {
      cause: lastError,
    });
  }

  /** Every live node says cluster_state:ok, knows its role, and each replica's link is up. */
  async function allReady(expectedReplicas?: number): Promise<boolean> {
    let replicas = 0;
    for (const node of nodes.filter((node) => node.alive)) {
      try {
        const info = String(await nodeCommand(node.port, ["CLUSTER", "INFO"], password));
        if (!info.includes("cluster_state:ok")) return false;
        // A node's own line is the authority on its role; others learn it by gossip.
        const lines = await nodeView(node.port);
        const myself = lines.find((line) => line.flags.includes("myself"));
        if (!myself) return false;
        const seenReplicas = lines.filter((line) => line.flags.includes("slave")).length;
        if (expectedReplicas !== undefined && seenReplicas !== expectedReplicas) return false;
        node.id = myself.id;
        node.role = myself.flags.includes("master") ? "master" : "replica";
        if (node.role === "replica") {
          replicas++;
          const replication = String(
            await nodeCommand(node.port, ["INFO", "replication"], password),
          );
          if (!replication.includes("master_link_status:up")) return false;
        }
      } catch {
        return false;
      }
    }
    return expectedReplicas === undefined || replicas === expectedReplicas;
  }

  async function logTail(port: number): Promise<string> {
    const text = await Deno.readTextFile(join(dir, String(port), "redis.log")).catch(() => "");
    return text.trim().split("\n").slice(-5).join(" | ");
  }

  async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const port of exited) {
        if (!stopping.has(port)) {
          throw new LocalClusterError(
            `Cannot ${what} as redis-server on port ${port} exited: ${await logTail(port)}`,
          );
        }
      }
      if (await check()) return;
      await sleep(50);
    }
    throw new LocalClusterError(`Cannot ${what} within ${timeoutMs} ms`);
  }

  try {
    for (const port of ports) {
      const nodeDir = join(dir, String(port));
      await Deno.mkdir(nodeDir, { recursive: true });
      const settings: Record<string, string | number> = {
        port,
        bind: HOST,
        daemonize: "no",
        "cluster-enabled": "yes",
        "cluster-node-timeout": nodeTimeoutMs,
        "cluster-config-file": `nodes-${port}.conf`,
        dir: nodeDir,
        save: "",
        appendonly: "no",
        // Without it a replica waits 5 s before its first sync.
        "repl-diskless-sync-delay": 0,
        logfile: join(nodeDir, "redis.log"),
        ...(password === undefined ? {} : { requirepass: password, masterauth: password }),
      };
      const args = Object.entries(settings).flatMap((entry) => [`--${entry[0]}`, String(entry[1])]);
      const process = new Deno.Command("redis-server", { args, stdout: "null", stderr: "null" })
        .spawn();
      processes.set(port, process);
      process.status.then(() => exited.add(port));
      nodes.push({ host: HOST, port, role: "master", id: "", dir: nodeDir, alive: true });
    }
    await waitUntil("start redis-server", async function pingAll() {
      const pings = await Promise.all(
        ports.map((port) => nodeCommand(port, ["PING"], password).catch(() => undefined)),
      );
      return pings.every((reply) => reply === "PONG");
    }, 10000);
    await createCluster(ports, replicasPerMaster, password);
    await waitUntil(
      "bring the cluster up (cluster_state:ok, replicas linked)",
      () => allReady(masters * replicasPerMaster),
      readyTimeoutMs,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  nodes.sort((a, b) => (a.role === b.role ? a.port - b.port : a.role === "master" ? -1 : 1));

  return {
    nodes,
    seeds: ports.map((port) => `${HOST}:${port}`).join(","),
    startupMs: Date.now() - started,
    async masterFor(key: string): Promise<LocalClusterNode> {
      const slot = Number(await nodeCommand(livePorts()[0], ["CLUSTER", "KEYSLOT", key], password));
      const lines = await clusterNodes();
      const owner = lines.find((line) =>
        line.flags.includes("master") && !line.flags.includes("fail") &&
        line.slots.some(([from, to]) => slot >= from && slot <= to)
      );
      const node = nodes.find((node) => node.port === owner?.port && node.alive);
      if (!node) {
        throw new LocalClusterError(`Cannot find a live master for key '${key}' (slot ${slot})`);
      }
      return node;
    },
    async killMaster(port: number): Promise<void> {
      if (!processes.has(port)) {
        throw new LocalClusterError(`Cannot kill master on port ${port}: no live node there`);
      }
      const line = (await nodeView(port)).find((line) => line.flags.includes("myself"));
      if (!line?.flags.includes("master")) {
        throw new LocalClusterError(`Cannot kill master on port ${port}: no live master there`);
      }
      if (line.slots.length === 0) {
        throw new LocalClusterError(`Cannot kill master on port ${port}: it serves no slots`);
      }
      await killNode(port);
      killed.set(port, { at: Date.now(), id: line.id, slot: line.slots[0][0] });
    },
    async waitForFailover(port: number, options: WaitForFailoverOptions = {}) {
      const { timeoutMs = 20000 } = options;
      const kill = killed.get(port);
      if (!kill) {
        throw new LocalClusterError(`Cannot wait for failover of port ${port}: not killed`);
      }
      let newMaster: LocalClusterNode | undefined;
      await waitUntil(`fail over the master on port ${port}`, async function promoted() {
        let lines: NodeLine[];
        try {
          lines = await clusterNodes();
        } catch {
          return false;
        }
        const owner = lines.find((line) =>
          line.id !== kill.id && line.flags.includes("master") && !line.flags.includes("fail") &&
          line.slots.some(([from, to]) => kill.slot >= from && kill.slot <= to)
        );
        newMaster = nodes.find((node) => node.port === owner?.port && node.alive);
        return newMaster !== undefined && await allReady();
      }, timeoutMs);
      return { newMaster: newMaster!, elapsedMs: Date.now() - kill.at };
    },
    stop,
  };
}
