/**
 * Redis Cluster client pieces, independent of the queue engine: parsing the
 * seed list, an ioredis `Cluster` that fails fast instead of hanging while
 * nodes are down or failing over, one pipeline per node for commands whose
 * keys live on different masters, and telling cluster outages from bugs.
 *
 * @module
 */

import { Cluster, Command } from "ioredis";
import { isRedisUnavailable } from "./redis.ts";

/** One seed node of a cluster. */
export interface ClusterSeed {
  /** Host name or address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
}

/** Raised when a cluster seed list (REDIS_CLUSTER_NODES) is malformed. */
export class ClusterNodesError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterNodesError";
  }
}

/**
 * Parses `host:port,host:port` (IPv6 as `[::1]:7000`) into seeds; throws
 * {@linkcode ClusterNodesError} naming the bad entry.
 *
 * @example
 * ```ts
 * parseClusterNodes("127.0.0.1:7000, 127.0.0.1:7001"); // [{ host: "127.0.0.1", port: 7000 }, ...]
 * ```
 */
export function parseClusterNodes(value: string): ClusterSeed[] {
  if (value.trim() === "") {
    throw new ClusterNodesError(
      "Cannot parse cluster nodes as the list is empty: expected host:port,...",
    );
  }
  const seeds: ClusterSeed[] = [];
  for (const raw of value.split(",")) {
    const entry = raw.trim();
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/@\[\]]+)):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) {
      throw new ClusterNodesError(
        `Cannot parse cluster node '${entry}' in '${value}': expected host:port with a port from 1 to 65535`,
      );
    }
    const host = match[1] ?? match[2];
    if (seeds.some((seed) => seed.host === host && seed.port === port)) {
      throw new ClusterNodesError(
        `Cannot parse cluster nodes as '${entry}' appears twice in '${value}'`,
      );
    }
    seeds.push({ host, port });
  }
  return seeds;
}

/** Options of {@linkcode createClusterClient}. */
export interface CreateClusterClientOptions {
  /**
   * ACL user name of every node.
   * @default {undefined}
   */
  username?: string;
  /**
   * Password of every node.
   * @default {undefined}
   */
  password?: string;
  /**
   * Time a command may take on a node before it fails, in ms; 0 for blocking readers.
   * @default {1500}
   */
  commandTimeoutMs?: number;
  /**
   * Reconnects to the whole cluster after every node was lost, before the
   * client ends and fails everything queued ("None of startup nodes is available").
   * @default {5}
   */
  reconnectAttempts?: number;
  /**
   * Client name shown by CLIENT LIST on every node.
   * @default {"tickstream"}
   */
  name?: string;
}

/**
 * Creates an ioredis `Cluster` that fails fast: a command during a failover
 * fails after at most 16 redirections 100 ms apart ("Too many Cluster
 * redirections"), and with every node down the client retries the seeds
 * `reconnectAttempts` times (about 1.5 s by default), then ends and rejects
 * what it queued. An ended client stays ended: {@linkcode getClusterClient}
 * makes a new one on the next call.
 *
 * @example
 * ```ts
 * const cluster = createClusterClient("127.0.0.1:7000,127.0.0.1:7001");
 * await cluster.set("quote:{AAPL}", "1");
 * await closeCluster(cluster);
 * ```
 */
export function createClusterClient(
  seeds: string | ClusterSeed[],
  options: CreateClusterClientOptions = {},
): Cluster {
  const { username, password, commandTimeoutMs = 1500, reconnectAttempts = 5 } = options;
  const { name = "tickstream" } = options;
  const limits = { commandTimeoutMs, reconnectAttempts };
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(
        `Cannot create Redis Cluster client as '${field}' must be an integer >= 0: current value is ${value}`,
      );
    }
  }
  const nodes = typeof seeds === "string" ? parseClusterNodes(seeds) : seeds;
  if (nodes.length === 0) {
    throw new ClusterNodesError("Cannot create Redis Cluster client without seed nodes");
  }
  const cluster = new Cluster(nodes, {
    redisOptions: {
      username,
      password,
      connectionName: name,
      connectTimeout: 1500,
      commandTimeout: commandTimeoutMs === 0 ? undefined : commandTimeoutMs,
      // A node connection never reconnects by itself (ioredis drops it from
      // the pool), so one retry is all a request can get there anyway.
      maxRetriesPerRequest: 1,
    },
    // Queued commands run once the slots are known; bounded reconnects make
    // sure the queue is flushed with an error instead of waiting forever.
    enableOfflineQueue: true,
    clusterRetryStrategy(times: number) {
      return times > reconnectAttempts ? null : Math.min(times * 100, 500);
    },
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 1000,
    enableAutoPipelining: false,
  });
  // Without listeners ioredis prints every failed node connection as unhandled.
  cluster.on("error", function onClusterError() {});
  cluster.on("node error", function onNodeError() {});
  return cluster;
}

const clusters = new Map<string, Cluster>();

/** Returns this isolate's shared client for `seeds`, creating it on first use or after it ended. */
export function getClusterClient(seeds: string, options: CreateClusterClientOptions = {}): Cluster {
  const key = JSON.stringify([seeds, options]);
  let cluster = clusters.get(key);
  if (cluster === undefined || cluster.status === "end") {
    cluster = createClusterClient(seeds, options);
    clusters.set(key, cluster);
  }
  return cluster;
}

/** Options of {@linkcode closeCluster}. */
export interface CloseClusterOptions {
  /**
   * Longest wait for QUIT on every node before the connections are cut, in ms.
   * @default {1000}
   */
  timeoutMs?: number;
}

/** Closes a cluster client: QUIT when ready (waiting for "end" at most `timeoutMs`), else disconnect. */
export async function closeCluster(
  cluster: Cluster,
  options: CloseClusterOptions = {},
): Promise<void> {
  const { timeoutMs = 1000 } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(
      `Cannot close Redis Cluster client as 'timeoutMs' must be a number >= 0: current value is ${timeoutMs}`,
    );
  }
  for (const [key, client] of clusters) if (client === cluster) clusters.delete(key);
  if (cluster.status === "end") return;
  if (cluster.status === "ready") {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = new Promise<void>((resolve) => cluster.once("end", resolve));
    try {
      // quit() resolves while the sockets are still closing: wait for "end".
      await Promise.race([
        cluster.quit().then(() => ended),
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
    } catch {
      // A node went away during QUIT: disconnect below still cleans up.
    } finally {
      clearTimeout(timer);
    }
    if ((cluster.status as string) === "end") return;
  }
  cluster.disconnect();
}

/** One command for {@linkcode execPerNode}: its name, then its arguments. */
export type ClusterCommand = [name: string, ...args: (string | number | Buffer)[]];

/** What one command of {@linkcode execPerNode} gave: its error or its reply, as `pipeline.exec()`. */
export type ClusterCommandResult = [error: Error | null, reply: unknown];

/**
 * Runs `commands` as one pipeline per master (grouped by the hash slot of
 * each command's first key; a keyless command such as WAIT joins the command
 * before it) in parallel and returns their results in the original order; a
 * pipeline that fails as a whole gives its error to each of its commands.
 * Order holds within a node, not across nodes. Needed because ioredis refuses
 * a pipeline whose keys live on different masters.
 *
 * @example
 * ```ts
 * import type { Cluster } from "ioredis";
 * declare const cluster: Cluster;
 * const results = await execPerNode(cluster, [["SET", "a:{p0}", "1"], ["GET", "a:{p3}"]]);
 * // [[null, "OK"], [null, null]]
 * ```
 */
export async function execPerNode(
  cluster: Cluster,
  commands: ClusterCommand[],
): Promise<ClusterCommandResult[]> {
  if (commands.length === 0) return [];
  if (cluster.status !== "ready") await whenReady(cluster);
  const groups = new Map<string, number[]>();
  let previous = "keyless";
  commands.forEach(function group([name, ...args], index) {
    const slot = new Command(name.toLowerCase(), args).getSlot();
    // A keyless command (WAIT) goes with the command before it, so WAIT
    // counts the replicas of the node that took that write.
    const owner = slot === null ? previous : cluster.slots[slot]?.join(";") ?? `slot:${slot}`;
    groups.set(owner, [...(groups.get(owner) ?? []), index]);
    previous = owner;
  });
  const results = new Array<ClusterCommandResult>(commands.length);
  await Promise.all([...groups.values()].map(async function runGroup(indexes) {
    // ioredis pipelines know commands by their lower-case method names.
    const pipeline = cluster.pipeline(
      indexes.map((index) => [commands[index][0].toLowerCase(), ...commands[index].slice(1)]),
    );
    let replies: ClusterCommandResult[];
    try {
      replies = ((await pipeline.exec()) ?? []) as ClusterCommandResult[];
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      replies = indexes.map(() => [failure, undefined]);
    }
    indexes.forEach((index, position) => {
      results[index] = replies[position] ?? [new Error("Pipeline returned no reply"), undefined];
    });
  }));
  return results;
}

/** Resolves once the cluster is ready (slots known); rejects once it ends. */
function whenReady(cluster: Cluster): Promise<void> {
  return new Promise((resolve, reject) => {
    function onReady() {
      cluster.off("end", onEnd);
      resolve();
    }
    function onEnd() {
      cluster.off("ready", onReady);
      reject(new Error("Cluster is ended."));
    }
    if (cluster.status === "end") return onEnd();
    cluster.once("ready", onReady);
    cluster.once("end", onEnd);
    // A lazyConnect client waits for its first command; connect() makes it start.
    if (cluster.status === "wait") cluster.connect().catch(() => {});
  });
}

const CLUSTER_UNAVAILABLE =
  /^(CLUSTERDOWN|MOVED \d+|ASK \d+|TRYAGAIN)|Too many Cluster redirections|Connection is closed|Command aborted due to connection close|None of startup nodes is available|Cluster is ended|Cluster isn't ready|Failed to refresh slots cache/;

/**
 * True when `error` means the cluster cannot serve the command right now (a
 * failover, every node down, a redirection that did not settle): map it to
 * 503 with Retry-After, like {@linkcode isRedisUnavailable}. CROSSSLOT and
 * other command errors are bugs and stay false.
 *
 * @example
 * ```ts
 * isClusterUnavailable(new Error("CLUSTERDOWN The cluster is down")); // true
 * isClusterUnavailable(new Error("CROSSSLOT Keys in request don't hash to the same slot")); // false
 * ```
 */
export function isClusterUnavailable(error: unknown): boolean {
  const message = error instanceof Error ? error.message : "";
  return CLUSTER_UNAVAILABLE.test(message) || isRedisUnavailable(error);
}

/** Closes every cluster client this isolate made through {@linkcode getClusterClient}. */
export async function closeAllClusters(): Promise<void> {
  const all = [...clusters.values()];
  clusters.clear();
  await Promise.all(all.map((cluster) => closeCluster(cluster).catch(() => {})));
}

/**
 * The user and password of `redisUrl` (REDIS_URL), which every cluster node
 * shares; empty when the URL has none or cannot be read.
 *
 * @example
 * ```ts
 * clusterCredentials("redis://app:secret@127.0.0.1:6379"); // { username: "app", password: "secret" }
 * ```
 */
export function clusterCredentials(
  redisUrl: string,
): Pick<CreateClusterClientOptions, "username" | "password"> {
  try {
    const url = new URL(redisUrl);
    return {
      username: url.username === "" ? undefined : decodeURIComponent(url.username),
      password: url.password === "" ? undefined : decodeURIComponent(url.password),
    };
  } catch {
    return {};
  }
}
