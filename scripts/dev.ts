/**
 * `deno task dev`: runs the whole system on a laptop. Uses the Redis at
 * REDIS_URL; when nothing answers there and `redis-server` is on PATH, starts
 * one for the session and stops it on exit. Then serves main.ts with --watch.
 * `deno task dev --cluster` starts a local Redis Cluster of 3 masters and 3
 * replicas instead (in ./data/cluster) and runs with STREAM_PARTITIONS=4
 * unless set, for trying the scaled-out setup.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { type Config, ConfigError, loadConfig } from "../shared/config.ts";
import { describeError, redactUrl } from "../shared/redact.ts";
import { closeRedis, createRedis, redisProblem } from "../shared/redis.ts";
import { startLocalCluster } from "./_cluster.ts";
import { pickClusterPorts } from "./_cluster_admin.ts";

/** What a PING at a Redis URL found: it answers, it wants (other) credentials, or nothing answers. */
export type RedisProbe = "up" | "credentials" | "down";

/** Pings the Redis at `url` within about two seconds and says what answered. */
export async function probeRedis(url: string): Promise<RedisProbe> {
  const probe = createRedis(url);
  try {
    return (await probe.ping()) === "PONG" ? "up" : "down";
  } catch (error) {
    return redisProblem(error) === "credentials" ? "credentials" : "down";
  } finally {
    await closeRedis(probe);
  }
}

/** True when a Redis answers PING at `url` within about two seconds. */
export async function redisAnswers(url: string): Promise<boolean> {
  return (await probeRedis(url)) === "up";
}

function onPath(command: string): boolean {
  try {
    const { success } = new Deno.Command("sh", {
      args: ["-c", `command -v ${command}`],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success;
  } catch {
    return false;
  }
}

/** Starts the local cluster of `deno task dev --cluster` and the settings that use it. */
async function startDevCluster(): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  const dir = resolve("data/cluster");
  const ports = pickClusterPorts(6, 7000);
  // Node directories of an earlier run hold nodes-<port>.conf files that `--cluster create` refuses.
  for (const port of ports) {
    await Deno.remove(`${dir}/${port}`, { recursive: true }).catch(() => {});
  }
  console.log(`Starting a Redis Cluster of 3 masters + 3 replicas in ${dir}`);
  const cluster = await startLocalCluster(dir, { basePort: 7000 });
  const partitions = Deno.env.get("STREAM_PARTITIONS") ?? "4";
  console.log(`Cluster up in ${cluster.startupMs} ms: REDIS_CLUSTER_NODES=${cluster.seeds}`);
  return {
    env: { REDIS_CLUSTER_NODES: cluster.seeds, STREAM_PARTITIONS: partitions },
    stop: () => cluster.stop(),
  };
}

async function main(args: string[] = []): Promise<number> {
  const onCluster = args.includes("--cluster");
  const devCluster = onCluster ? await startDevCluster() : undefined;
  try {
    return await runDev(devCluster?.env ?? {});
  } finally {
    await devCluster?.stop();
  }
}

async function runDev(extraEnv: Record<string, string>): Promise<number> {
  let config: Config;
  try {
    config = loadConfig({ ...Deno.env.toObject(), ...extraEnv });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.problems) console.error(line);
    return 2;
  }
  const url = new URL(config.redisUrl);
  let redisServer: Deno.ChildProcess | undefined;
  // On a cluster the single Redis of REDIS_URL is not used.
  const found = config.redisClusterNodes === undefined ? await probeRedis(config.redisUrl) : "up";
  if (found === "credentials") {
    console.error(
      `The Redis at ${redactUrl(config.redisUrl)} wants a password, or rejected the one given ` +
        `(NOAUTH/WRONGPASS).\nSet REDIS_URL with its credentials, for example ` +
        `REDIS_URL=redis://:PASSWORD@${url.host} or redis://USER:PASSWORD@${url.host}`,
    );
    return 1;
  }
  if (found === "down") {
    const local = ["127.0.0.1", "localhost", "::1", "[::1]"].includes(url.hostname);
    if (!local || !onPath("redis-server")) {
      console.error(
        `Nothing answers at ${redactUrl(config.redisUrl)}. Start Redis first, for example:\n` +
          `  docker compose up -d redis        (then REDIS_URL=redis://127.0.0.1:6379)\n` +
          `  sudo apt-get install -y redis-server && redis-server --daemonize yes`,
      );
      return 1;
    }
    const port = url.port || "6379";
    // The session's Redis keeps its files beside the quote store (./data by default).
    const dataDir = config.databasePath === ":memory:"
      ? "data"
      : dirname(resolve(config.databasePath));
    await Deno.mkdir(dataDir, { recursive: true });
    console.log(`Starting redis-server on port ${port} for this session (data in ${dataDir})`);
    redisServer = new Deno.Command("redis-server", {
      args: ["--port", port, "--bind", "127.0.0.1", "--dir", dataDir, "--appendonly", "yes"],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    for (let i = 0; i < 50 && !(await redisAnswers(config.redisUrl)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const base = `http://localhost:${config.port}`;
  // The trigger CLI defaults to port 8000; name the URL when the port differs.
  const trigger = config.port === 8000 ? "deno task trigger" : `BASE_URL=${base} deno task trigger`;
  console.log(
    [
      "",
      `tickstream dev server: ${base}/`,
      `  dashboard     ${base}/`,
      `  health        ${base}/health`,
      `  report        ${base}/report`,
      `  first batch   ${trigger} emit --ticks 5`,
      `  then drain    ${trigger} drain all`,
      `  queue state   ${trigger} report`,
      "",
    ].join("\n"),
  );
  const app = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--watch", "main.ts"],
    env: extraEnv,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  let stopping = false;
  function stop(): void {
    if (stopping) return;
    stopping = true;
    // Deno's file watcher only exits on SIGINT; on SIGTERM it waits for the next change.
    try {
      app.kill("SIGINT");
    } catch {
      // Already stopped.
    }
    const forced = setTimeout(() => {
      try {
        app.kill("SIGKILL");
      } catch {
        // Already stopped.
      }
    }, 5000);
    app.status.finally(() => clearTimeout(forced));
  }
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const status = await app.status;
  if (redisServer) {
    redisServer.kill("SIGTERM");
    await redisServer.status;
    console.log("Stopped the session's redis-server");
  }
  return status.code;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`deno task dev failed: ${describeError(error)}`);
    Deno.exit(1);
  }
}
