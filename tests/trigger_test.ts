import assert from "node:assert/strict";
import { closeLive } from "../functions/live.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { COMMANDS } from "../scripts/trigger.ts";
import { freePort, startRedis } from "./_redis_server.ts";
import { createSiteApp, serve, siteConfig, siteDeps } from "./_site.ts";
import { GROUPS } from "../shared/groups/registry.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TOKEN = "trigger-test-token";

/** What one run of the CLI printed, and how it exited. */
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A scripts/trigger.ts ...args` as a separate process, as people run it. */
async function trigger(args: string[], env: Record<string, string>): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/trigger.ts", ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

function expect(run: Run, code: number, label: string): Run {
  assert.equal(run.code, code, `${label}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  return run;
}

Deno.test("every trigger command works against a real app server and exits non-zero on every failure", async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-trigger-" });
  const config = siteConfig(redis.url, dir, { FUNCTIONS_TOKEN: TOKEN, MAX_DELIVERIES: "1" });
  const store = createQuoteStore(config);
  resetGroupCache();
  const server = serve(
    createSiteApp(siteDeps(config, { redis: redis.client(), quoteStore: store })),
  );
  const env = { BASE_URL: server.url, FUNCTIONS_TOKEN: TOKEN, PATH: Deno.env.get("PATH") ?? "" };
  try {
    // Help: every command, every group and the settings it reads.
    const help = expect(await trigger(["--help"], env), 0, "--help");
    for (const command of COMMANDS) assert.ok(help.stdout.includes(command.usage), command.usage);
    for (const group of GROUP_NAMES) assert.ok(help.stdout.includes(group), group);
    assert.match(help.stdout, /BASE_URL/);
    assert.match(help.stdout, /FUNCTIONS_TOKEN/);
    assert.equal(expect(await trigger(["help"], env), 0, "help").stdout, help.stdout);

    // Command lines that cannot run: exit 2 with the reason.
    expect(await trigger([], env), 2, "no command");
    assert.match(expect(await trigger(["explode"], env), 2, "explode").stderr, /Unknown command/);
    assert.match(
      expect(await trigger(["emit", "--ticks", "x"], env), 2, "--ticks x").stderr,
      /--ticks must be an integer/,
    );
    expect(await trigger(["emit", "--bogus"], env), 2, "unknown option");
    expect(await trigger(["drain"], env), 2, "drain without a group");
    expect(await trigger(["replay"], env), 2, "replay without a group");

    assert.match(expect(await trigger(["health"], env), 0, "health").stdout, /Healthy.*Redis up/);

    const emit = expect(await trigger(["emit", "--ticks", "5"], env), 0, "emit");
    assert.match(emit.stdout, /^Emitted 40 quotes to stock_quotes: \d+-\d+ \.\. \d+-\d+\n$/);
    const keyed = ["emit", "--ticks", "2", "--symbols", "AAPL,MSFT", "--key", "k-1"];
    const once = expect(await trigger(keyed, env), 0, "emit with a key");
    assert.match(once.stdout, /Emitted 4 quotes/);
    assert.equal(expect(await trigger(keyed, env), 0, "repeat").stdout, once.stdout);

    // The server refuses: exit 1 with the server's reason.
    const refused = expect(await trigger(["emit", "--ticks", "5000"], env), 1, "too many ticks");
    assert.match(refused.stderr, /POST \/emit-quotes failed: 400 Field "ticks"/);

    const before = expect(await trigger(["report"], env), 0, "report");
    assert.match(before.stdout, /Stream stock_quotes: 44 entries/);
    assert.match(before.stdout, /group +lag +pending +oldest age +dead +consumers +state/);
    for (const group of GROUP_NAMES) {
      assert.match(before.stdout, new RegExp(`${group} +44 +0 +- +0 +0 +behind`));
    }

    const one = expect(await trigger(["drain", "price-alerts", "--count", "10"], env), 0, "drain");
    assert.match(one.stdout, /price-alerts +10 +10 +0 +0 +\d+ +34 +yes/);
    const all = expect(await trigger(["drain", "all", "--budget", "3000"], env), 0, "drain all");
    for (const group of GROUP_NAMES) assert.match(all.stdout, new RegExp(`${group} .* no `));
    assert.match(
      expect(await trigger(["drain", "nope"], env), 1, "unknown group").stderr,
      /POST \/drain\/nope failed: 404 Unknown consumer group: "nope"/,
    );

    // --json prints the server's answer for scripts.
    const json = expect(await trigger(["report", "--json"], env), 0, "report --json");
    const report = JSON.parse(json.stdout);
    assert.deepEqual(
      report.groups.map((g: { name: string }) => g.name).sort(),
      [...GROUP_NAMES].sort(),
    );
    for (const g of report.groups) assert.equal(g.lag, 0);
    const after = expect(await trigger(["report"], env), 0, "report after drains");
    for (const group of GROUP_NAMES) {
      assert.match(after.stdout, new RegExp(`${group} +0 +0 +- +0 +[12] +caught up`));
    }

    // Dead letters: none, then one poison entry, listed, replayed (it fails again).
    assert.match(
      expect(await trigger(["dead-letters"], env), 0, "dead-letters").stdout,
      /No dead letters/,
    );
    await redis.client().xadd("stock_quotes", "*", "symbol", "BAD", "price", "x");
    expect(await trigger(["drain", "price-alerts"], env), 0, "drain the poison entry");
    const letters = expect(
      await trigger(["dead-letters", "--group", "price-alerts", "--limit", "5"], env),
      0,
      "dead-letters --group",
    );
    assert.match(letters.stdout, /price-alerts +\d+-\d+ +1 .*QuoteDecodeError/);
    const listed = JSON.parse(
      expect(await trigger(["dead-letters", "--json"], env), 0, "dead-letters --json").stdout,
    );
    assert.equal(listed.deadLetters.length, 1);
    const replay = expect(
      await trigger(["replay", "price-alerts", "--ids", listed.deadLetters[0].id], env),
      0,
      "replay",
    );
    assert.match(replay.stdout, /Replayed price-alerts: 1 attempted, 0 succeeded, 1 failed/);
    expect(await trigger(["replay", "nope"], env), 1, "replay of an unknown group");

    // Without the token, or without a server: exit 1.
    const { FUNCTIONS_TOKEN: _, ...noToken } = env;
    assert.match(
      expect(await trigger(["report"], noToken), 1, "no token").stderr,
      /GET \/report failed: 401/,
    );
    const gone = { ...env, BASE_URL: `http://127.0.0.1:${freePort()}` };
    assert.match(expect(await trigger(["health"], gone), 1, "no server").stderr, /cannot reach/);
  } finally {
    await closeLive();
    await server.close();
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("the group names the CLI reads are the registry's groups, in drain order, the quote store last", () => {
  assert.deepEqual(GROUPS.map((g) => g.group), [...GROUP_NAMES]);
  assert.equal(GROUP_NAMES.at(-1), "quote-store");
});

Deno.test("the trigger CLI loads no quote store and no database driver", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "scripts/trigger.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(output.code, 0);
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = graph.modules.map((m) => m.specifier);
  assert.ok(specifiers.some((s) => s.endsWith("/shared/groups/registry.ts")));
  // The graph lists type-only imports too (ioredis's types); the bundle below is what runs.
  for (const specifier of specifiers) {
    assert.doesNotMatch(specifier, /shared\/store\/|postgres|sqlite|hono/, specifier);
  }
  const dir = await Deno.makeTempDir({ prefix: "tickstream-bundle-" });
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "scripts/trigger.ts", "-o", `${dir}/trigger.js`],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(bundle.code, 0, new TextDecoder().decode(bundle.stderr));
    const code = await Deno.readTextFile(`${dir}/trigger.js`);
    for (const driver of ["node:sqlite", "postgres", "ioredis", "DatabaseSync"]) {
      assert.ok(!code.includes(driver), `The CLI bundle includes ${driver}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitForHealth(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${base}/health`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Cannot reach ${base}/health within ${timeoutMs} ms`);
}

Deno.test("every trigger command the deno task dev banner suggests works as printed", async () => {
  // A Redis of the test's own, so deno task dev starts none (and writes nothing to ./data).
  const redis = await startRedis();
  const port = freePort();
  const dev = new Deno.Command(Deno.execPath(), {
    args: ["task", "dev"],
    cwd: ROOT,
    env: {
      REDIS_URL: redis.url,
      PORT: String(port),
      CRON_ENABLED: "false",
      DATABASE_PATH: ":memory:",
      DATABASE_URL: "",
      FUNCTIONS_TOKEN: "",
      BASE_URL: "",
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let printed = "";
  const pump = dev.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        printed += chunk;
      },
    }),
  ).catch(() => {});
  try {
    await waitForHealth(`http://127.0.0.1:${port}`, 60_000);
    const suggested = printed.split("\n").flatMap((line) => {
      const match = line.match(/((?:BASE_URL=\S+ )?deno task trigger .+)$/);
      return match ? [match[1].trim()] : [];
    });
    assert.ok(suggested.length >= 2, `the banner suggests no trigger command:\n${printed}`);
    for (const command of suggested) {
      const run = await new Deno.Command("sh", {
        args: ["-c", command],
        cwd: ROOT,
        env: { BASE_URL: "", FUNCTIONS_TOKEN: "" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, `${command}\n${text}`);
    }
  } finally {
    try {
      dev.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await dev.status;
    await pump;
    await redis.stop();
  }
});
