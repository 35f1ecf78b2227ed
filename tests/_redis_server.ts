/**
 * Test helper: starts a private redis-server on a free port, so tests are
 * isolated from any Redis already running and can kill and restart it.
 *
 * @module
 */

import { Redis } from "ioredis";
import { closeRedis, createRedis } from "../shared/redis.ts";

/** A redis-server process owned by a test. */
export interface TestRedis {
  /** Port it listens on. */
  port: number;
  /** redis:// URL of it. */
  url: string;
  /** Data directory (for appendonly files). */
  dir: string;
  /** A client for assertions, created on first use. */
  client(): Redis;
  /** Kills the server with SIGKILL (simulates an outage). */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same data directory. */
  restart(): Promise<void>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
  /** Deletes every key (between tests in one file). */
  flush(): Promise<void>;
}

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Persist every write (appendonly yes, appendfsync always), for outage tests.
   * @default {false}
   */
  durable?: boolean;
  /**
   * Password the server requires (requirepass); the URL carries it.
   * @default {undefined}
   */
  password?: string;
}

/** Returns a TCP port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitForPing(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const probe = createRedis(url);
    try {
      await probe.ping();
      await closeRedis(probe);
      return;
    } catch (error) {
      lastError = error;
      probe.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`Cannot reach test redis-server at ${url}`, { cause: lastError });
}

/** Starts a private redis-server; call `stop()` in `finally`. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-redis-" });
  const auth = options.password === undefined ? "" : `:${options.password}@`;
  const url = `redis://${auth}127.0.0.1:${port}`;
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    options.durable ? "yes" : "no",
    "--appendfsync",
    "always",
    "--loglevel",
    "warning",
    ...(options.password === undefined ? [] : ["--requirepass", options.password]),
  ];
  let process: Deno.ChildProcess | undefined;
  let client: Redis | undefined;
  async function spawn(): Promise<void> {
    process = new Deno.Command("redis-server", { args, stdout: "null", stderr: "null" }).spawn();
    await waitForPing(url, 10000);
  }
  async function kill(): Promise<void> {
    if (!process) return;
    try {
      process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await process.status;
    process = undefined;
  }
  await spawn();
  function getClient(): Redis {
    client ??= createRedis(url);
    return client;
  }
  return {
    port,
    url,
    dir,
    client: getClient,
    kill,
    restart: spawn,
    async stop() {
      if (client) await closeRedis(client);
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    async flush() {
      await getClient().flushall();
    },
  };
}
