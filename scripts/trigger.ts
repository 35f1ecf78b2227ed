/**
 * `deno task trigger`: calls the HTTP functions from the command line, the
 * way an external scheduler would, and prints what they answered as tables
 * (`--json` prints the answers themselves, for scripts). Run
 * `deno task trigger --help` for the commands, groups and settings.
 *
 * It loads no database driver: the group names come from
 * shared/group_names.ts, which imports only the pure analyses.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GROUP_NAMES } from "../shared/groups/registry.ts";
import { formatAge, formatTable } from "./_table.ts";

/** Options of {@linkcode runTrigger}. */
export interface TriggerOptions {
  /**
   * Base URL of the running functions (BASE_URL).
   * @default {"http://127.0.0.1:8000"}
   */
  baseUrl?: string;
  /**
   * Bearer token sent when set (FUNCTIONS_TOKEN).
   * @default {undefined}
   */
  token?: string;
  /**
   * Where output lines go.
   * @default {console.log}
   */
  log?: (line: string) => void;
  /**
   * Where failures go.
   * @default {console.error}
   */
  error?: (line: string) => void;
  /**
   * The fetch to call with (tests pass an app's request).
   * @default {fetch}
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** Raised for a command line the CLI cannot run; the process exits with 2. */
export class UsageError extends Error {
  /** Creates the error with the problem in the message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** Base URL when BASE_URL is unset. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";

/** Every command, with its arguments and what it calls. */
export const COMMANDS: readonly { usage: string; does: string }[] = [
  { usage: "emit [--ticks N] [--symbols A,B] [--key KEY]", does: "POST /emit-quotes" },
  { usage: "drain <group|all> [--count N] [--budget MS]", does: "POST /drain/:group" },
  { usage: "report", does: "GET /report: one row per group" },
  { usage: "health", does: "GET /health" },
  { usage: "dead-letters [--group G] [--limit N]", does: "GET /dead-letters" },
  { usage: "replay <group> [--ids ID,ID]", does: "POST /dead-letters/:group/replay" },
  { usage: "help", does: "this text" },
];

/** The text of `trigger --help`. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.usage.length));
  return [
    "Usage: deno task trigger <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.usage.padEnd(width)}  ${c.does}`),
    "",
    "Options:",
    "  --json      print the answer as JSON instead of a table",
    "  -h, --help  print this text",
    "  emit: --ticks ticks of one quote per symbol (1), --symbols (the server's SYMBOLS),",
    "        --key an Idempotency-Key; drain: --count entries per chunk (100),",
    "        --budget a time budget in ms (none: one chunk)",
    "",
    `Groups: ${GROUP_NAMES.join(", ")}`,
    "",
    "Settings read from the environment:",
    `  BASE_URL         where the functions run (default ${DEFAULT_BASE_URL})`,
    "  FUNCTIONS_TOKEN  bearer token for the operator routes (unset: none sent)",
    "",
    "Exit status: 0 when every call succeeded, 1 when a call failed or the",
    "server could not be reached, 2 for a command line that cannot run.",
  ].join("\n");
}

/** One group as GET /report shows it (the fields the CLI prints). */
interface ReportGroup {
  name: string;
  lag: number | null;
  pending: number;
  oldestPendingMs: number | null;
  deadLetters: number;
  consumers: number;
}

/** GET /report (the fields the CLI prints). */
interface ReportJson {
  stream: { key: string; length: number; lastId: string | null };
  groups: ReportGroup[];
  alerts: { key: string; length: number };
  deadLetters: { key: string; length: number };
  backpressure: boolean;
  warnings: string[];
}

type Json = Record<string, unknown>;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`Option --${name} must be an integer: got "${value}"`);
  }
  return Number(value);
}

function cell(value: unknown): string {
  return value === null || value === undefined ? "-" : String(value);
}

/** A group's state in one word, from its figures and the report's warnings. */
function stateOf(group: ReportGroup, warnings: string[]): string {
  const about = warnings.filter((w) => w.includes(`"${group.name}"`));
  if (about.some((w) => w.includes("stuck"))) return "stuck";
  if (about.some((w) => w.startsWith("Backpressure"))) return "backpressure";
  if ((group.lag ?? 0) > 0 || group.pending > 0) return "behind";
  if (group.lag === null) return "unknown lag";
  return "caught up";
}

/** Position of a group in drain order; groups the CLI does not know come last. */
function rank(name: string): number {
  const i = GROUP_NAMES.indexOf(name);
  return i === -1 ? GROUP_NAMES.length : i;
}

function reportText(report: ReportJson): string {
  const groups = [...report.groups].sort((a, b) =>
    rank(a.name) - rank(b.name) || a.name.localeCompare(b.name)
  );
  const rows = groups.map((g) => [
    g.name,
    cell(g.lag),
    String(g.pending),
    formatAge(g.oldestPendingMs),
    String(g.deadLetters),
    String(g.consumers),
    stateOf(g, report.warnings),
  ]);
  const lines = [
    `Stream ${report.stream.key}: ${report.stream.length} entries, last ${
      report.stream.lastId ?? "-"
    }`,
    "",
    formatTable([
      { title: "group" },
      { title: "lag", numeric: true },
      { title: "pending", numeric: true },
      { title: "oldest age", numeric: true },
      { title: "dead", numeric: true },
      { title: "consumers", numeric: true },
      { title: "state" },
    ], rows),
    "",
    `Alerts: ${report.alerts.length} in ${report.alerts.key}. ` +
    `Dead letters: ${report.deadLetters.length} in ${report.deadLetters.key}. ` +
    `Backpressure: ${report.backpressure ? "on (emits answer 429)" : "off"}.`,
  ];
  if (report.warnings.length > 0) {
    lines.push("", "Warnings:", ...report.warnings.map((w) => `  - ${w}`));
  }
  return lines.join("\n");
}

function drainText(results: Json[]): string {
  return formatTable(
    [
      { title: "group" },
      { title: "read", numeric: true },
      { title: "acked", numeric: true },
      { title: "failed", numeric: true },
      { title: "dead", numeric: true },
      { title: "alerts", numeric: true },
      { title: "lag", numeric: true },
      { title: "more" },
      { title: "ms", numeric: true },
    ],
    results.map((r) => [
      cell(r.group) + (r.busy ? " (busy)" : ""),
      cell(r.read),
      cell(r.acked),
      cell(r.failed),
      cell(r.deadLettered),
      cell(r.alerts),
      cell(r.lag),
      r.more ? "yes" : "no",
      cell(r.durationMs),
    ]),
  );
}

function deadLettersText(letters: Json[]): string {
  if (letters.length === 0) return "No dead letters.";
  return formatTable(
    [
      { title: "id" },
      { title: "group" },
      { title: "source id" },
      { title: "deliveries", numeric: true },
      { title: "when" },
      { title: "error" },
    ],
    letters.map((d) => [
      cell(d.id),
      cell(d.group),
      cell(d.sourceId),
      cell(d.deliveries),
      cell(d.datetime),
      cell(d.error).slice(0, 60),
    ]),
  );
}

/** What a command asks of the server. */
interface Call {
  method: "GET" | "POST";
  path: string;
  body?: unknown;
}

/**
 * Runs one CLI command; returns the process exit code: 0 when every call
 * answered 2xx, 1 when one failed or the server could not be reached.
 *
 * @example
 * ```ts
 * const code = await runTrigger(["emit", "--ticks", "5"], { baseUrl: "http://127.0.0.1:8000" });
 * ```
 * @throws {UsageError} When the command line cannot run (exit code 2).
 */
export async function runTrigger(args: string[], options: TriggerOptions = {}): Promise<number> {
  const {
    baseUrl = DEFAULT_BASE_URL,
    token,
    log = console.log,
    error = console.error,
    fetch: doFetch = fetch,
  } = options;
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ticks: { type: "string" },
        symbols: { type: "string" },
        key: { type: "string" },
        count: { type: "string" },
        budget: { type: "string" },
        group: { type: "string" },
        limit: { type: "string" },
        ids: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (cause) {
    throw new UsageError(`${(cause as Error).message}: run trigger --help`, { cause });
  }
  const { values, positionals } = parsed;
  const [command, target, ...extra] = positionals;
  if (values.help || command === "help") {
    log(usage());
    return 0;
  }
  if (command === undefined) {
    log(usage());
    return 2;
  }
  if (extra.length > 0) {
    throw new UsageError(`Unexpected argument "${extra[0]}": run trigger --help`);
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const base = baseUrl.replace(/\/$/, "");

  /** Calls the server; the parsed answer, or undefined after reporting the failure. */
  async function call({ method, path, body }: Call): Promise<unknown> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, init);
    } catch (cause) {
      error(`${method} ${path} failed: cannot reach ${base} (${(cause as Error).message})`);
      return undefined;
    }
    const text = await res.text();
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      error(`${method} ${path} failed: ${res.status} with a body that is not JSON: ${text}`);
      return undefined;
    }
    if (!res.ok) {
      const message = (answer as Json)?.error ?? text;
      error(`${method} ${path} failed: ${res.status} ${message}`);
      return undefined;
    }
    return answer;
  }

  function print(answer: unknown, table: (answer: never) => string): void {
    log(values.json ? JSON.stringify(answer, null, 2) : table(answer as never));
  }

  switch (command) {
    case "emit": {
      const body: Json = {};
      const ticks = positiveInt(values.ticks, "ticks");
      if (ticks !== undefined) body.ticks = ticks;
      if (values.symbols) body.symbols = values.symbols.split(",").map((s) => s.trim());
      if (values.key) headers["idempotency-key"] = values.key;
      const answer = await call({ method: "POST", path: "/emit-quotes", body });
      if (answer === undefined) return 1;
      print(
        answer,
        (r: Json) => `Emitted ${r.emitted} quotes to ${r.stream}: ${r.firstId} .. ${r.lastId}`,
      );
      return 0;
    }
    case "drain": {
      if (!target) throw new UsageError(`Command drain needs a group or "all": run trigger --help`);
      const body: Json = {};
      const count = positiveInt(values.count, "count");
      const budget = positiveInt(values.budget, "budget");
      if (count !== undefined) body.count = count;
      if (budget !== undefined) body.budgetMs = budget;
      const groups = target === "all" ? GROUP_NAMES : [target];
      const results: Json[] = [];
      let failed = false;
      for (const group of groups) {
        const path = `/drain/${encodeURIComponent(group)}`;
        const answer = await call({ method: "POST", path, body });
        if (answer === undefined) failed = true;
        else results.push(answer as Json);
      }
      if (results.length > 0) {
        print(target === "all" ? results : results[0], () => drainText(results));
      }
      return failed ? 1 : 0;
    }
    case "report": {
      const answer = await call({ method: "GET", path: "/report" });
      if (answer === undefined) return 1;
      print(answer, reportText);
      return 0;
    }
    case "health": {
      const answer = await call({ method: "GET", path: "/health" });
      if (answer === undefined) return 1;
      print(answer, (r: Json) => `Healthy: status ${r.status}, Redis ${r.redis}`);
      return 0;
    }
    case "dead-letters": {
      const query = new URLSearchParams();
      if (values.group) query.set("group", values.group);
      const limit = positiveInt(values.limit, "limit");
      if (limit !== undefined) query.set("limit", String(limit));
      const path = `/dead-letters${query.size ? `?${query}` : ""}`;
      const answer = await call({ method: "GET", path });
      if (answer === undefined) return 1;
      print(answer, (r: { deadLetters: Json[] }) => deadLettersText(r.deadLetters));
      return 0;
    }
    case "replay": {
      if (!target) throw new UsageError(`Command replay needs a group: run trigger --help`);
      const body = values.ids ? { ids: values.ids.split(",").map((id) => id.trim()) } : {};
      const path = `/dead-letters/${encodeURIComponent(target)}/replay`;
      const answer = await call({ method: "POST", path, body });
      if (answer === undefined) return 1;
      print(
        answer,
        (r: Json) =>
          `Replayed ${r.group}: ${r.attempted} attempted, ${r.succeeded} succeeded, ${r.failed} failed`,
      );
      return 0;
    }
    default:
      throw new UsageError(`Unknown command "${command}": run trigger --help`);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(
      await runTrigger(Deno.args, {
        baseUrl: Deno.env.get("BASE_URL") || undefined,
        token: Deno.env.get("FUNCTIONS_TOKEN") || undefined,
      }),
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}
