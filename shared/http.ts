/**
 * What every HTTP function shares: its dependencies, the token guard, the
 * body limit, JSON body parsing and the one place errors become responses.
 *
 * @module
 */

import { clusterCredentials, getClusterClient } from "./redis_cluster.ts";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { Redis } from "ioredis";
import { type Config, isLoopbackHost } from "./config.ts";
import { DependencyError } from "./queue/mod.ts";
import { BadRequestError, HttpError, UnavailableError } from "./errors.ts";
import type { QuoteStore } from "./store/quote_store.ts";
import { describeError, redact } from "./redact.ts";
import { describeRedisProblem, getRedis, type RedisProblem, redisProblem } from "./redis.ts";

/** What a function needs from the outside world; tests pass their own. */
export interface Deps {
  /** Validated settings. */
  config: Config;
  /** Returns the Redis client (created lazily, never at import time). */
  redis(): Redis;
  /** Clock in ms since the epoch. */
  now(): number;
  /** Uniform random numbers in [0, 1) for the simulator. */
  random(): number;
  /** Quote store; the isolate's shared store for `config` when absent. */
  quoteStore?: QuoteStore;
  /** Aborted when the process stops: drains finish their chunk and return. */
  signal?: AbortSignal;
}

/** Default dependencies for `config`: the isolate's shared Redis (or Cluster) client, real clock. */
export function defaultDeps(config: Config): Deps {
  return {
    config,
    redis() {
      if (config.redisClusterNodes === undefined) return getRedis(config.redisUrl);
      // ioredis's Cluster speaks the same commands as Redis; typed as Redis
      // because a union of the two has no callable overloads.
      return getClusterClient(
        config.redisClusterNodes,
        clusterCredentials(config.redisUrl),
      ) as unknown as Redis;
    },
    now: Date.now,
    random: Math.random,
  };
}

/** Largest request body any function accepts. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Rejects bodies over 64 KiB with 413, using Hono's bodyLimit. */
export function limitBody(): MiddlewareHandler {
  return bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError(c) {
      return c.json({ error: `Request body exceeds ${MAX_BODY_BYTES} bytes` }, 413);
    },
  });
}

/**
 * Guards operator routes. With FUNCTIONS_TOKEN set: Hono's bearerAuth, which
 * compares in constant time. Without it (unset or empty) the routes are open
 * only on a loopback listener off Deno Deploy; anywhere else they fail closed
 * with 503, since anyone who can reach the port could emit and drain.
 */
export function requireToken(config: Config): MiddlewareHandler {
  if (config.functionsToken !== undefined) {
    return bearerAuth({
      token: config.functionsToken,
      noAuthenticationHeader: { message: { error: "Missing bearer token" } },
      invalidToken: { message: { error: "Invalid bearer token" } },
      invalidAuthenticationHeader: { message: { error: "Malformed Authorization header" } },
    });
  }
  const open = !config.deployed && isLoopbackHost(config.host);
  return async function openOnLoopbackOnly(_c, next) {
    if (!open) {
      throw new UnavailableError(
        "FUNCTIONS_TOKEN is not set: operator routes stay closed unless the server listens on loopback only",
      );
    }
    await next();
  };
}

/**
 * Refuses operator POSTs whose Content-Type is not application/json with
 * 415; this also stops cross-site "simple" POSTs (text/plain forms), which
 * browsers send without asking.
 */
export function requireJson(): MiddlewareHandler {
  return async function jsonOnly(c, next) {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      return c.json(
        {
          error: `Request Content-Type must be application/json: got "${
            type === "" ? "none" : type.slice(0, 100)
          }"`,
        },
        415,
      );
    }
    await next();
  };
}

/** Reads an optional JSON object body; an empty body gives `{}`. */
export async function readJsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadRequestError("Request body is not valid JSON", { cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new BadRequestError("Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** An optional integer field of a request body: its name, range and default. */
export interface IntField {
  /** Field name. */
  name: string;
  /** Smallest value accepted. */
  min: number;
  /** Largest value accepted. */
  max: number;
  /** Value when the field is absent. */
  fallback: number;
}

/**
 * Reads an optional integer field within a range; 400 when it is out of range or not an integer.
 *
 * @example
 * ```ts
 * declare const body: Record<string, unknown>;
 * const count = intField(body, { name: "count", min: 1, max: 1000, fallback: 100 });
 * ```
 */
export function intField(body: Record<string, unknown>, field: IntField): number {
  const { name, min, max, fallback } = field;
  const value = body[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new BadRequestError(
      `Field "${name}" must be an integer from ${min} to ${max}: got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Rejects fields the endpoint does not know, so typos do not pass silently. */
export function onlyFields(body: Record<string, unknown>, allowed: string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `Unknown field "${unknown[0]}": allowed fields are ${allowed.join(", ")}`,
    );
  }
}

/** Seconds a caller should wait after a 503 from a Redis problem. */
const REDIS_RETRY_AFTER_SECONDS = 5;

/** Turns any error into the JSON error response; never leaks a stack trace or a secret. */
export function errorResponse(error: unknown, c: Context): Response {
  if (error instanceof HttpError) {
    const headers = error.status === 503 && !("Retry-After" in error.headers)
      ? { ...error.headers, "Retry-After": String(REDIS_RETRY_AFTER_SECONDS) }
      : error.headers;
    return c.json(
      { error: redact(error.message), ...error.details },
      error.status as 400,
      headers,
    );
  }
  if (error instanceof HTTPException) {
    const res = error.getResponse();
    if (res.headers.get("content-type")?.includes("json")) return res;
    return c.json({ error: error.message || "Request failed" }, error.status);
  }
  if (error instanceof DependencyError) {
    return c.json(
      { error: redact(error.message), dependency: error.dependency },
      503,
      { "Retry-After": String(REDIS_RETRY_AFTER_SECONDS) },
    );
  }
  const problem = redisProblem(error);
  if (problem !== undefined) {
    logRedisProblem(problem, error);
    return c.json({ error: describeRedisProblem(problem) }, 503, {
      "Retry-After": String(REDIS_RETRY_AFTER_SECONDS),
    });
  }
  console.error(`Unhandled error on ${c.req.method} ${c.req.path}: ${describeError(error)}`);
  return c.json({ error: "Internal server error" }, 500);
}

const lastProblemLog = new Map<RedisProblem, number>();

/** Logs a Redis problem as one short line, at most once a minute per kind. */
function logRedisProblem(problem: RedisProblem, error: unknown): void {
  const now = Date.now();
  if (now - (lastProblemLog.get(problem) ?? 0) < 60000) return;
  lastProblemLog.set(problem, now);
  console.error(`${describeRedisProblem(problem)} (${describeError(error)})`);
}

/** Installs the shared error and not-found handlers on a function's app. */
export function installErrorHandling(app: Hono): Hono {
  app.onError(errorResponse);
  app.notFound(function notFound(c) {
    return c.json({ error: `Route not found: ${c.req.method} ${c.req.path}` }, 404);
  });
  return app;
}
