/**
 * `deno task trigger`: calls the HTTP functions from the command line, the
 * way an external scheduler would.
 *
 *   deno task trigger emit --ticks 5 [--symbols AAPL,MSFT] [--key <idempotency key>]
 *   deno task trigger drain price-alerts [--count 100] [--budget 5000]
 *   deno task trigger drain all [--budget 5000]
 *   deno task trigger report | health
 *   deno task trigger dead-letters [--group price-alerts] [--limit 20]
 *   deno task trigger replay price-alerts [--ids 1-0,2-0]
 *
 * Reads BASE_URL (default http://127.0.0.1:8000) and FUNCTIONS_TOKEN.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GROUP_NAMES } from "../shared/groups.ts";

/** Options of {@linkcode runTrigger}. */
export interface TriggerOptions {
  /**
   * Base URL of the running functions.
   * @default {"http://127.0.0.1:8000"}
   */
  baseUrl?: string;
  /**
   * Bearer token sent when set.
   * @default {undefined}
   */
  token?: string;
  /**
   * Where output lines go.
   * @default {console.log}
   */
  log?: (line: string) => void;
  /**
   * The fetch to call with (tests pass an app's request).
   * @default {fetch}
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** Raised for a command line the CLI cannot run. */
export class UsageError extends Error {
  /** Creates the error with the problem in the message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const USAGE = `Usage:
  trigger emit [--ticks N] [--symbols A,B] [--key IDEMPOTENCY_KEY]
  trigger drain <group|all> [--count N] [--budget MS]
  trigger report | health
  trigger dead-letters [--group G] [--limit N]
  trigger replay <group> [--ids ID,ID]`;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`Option --${name} must be an integer: got "${value}"`);
  }
  return Number(value);
}

/**
 * Runs one CLI command; returns the process exit code (0 when every call
 * answered 2xx).
 *
 * @example
 * ```ts
 * const code = await runTrigger(["emit", "--ticks", "5"], { baseUrl: "http://127.0.0.1:8000" });
 * ```
 */
export async function runTrigger(args: string[], options: TriggerOptions = {}): Promise<number> {
  const {
    baseUrl = "http://127.0.0.1:8000",
    token,
    log = console.log,
    fetch: doFetch = fetch,
  } = options;
  const { values, positionals } = parseArgs({
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
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, target] = positionals;
  if (values.help || command === undefined) {
    log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const base = baseUrl.replace(/\/$/, "");
  let failed = false;
  async function call(method: string, path: string, body?: unknown): Promise<void> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, init);
    } catch (error) {
      failed = true;
      log(`${method} ${path} failed: cannot reach ${base} (${(error as Error).message})`);
      return;
    }
    const text = await res.text();
    if (!res.ok) failed = true;
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON: print as it came.
    }
    log(`${method} ${path} -> ${res.status}\n${pretty}`);
  }
  switch (command) {
    case "emit": {
      const body: Record<string, unknown> = {};
      const ticks = positiveInt(values.ticks, "ticks");
      if (ticks !== undefined) body.ticks = ticks;
      if (values.symbols) body.symbols = values.symbols.split(",").map((s) => s.trim());
      if (values.key) headers["idempotency-key"] = values.key;
      await call("POST", "/emit-quotes", body);
      break;
    }
    case "drain": {
      if (!target) throw new UsageError(`Command drain needs a group or "all": ${USAGE}`);
      const body: Record<string, unknown> = {};
      const count = positiveInt(values.count, "count");
      const budget = positiveInt(values.budget, "budget");
      if (count !== undefined) body.count = count;
      if (budget !== undefined) body.budgetMs = budget;
      const groups = target === "all" ? GROUP_NAMES : [target];
      for (const group of groups) await call("POST", `/drain/${encodeURIComponent(group)}`, body);
      break;
    }
    case "report":
      await call("GET", "/report");
      break;
    case "health":
      await call("GET", "/health");
      break;
    case "dead-letters": {
      const query = new URLSearchParams();
      if (values.group) query.set("group", values.group);
      if (values.limit) query.set("limit", values.limit);
      await call("GET", `/dead-letters${query.size ? `?${query}` : ""}`);
      break;
    }
    case "replay": {
      if (!target) throw new UsageError(`Command replay needs a group: ${USAGE}`);
      const body = values.ids ? { ids: values.ids.split(",") } : {};
      await call("POST", `/dead-letters/${encodeURIComponent(target)}/replay`, body);
      break;
    }
    default:
      throw new UsageError(`Unknown command "${command}": ${USAGE}`);
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(
      await runTrigger(Deno.args, {
        baseUrl: Deno.env.get("BASE_URL"),
        token: Deno.env.get("FUNCTIONS_TOKEN"),
      }),
    );
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(2);
  }
}
