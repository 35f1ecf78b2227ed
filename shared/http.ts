/**
 * What every HTTP function shares: its dependencies, the token guard, the
 * body limit, JSON body parsing and the one place errors become responses.
 *
 * @module
 */

import type { Context, Hono, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { Redis } from "ioredis";
import type { Config } from "./config.ts";
import { DependencyError } from "./dependency.ts";
import { BadRequestError, HttpError, UnavailableError } from "./errors.ts";
import type { QuoteStore } from "./quote_store.ts";
import { getRedis, isRedisUnavailable } from "./redis.ts";

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
}

/** Default dependencies for `config`: the isolate's shared Redis client, real clock. */
export function defaultDeps(config: Config): Deps {
  return {
    config,
    redis() {
      return getRedis(config.redisUrl);
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
 * Guards operator routes: Hono's bearerAuth when FUNCTIONS_TOKEN is set;
 * open when unset and not deployed; 503 when unset on Deno Deploy.
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
  return async function openWhenLocal(_c, next) {
    if (config.deployed) {
      throw new UnavailableError("FUNCTIONS_TOKEN is not configured on this deployment");
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

/** Turns any error into the JSON error response; never leaks a stack trace. */
export function errorResponse(error: unknown, c: Context): Response {
  if (error instanceof HttpError) {
    return c.json({ error: error.message, ...error.details }, error.status as 400, error.headers);
  }
  if (error instanceof HTTPException) {
    const res = error.getResponse();
    if (res.headers.get("content-type")?.includes("json")) return res;
    return c.json({ error: error.message || "Request failed" }, error.status);
  }
  if (error instanceof DependencyError) {
    return c.json(
      { error: error.message, dependency: error.dependency },
      503,
      { "Retry-After": "5" },
    );
  }
  if (isRedisUnavailable(error)) {
    return c.json({ error: `Redis is unavailable: ${(error as Error).message}` }, 503);
  }
  console.error("Unhandled error", error);
  return c.json({ error: "Internal server error" }, 500);
}

/** Installs the shared error and not-found handlers on a function's app. */
export function installErrorHandling(app: Hono): Hono {
  app.onError(errorResponse);
  app.notFound(function notFound(c) {
    return c.json({ error: `Route not found: ${c.req.method} ${c.req.path}` }, 404);
  });
  return app;
}
