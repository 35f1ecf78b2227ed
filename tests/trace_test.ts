import assert from "node:assert/strict";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { formatLine, setLogFormat } from "../shared/log.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { redact, registerSecret } from "../shared/redact.ts";
import { withSpan } from "../shared/trace.ts";
import { freePort, startRedis } from "./_redis_server.ts";

/** One span as OTLP http/json carries it, with its attributes flattened. */
interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  status: { code?: number; message?: string };
  events: { name: string }[];
  attributes: Record<string, unknown>;
}

function attributeValue(value: Record<string, unknown>): unknown {
  if ("intValue" in value) return Number(value.intValue);
  if ("doubleValue" in value) return Number(value.doubleValue);
  if ("boolValue" in value) return value.boolValue;
  return value.stringValue;
}

/** A small OTLP http/json receiver: keeps every span POSTed to /v1/traces. */
function startReceiver() {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.text();
    if (req.method === "POST" && path === "/v1/traces") {
      contentTypes.add(req.headers.get("content-type") ?? "");
      for (const resource of JSON.parse(body).resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              ...span,
              status: span.status ?? {},
              events: span.events ?? [],
              attributes: Object.fromEntries(
                (span.attributes ?? []).map((
                  a: { key: string; value: Record<string, unknown> },
                ) => [
                  a.key,
                  attributeValue(a.value),
                ]),
              ),
            });
          }
        }
      }
    }
    return Response.json({});
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, spans, contentTypes, server };
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

async function waitForHealth(base: string): Promise<void> {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Cannot reach ${base}/health`);
}

function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        text += chunk;
      },
    }),
  );
  return { done, text: () => text };
}

/** Starts main.ts exporting to `receiver`; a short batch delay makes spans arrive quickly. */
function spawnTraced(env: Record<string, string>, receiverUrl: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-cron", "main.ts"],
    env: {
      LOG_FORMAT: "json",
      OTEL_DENO: "true",
      OTEL_SERVICE_NAME: "tickstream",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, stdout: collect(child.stdout), stderr: collect(child.stderr) };
}

Deno.test("with OTEL_DENO=true a drain and an emit arrive over OTLP http/json as spans with the tickstream attributes, errors recorded, and JSON logs carry the trace id", async () => {
  const redis = await startRedis();
  const receiver = startReceiver();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-trace-" });
  // A file where the quote store wants a directory: its drains stall with an error.
  await Deno.writeTextFile(`${dir}/not-a-dir`, "");
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const token = "trace-test-token-1";
  const { child, stdout, stderr } = spawnTraced({
    REDIS_URL: redis.url,
    PORT: String(port),
    CRON_ENABLED: "false",
    FUNCTIONS_TOKEN: token,
    DATABASE_PATH: `${dir}/not-a-dir/quotes.db`,
  }, receiver.url);
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  try {
    await waitForHealth(base);
    const emit = await fetch(`${base}/emit-quotes`, {
      method: "POST",
      headers,
      body: JSON.stringify({ ticks: 3 }),
    });
    assert.equal(emit.status, 200, await emit.clone().text());
    await emit.body?.cancel();
    const drain = await fetch(`${base}/drain/price-alerts`, {
      method: "POST",
      headers,
      body: JSON.stringify({ count: 10 }),
    });
    const drained = await drain.json();
    assert.equal(drain.status, 200, JSON.stringify(drained));
    const stalled = await fetch(`${base}/drain/quote-store`, {
      method: "POST",
      headers,
      body: "{}",
    });
    const stalledBody = await stalled.text();
    assert.equal(stalled.status, 503, stalledBody);

    const drainSpan = await waitFor(
      "the drain span",
      () => receiver.spans.find((s) => s.name === "drain price-alerts"),
      15000,
    );
    assert.deepEqual(
      {
        group: drainSpan.attributes["tickstream.group"],
        read: drainSpan.attributes["tickstream.read"],
        acked: drainSpan.attributes["tickstream.acked"],
        failed: drainSpan.attributes["tickstream.failed"],
        deadLettered: drainSpan.attributes["tickstream.dead_lettered"],
        lag: drainSpan.attributes["tickstream.lag"],
      },
      {
        group: "price-alerts",
        read: 10,
        acked: 10,
        failed: 0,
        deadLettered: 0,
        lag: drained.lag,
      },
    );
    assert.notEqual(drainSpan.status.code, 2, "a good drain has no error status");
    // Deno's HTTP server span is the parent: the drain is one step of its request.
    assert.ok(drainSpan.parentSpanId, "the drain span has a parent");
    const parent = receiver.spans.find((s) => s.spanId === drainSpan.parentSpanId);
    assert.ok(parent, "the parent span (Deno's HTTP server span) arrived too");
    assert.equal(parent.traceId, drainSpan.traceId);

    const emitSpan = await waitFor(
      "the emit span",
      () => receiver.spans.find((s) => s.name === "emit-quotes"),
      15000,
    );
    assert.equal(emitSpan.attributes["tickstream.emitted"], 24);
    assert.equal(emitSpan.attributes["tickstream.ticks"], 3);

    const failed = await waitFor(
      "the stalled drain span",
      () => receiver.spans.find((s) => s.name === "drain quote-store"),
      15000,
    );
    assert.equal(failed.status.code, 2, "ERROR status");
    assert.match(failed.status.message ?? "", /Cannot drain group "quote-store"/);
    assert.ok(failed.events.some((e) => e.name === "exception"), "the exception is recorded");
    assert.equal(failed.attributes["tickstream.group"], "quote-store");
    assert.deepEqual([...receiver.contentTypes], ["application/json"]);

    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await Promise.all([stdout.done, stderr.done]);
    const lines = (stdout.text() + stderr.text()).split("\n").filter((l) => l.trim() !== "");
    const records = lines.map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        throw new Error(`Not a JSON log line: ${line}`);
      }
    });
    for (const record of records) {
      assert.equal(typeof record.time, "string");
      assert.ok(["debug", "info", "warn", "error"].includes(record.level), record.level);
      assert.equal(typeof record.msg, "string");
    }
    const drainLog = records.find((r) => r.msg === 'Drained group "price-alerts"');
    assert.ok(drainLog, `no drain log line in:\n${lines.join("\n")}`);
    assert.equal(drainLog.group, "price-alerts");
    assert.equal(drainLog.trace_id, drainSpan.traceId);
    assert.equal(drainLog.acked, 10);
    assert.match(drainLog.invocation, /^[0-9a-f]{16}$/);
    assert.ok(records.some((r) => /tickstream listening on/.test(r.msg)));
    assert.ok(!lines.join("\n").includes(token), "the token appears in no log line");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await receiver.server.shutdown();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each cron run is one span, drain-all or emit-paced, with a child span per group drained or tick emitted", async () => {
  const redis = await startRedis();
  const receiver = startReceiver();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-trace-" });
  const port = freePort();
  const { child, stdout, stderr } = spawnTraced({
    REDIS_URL: redis.url,
    PORT: String(port),
    DATABASE_PATH: `${dir}/quotes.db`,
    EMIT_BUDGET_MS: "0",
    // Deno's local cron runner fires every cron at this interval instead of its schedule.
    DENO_CRON_TEST_SCHEDULE_OFFSET: "500",
  }, receiver.url);
  try {
    const drainAll = await waitFor(
      "a drain-all span with its group spans",
      () =>
        receiver.spans.find((s) =>
          s.name === "drain-all" &&
          receiver.spans.filter((c) => c.parentSpanId === s.spanId).length >= GROUP_NAMES.length
        ),
      20000,
    );
    const children = receiver.spans.filter((s) => s.parentSpanId === drainAll.spanId);
    assert.deepEqual(
      children.map((c) => c.name).sort(),
      GROUP_NAMES.map((g) => `drain ${g}`).sort(),
    );
    for (const c of children) {
      assert.equal(c.attributes["tickstream.trigger"], "cron");
      assert.equal(c.traceId, drainAll.traceId);
      assert.equal(typeof c.attributes["tickstream.read"], "number");
    }
    const paced = await waitFor(
      "an emit-paced span with its tick",
      () =>
        receiver.spans.find((s) =>
          s.name === "emit-paced" &&
          receiver.spans.some((c) => c.parentSpanId === s.spanId && c.name === "emit-quotes")
        ),
      20000,
    );
    assert.equal(paced.attributes["tickstream.ticks"], 1);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await Promise.all([stdout.done, stderr.done]);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await receiver.server.shutdown();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log lines: text stays the plain message, json is one redacted object with the span's group, invocation id and no secret", async () => {
  registerSecret("log-secret-token-9");
  try {
    setLogFormat("text");
    assert.equal(
      formatLine("info", "tickstream listening on http://127.0.0.1:8000/"),
      "tickstream listening on http://127.0.0.1:8000/",
    );
    assert.equal(
      formatLine("error", "Emit cron failed", { error: new Error("Bad log-secret-token-9") }),
      "Emit cron failed: Error: Bad ***",
    );
    setLogFormat("json");
    const outside = JSON.parse(formatLine("warn", "Plain"));
    assert.deepEqual(Object.keys(outside).sort(), ["level", "msg", "time"]);
    const inside = await withSpan("drain price-alerts", () =>
      Promise.resolve(
        JSON.parse(
          formatLine("info", "Token log-secret-token-9 at redis://u:pw1234@h:6379", {
            acked: 3,
            nested: { url: "redis://u:pw1234@h:6379" },
          }),
        ),
      ), { attributes: { "tickstream.group": "price-alerts" } });
    assert.equal(inside.level, "info");
    assert.equal(inside.msg, "Token *** at redis://u:***@h:6379");
    assert.equal(inside.group, "price-alerts");
    assert.match(inside.invocation, /^[0-9a-f]{16}$/);
    assert.equal(inside.acked, 3);
    assert.deepEqual(inside.nested, { url: "redis://u:***@h:6379" });
    assert.ok(!Number.isNaN(Date.parse(inside.time)));
    assert.throws(() => setLogFormat("xml" as "json"), RangeError);
  } finally {
    setLogFormat("text");
  }
});

Deno.test("LOG_FORMAT takes text or json and stops start-up on anything else; METRICS_TOKEN is kept out of messages", () => {
  assert.equal(loadConfig({}).logFormat, "text");
  assert.equal(loadConfig({ LOG_FORMAT: " JSON " }).logFormat, "json");
  assert.throws(
    () => loadConfig({ LOG_FORMAT: "XML" }),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.includes(
        'Cannot read LOG_FORMAT as it must be text or json: current value is "XML"',
      ),
  );
  const config = loadConfig({ METRICS_TOKEN: " scrape-secret-77 " });
  assert.equal(config.metricsToken, "scrape-secret-77");
  assert.equal(loadConfig({ METRICS_TOKEN: "" }).metricsToken, undefined);
  assert.equal(redact("token scrape-secret-77"), "token ***");
});
