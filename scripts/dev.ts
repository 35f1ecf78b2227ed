/**
 * `deno task dev`: runs the whole system on a laptop. Uses the Redis at
 * REDIS_URL; when nothing answers there and `redis-server` is on PATH, starts
 * one for the session and stops it on exit. Then serves main.ts with --watch.
 *
 * @module
 */

import { loadConfig } from "../shared/config.ts";
import { closeRedis, createRedis } from "../shared/redis.ts";

/** True when a Redis answers PING at `url` within about two seconds. */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = createRedis(url);
  try {
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    await closeRedis(probe);
  }
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

async function main(): Promise<number> {
  const config = loadConfig();
  const url = new URL(config.redisUrl);
  let redisServer: Deno.ChildProcess | undefined;
  if (!(await redisAnswers(config.redisUrl))) {
    const local = ["127.0.0.1", "localhost", "::1", "[::1]"].includes(url.hostname);
    if (!local || !onPath("redis-server")) {
      console.error(
        `Nothing answers at ${config.redisUrl}. Start Redis first, for example:\n` +
          `  docker compose up -d redis        (then REDIS_URL=redis://127.0.0.1:6379)\n` +
          `  sudo apt-get install -y redis-server && redis-server --daemonize yes`,
      );
      return 1;
    }
    const port = url.port || "6379";
    await Deno.mkdir("data", { recursive: true });
    console.log(`Starting redis-server on port ${port} for this session (data in ./data)`);
    redisServer = new Deno.Command("redis-server", {
      args: ["--port", port, "--bind", "127.0.0.1", "--dir", "data", "--appendonly", "yes"],
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

if (import.meta.main) Deno.exit(await main());
