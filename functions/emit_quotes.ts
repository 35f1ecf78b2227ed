/**
 * Function `POST /emit-quotes`: emits a batch of simulated quotes in one
 * atomic round trip, continuing the random walk stored in Redis, stamped
 * with market time (see shared/simulator.ts). Also the body of the emit
 * cron, which is paced: one tick per TICK_INTERVAL_MS for EMIT_BUDGET_MS.
 *
 * @module
 */

import { Hono } from "hono";
import { createHash } from "node:crypto";
import { loadConfig } from "../shared/config.ts";
import { BadRequestError } from "../shared/errors.ts";
import {
  checkBackpressure,
  type EmitAcrossOptions,
  emitAcrossPartitions,
  type EmitResult,
  IDEMPOTENCY_TTL_MS,
} from "../shared/emitter.ts";
import {
  defaultDeps,
  type Deps,
  installErrorHandling,
  intField,
  limitBody,
  onlyFields,
  readJsonBody,
  requireJson,
  requireToken,
} from "../shared/http.ts";
import { log } from "../shared/log.ts";
import { observeEmit } from "../shared/metrics/mod.ts";
import { withSpan } from "../shared/trace.ts";
import { SYMBOL_PATTERN } from "../shared/market/quotes.ts";

/** Response of an emit. */
export type { EmitResult };
export { checkBackpressure, IDEMPOTENCY_TTL_MS };

/** Options of {@linkcode emitQuotes}. */
export type EmitOptions = EmitAcrossOptions;

/**
 * Emits `ticks` x `symbols` quotes: each partition's in one atomic step with
 * its simulator state, latest quotes and, with a key, its idempotency record.
 */
export function emitQuotes(deps: Deps, options: EmitOptions = {}): Promise<EmitResult> {
  const started = performance.now();
  return withSpan("emit-quotes", async () => {
    const result = await emitAcrossPartitions(deps, options);
    observeEmit(performance.now() - started);
    return result;
  }, {
    attributes: { "tickstream.ticks": options.ticks ?? 1 },
    resultAttributes: (r) => ({ "tickstream.emitted": r.emitted }),
  });
}

/** Options of {@linkcode emitPaced}. */
export interface EmitPacedOptions {
  /**
   * How long to keep emitting, in ms; no tick starts at or after it (0: one tick).
   * @default {config.emitBudgetMs}
   */
  budgetMs?: number;
  /**
   * Time between two ticks, in ms.
   * @default {config.tickIntervalMs}
   */
  intervalMs?: number;
  /**
   * Symbols to emit.
   * @default {config.symbols}
   */
  symbols?: string[];
  /**
   * Waits `ms` or until `signal` aborts; tests pass one that moves their injected clock.
   * @default {a setTimeout that the signal cuts short}
   */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * Ends the run before its next tick, e.g. on shutdown.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** What one paced run emitted. */
export interface PacedResult {
  /** Ticks emitted, each one quote per symbol. */
  ticks: number;
  /** Quotes added. */
  emitted: number;
  /** Id of the last quote added, or null when nothing was. */
  lastId: string | null;
}

function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The emit cron's body: one tick per `intervalMs` for `budgetMs`, on a fixed
 * pace from the start (a slow emit skips the slots it missed instead of
 * bunching ticks), so the feed moves every interval. Each tick is one
 * {@linkcode emitQuotes} call; an error (e.g. 429 backpressure) ends the run.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../shared/config.ts";
 * import { defaultDeps } from "../shared/http.ts";
 *
 * const result = await emitPaced(defaultDeps(loadConfig()), { budgetMs: 5000 });
 * ```
 */
export function emitPaced(deps: Deps, options: EmitPacedOptions = {}): Promise<PacedResult> {
  return withSpan("emit-paced", async function tracedPaced() {
    const result = await emitTicks(deps, options);
    log("debug", `Emitted ${result.emitted} quotes in ${result.ticks} ticks`, { ...result });
    return result;
  }, {
    resultAttributes: (r) => ({ "tickstream.emitted": r.emitted, "tickstream.ticks": r.ticks }),
  });
}

async function emitTicks(deps: Deps, options: EmitPacedOptions): Promise<PacedResult> {
  const { config } = deps;
  const {
    budgetMs = config.emitBudgetMs,
    intervalMs = config.tickIntervalMs,
    symbols = config.symbols,
    sleep = sleepUnlessAborted,
    signal,
  } = options;
  if (!Number.isFinite(budgetMs) || budgetMs < 0) {
    throw new RangeError(
      `Cannot emit paced as 'budgetMs' must be a number >= 0: current value is ${budgetMs}`,
    );
  }
  if (!Number.isInteger(intervalMs) || intervalMs < 1) {
    throw new RangeError(
      `Cannot emit paced as 'intervalMs' must be an integer >= 1: current value is ${intervalMs}`,
    );
  }
  const start = deps.now();
  const result: PacedResult = { ticks: 0, emitted: 0, lastId: null };
  let slot = 0;
  while (!signal?.aborted) {
    const at = start + slot * intervalMs;
    if (slot > 0 && at >= start + budgetMs) break;
    const wait = at - deps.now();
    if (wait > 0) await sleep(wait, signal);
    if (signal?.aborted) break;
    const emitted = await emitQuotes(deps, { ticks: 1, symbols });
    result.ticks += 1;
    result.emitted += emitted.emitted;
    result.lastId = emitted.lastId;
    slot = Math.max(slot + 1, Math.floor((deps.now() - start) / intervalMs) + 1);
  }
  return result;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** Validates an emit request body into {@linkcode EmitOptions}. */
export function parseEmitBody(body: Record<string, unknown>, defaults: string[]): EmitOptions {
  onlyFields(body, ["ticks", "symbols"]);
  const ticks = intField(body, { name: "ticks", min: 1, max: 1000, fallback: 1 });
  let symbols = defaults;
  if (body.symbols !== undefined) {
    if (!Array.isArray(body.symbols) || body.symbols.length === 0 || body.symbols.length > 100) {
      throw new BadRequestError(
        `Field "symbols" must be an array of 1 to 100 symbols: got ${JSON.stringify(body.symbols)}`,
      );
    }
    for (const s of body.symbols) {
      if (typeof s !== "string" || !SYMBOL_PATTERN.test(s)) {
        throw new BadRequestError(
          `Symbol must match ${SYMBOL_PATTERN.source}: got ${JSON.stringify(s)}`,
        );
      }
    }
    symbols = [...new Set(body.symbols as string[])];
  }
  return { ticks, symbols };
}

/** Builds the emit function's app. */
export function createEmitApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.post(
    "/emit-quotes",
    requireToken(deps.config),
    requireJson(),
    limitBody(),
    async function emit(c) {
      const options = parseEmitBody(await readJsonBody(c), deps.config.symbols);
      const key = c.req.header("Idempotency-Key");
      if (key !== undefined) {
        if (!IDEMPOTENCY_KEY.test(key)) {
          throw new BadRequestError(
            `Idempotency-Key must be 1 to 200 printable characters: got ${JSON.stringify(key)}`,
          );
        }
        options.fingerprint = createHash("sha256")
          .update(JSON.stringify([options.ticks, options.symbols])).digest("hex");
        options.idempotencyKey = key;
      }
      return c.json(await emitQuotes(deps, options));
    },
  );
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createEmitApp(defaultDeps(config)).fetch);
}
