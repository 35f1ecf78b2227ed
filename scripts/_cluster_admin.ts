/**
 * Private helper of scripts/_cluster.ts: port picking, one-off node commands,
 * CLUSTER NODES parsing and `redis-cli --cluster create`.
 *
 * @module
 */

import { Redis } from "ioredis";

/** Raised when a local cluster cannot be started or does not reach the asked state. */
export class LocalClusterError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LocalClusterError";
  }
}

/** Address every node binds. */
export const HOST = "127.0.0.1";
/** Distance of a node's cluster bus port from its port. */
export const BUS_OFFSET = 10000;

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: HOST, port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Picks `count` ports whose bus ports (port + 10000) are free too. */
export function pickClusterPorts(count: number, basePort?: number): number[] {
  if (basePort !== undefined) {
    const ports = Array.from({ length: count }, (_, i) => basePort + i);
    const taken = ports.filter((port) => !portFree(port) || !portFree(port + BUS_OFFSET));
    if (taken.length > 0) {
      throw new LocalClusterError(
        `Cannot use ports ${ports[0]}-${ports.at(-1)} as ${
          taken.join(", ")
        } or their bus ports (+${BUS_OFFSET}) are taken`,
      );
    }
    return ports;
  }
  // Below the ephemeral range (32768+), so outgoing sockets do not take a bus port.
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 12000);
    if (ports.includes(port) || ports.includes(port + BUS_OFFSET)) continue;
    if (ports.includes(port - BUS_OFFSET)) continue;
    if (portFree(port) && portFree(port + BUS_OFFSET)) ports.push(port);
  }
  if (ports.length < count) {
    throw new LocalClusterError(`Cannot find ${count} free port pairs for a local cluster`);
  }
  return ports;
}

/** Runs one command on one node over a short-lived connection. */
export async function nodeCommand(
  port: number,
  args: string[],
  password?: string,
): Promise<unknown> {
  const node = new Redis({
    host: HOST,
    port,
    password,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  node.on("error", () => {});
  try {
    await node.connect();
    return await node.call(args[0], ...args.slice(1));
  } finally {
    node.disconnect();
  }
}

/** One line of CLUSTER NODES. */
export interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string | undefined;
  slots: [number, number][];
}

/** Parses a CLUSTER NODES reply. */
export function parseClusterNodesReply(reply: string): NodeLine[] {
  return reply.trim().split("\n").filter(Boolean).map(function parseLine(line) {
    const [id, address, flags, masterId, , , , , ...slotFields] = line.trim().split(" ");
    const slots: [number, number][] = [];
    // Importing/migrating markers look like [5-<-id]; they own no slot.
    for (const field of slotFields.filter((field) => !field.startsWith("["))) {
      const [from, to = from] = field.split("-").map(Number);
      slots.push([from, to]);
    }
    return {
      id,
      port: Number(/:(\d+)@/.exec(address)?.[1]),
      flags: flags.split(","),
      masterId: masterId === "-" ? undefined : masterId,
      slots,
    };
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Joins the started nodes on `ports` into one cluster with `redis-cli --cluster create`. */
export async function createCluster(
  ports: number[],
  replicasPerMaster: number,
  password?: string,
): Promise<void> {
  const auth = password === undefined ? [] : ["-a", password, "--no-auth-warning"];
  const addresses = ports.map((port) => `${HOST}:${port}`);
  const create = await new Deno.Command("redis-cli", {
    args: ["--cluster", "create", ...addresses, "--cluster-replicas", String(replicasPerMaster)]
      .concat(["--cluster-yes", ...auth]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const output = decoder.decode(create.stdout) + decoder.decode(create.stderr);
  if (!create.success || !output.includes("All 16384 slots covered")) {
    const tail = output.trim().split("\n").slice(-3).join(" | ");
    throw new LocalClusterError(`Cannot create cluster on ports ${ports.join(",")}: ${tail}`);
  }
}
