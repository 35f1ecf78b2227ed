/**
 * Test helper: reads Prometheus text exposition and runs promtool and
 * Prometheus itself (Debian's prometheus package; .ci/run installs it).
 *
 * @module
 */

import { freePort } from "./_redis_server.ts";

/** One sample of an exposition. */
export interface Sample {
  /** Metric name, with its _bucket, _sum or _count suffix for histograms. */
  name: string;
  /** Label names and values. */
  labels: Record<string, string>;
  /** Value. */
  value: number;
}

/** Every sample of an exposition text. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/);
    if (!match) throw new Error(`Cannot parse exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

/** Samples named `name` whose labels include `labels`. */
export function samples(
  all: Sample[],
  name: string,
  labels: Record<string, string> = {},
): Sample[] {
  return all.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

/** The one sample named `name` with `labels`; throws when there is none or several. */
export function value(all: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples(all, name, labels);
  if (found.length !== 1) {
    throw new Error(`Expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  }
  return found[0].value;
}

/** Output of a finished command. */
export interface CommandOutput {
  /** Exit code. */
  code: number;
  /** Stdout and stderr, together. */
  output: string;
}

/** Runs promtool with `args`, feeding `stdin` when given. */
export async function promtool(args: string[], stdin?: string): Promise<CommandOutput> {
  const child = new Deno.Command("promtool", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

/** A Prometheus server owned by a test. */
export interface TestPrometheus {
  /** Base URL of its HTTP API. */
  url: string;
  /** Runs an instant query and returns its result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Kills the server and removes its config and storage. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPrometheus}. */
export interface StartPrometheusOptions {
  /**
   * Bearer token Prometheus sends with each scrape.
   * @default {undefined}
   */
  bearerToken?: string;
  /**
   * Scrape interval.
   * @default {"1s"}
   */
  scrapeInterval?: string;
}

/** Starts Prometheus scraping `target` (host:port) every second, storing in a temp dir. */
export async function startPrometheus(
  target: string,
  options: StartPrometheusOptions = {},
): Promise<TestPrometheus> {
  const { bearerToken, scrapeInterval = "1s" } = options;
  const dir = await Deno.makeTempDir({ prefix: "tickstream-prometheus-" });
  const auth = bearerToken === undefined
    ? ""
    : `\n    authorization:\n      type: Bearer\n      credentials: ${JSON.stringify(bearerToken)}`;
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    `global:\n  scrape_interval: ${scrapeInterval}\n  evaluation_interval: ${scrapeInterval}\n` +
      `scrape_configs:\n  - job_name: tickstream\n    scrape_interval: ${scrapeInterval}\n` +
      `    metrics_path: /metrics${auth}\n    static_configs:\n      - targets: [${
        JSON.stringify(target)
      }]\n`,
  );
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  async function stop(): Promise<void> {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const deadline = Date.now() + 20000;
  while (true) {
    try {
      const res = await fetch(`${url}/-/ready`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Cannot reach Prometheus at ${url} within 20 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = await res.json();
      if (body.status !== "success") throw new Error(`Query ${promql} failed: ${body.error}`);
      return body.data.result;
    },
    stop,
  };
}
