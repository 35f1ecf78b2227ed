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
import {
  BackpressureError,
  BadRequestError,
  ConflictError,
  UnavailableError,
  UnprocessableError,
} from "../shared/errors.ts";
import { GROUPS } from "../shared/groups/registry.ts";
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
import { latestRest } from "../shared/market/latest.ts";
import { encodeQuote, SYMBOL_PATTERN } from "../shared/market/quotes.ts";
import { isRedisUnavailable } from "../shared/redis.ts";
import { initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";
import {
  claimIdempotency,
  ensureGroups,
  recoverGroup,
  releaseIdempotency,
} from "../shared/queue/mod.ts";
import { stockKeys, stockQueue } from "../shared/stock_queue.ts";

/** Response of an emit. */
export interface EmitResult {
  /** Stream key. */
  stream: string;
  /** Quotes added. */
  emitted: number;
  /** Id of the first quote added. */
  firstId: string;
  /** Id of the last quote added. */
  lastId: string;
}

/** Options of {@linkcode emitQuotes}. */
export interface EmitOptions {
  /**
   * Ticks to emit; each tick is one quote per symbol.
   * @default {1}
   */
  ticks?: number;
  /**
   * Symbols to emit.
   * @default {config.symbols}
   */
  symbols?: string[];
  /**
   * Idempotency key: a repeat within 24 hours returns the first response and adds nothing.
   * @default {undefined}
   */
  idempotencyKey?: string;
  /**
   * Fingerprint of the request the key belongs to; a different one with a used key is refused.
   * @default {""}
   */
  fingerprint?: string;
}

/** How long an idempotency key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** How long a running emit holds its key before a retry may take over. */
const RUNNING_TTL_MS = 30000;
const MAX_GUARD_RETRIES = 10;

/**
 * Answers 429 while the slowest group lags more than MAX_LAG entries, and
 * recreates groups Redis lost, so no entry of this emit is missed by them.
 */
export async function checkBackpressure(deps: Deps): Promise<void> {
  const queue = stockQueue(deps);
  const stream = queue.stream;
  const groups = await stream.groups();
  const missing = GROUPS.filter((d) => !groups.some((g) => g.name === d.group));
  if (missing.length > 0) {
    const fresh = groups.length === 0 && (await stream.info()) === null;
    for (const definition of missing) {
      const start = { name: definition.group, start: definition.start };
      if (fresh || (definition.start ?? "$") !== "0") {
        // No stream at all (a first start, or Redis lost everything), or a
        // group new to a running stream: it starts where it declares.
        await ensureGroups(queue, [start], { force: true });
      } else {
        // The stream is there without this group: Redis lost it, or it was
        // destroyed. Recreated at 0 so no entry it had not seen is missed.
        await recoverGroup(queue, definition.group);
      }
    }
  }
  let worst = groups.reduce((max, g) => Math.max(max, g.lag ?? 0), 0);
  // Redis reports no lag when it cannot tell (e.g. after XDEL by another
  // producer); the stream's length is then a safe upper bound.
  if (groups.some((g) => g.lag === null)) {
    worst = Math.max(worst, await stream.length());
  }
  if (worst > deps.config.maxLag) {
    throw new BackpressureError(
      `Cannot emit while the slowest group lags ${worst} entries: MAX_LAG is ${deps.config.maxLag}`,
      30,
    );
  }
}

/**
 * Emits `ticks` x `symbols` quotes in one atomic step: the entries, the new
 * simulator state (guarded by its version, so concurrent emits continue one
 * walk), the latest quote per symbol and, with a key, the idempotency record.
 */
export function emitQuotes(deps: Deps, options: EmitOptions = {}): Promise<EmitResult> {
  return withSpan("emit-quotes", () => appendQuotes(deps, options), {
    attributes: { "tickstream.ticks": options.ticks ?? 1 },
    resultAttributes: (r) => ({ "tickstream.emitted": r.emitted }),
  });
}

async function appendQuotes(deps: Deps, options: EmitOptions): Promise<EmitResult> {
  const started = performance.now();
  const { config } = deps;
  const { ticks = 1, symbols = config.symbols, idempotencyKey, fingerprint = "" } = options;
  const redis = deps.redis();
  const { stream, keys } = stockQueue(deps);
  let idem: { key: string; token: string; fingerprint: string; ttlMs: number } | undefined;
  if (idempotencyKey !== undefined) {
    const claim = await claimIdempotency<EmitResult>(redis, keys.idempotency(idempotencyKey), {
      fingerprint,
      runningTtlMs: RUNNING_TTL_MS,
      now: deps.now,
    });
    if (claim.status === "mismatch") {
      throw new UnprocessableError(
        `Idempotency key was used for a different request: "${idempotencyKey}"`,
      );
    }
    if (claim.status === "done") {
      const { stream, emitted, firstId, lastId } = claim.response;
      return { stream, emitted, firstId, lastId };
    }
    if (claim.status === "running") {
      throw new ConflictError(
        `A request with this idempotency key is still running: "${idempotencyKey}"`,
      );
    }
    idem = { key: claim.key, token: claim.token, fingerprint, ttlMs: IDEMPOTENCY_TTL_MS };
  }
  try {
    await checkBackpressure(deps);
    const simKey = stockKeys(config).simulator;
    for (let attempt = 0; attempt < MAX_GUARD_RETRIES; attempt++) {
      const [version, stored] = await redis.hmget(simKey, "version", "state");
      const state = stored ? JSON.parse(stored) : initialSimulatorState();
      const sim = simulateTicks(state, {
        symbols,
        ticks,
        now: deps.now(),
        intervalMs: config.tickIntervalMs,
        random: deps.random,
      });
      const lastIndex = new Map<string, number>();
      sim.quotes.forEach((q, i) => lastIndex.set(q.symbol, i));
      const result = await stream.append(sim.quotes.map(encodeQuote), {
        maxLen: config.streamMaxlen,
        guard: {
          key: simKey,
          expected: version ?? "0",
          next: String(Number(version ?? "0") + 1),
          state: JSON.stringify(sim.state),
        },
        idempotency: idem,
        latest: {
          key: stockKeys(config).latest,
          items: [...lastIndex].map(([field, index]) => ({
            index,
            field,
            rest: latestRest(sim.quotes[index]),
          })),
        },
        counter: { key: keys.counters, field: "emitted" },
      });
      if (result.status === "ok") {
        observeEmit(performance.now() - started);
        idem = undefined;
        return {
          stream: result.stream!,
          emitted: result.emitted!,
          firstId: result.firstId!,
          lastId: result.lastId!,
        };
      }
      if (result.status === "lost") {
        throw new ConflictError(
          `Idempotency key expired while the request was running: "${idempotencyKey}"`,
        );
      }
    }
    throw new UnavailableError("Cannot emit: the simulator state kept changing under contention");
  } catch (error) {
    // With Redis down the key cannot be freed now; it expires on its own.
    if (isRedisUnavailable(error)) idem = undefined;
    throw error;
  } finally {
    // A failed emit frees its key at once so the client's retry can proceed.
    if (idem !== undefined) await releaseIdempotency(redis, idem).catch(() => false);
  }
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
