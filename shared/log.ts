/**
 * Log lines. By default one human-readable line per event, as people read
 * it in a terminal; with LOG_FORMAT=json one JSON object per line (time,
 * level, msg, the invocation's group and id, the trace id while a span is
 * active) for a log pipeline. Every string is redacted, so no token or
 * password reaches a log whichever format is used.
 *
 * Debug lines (one per drain and per emit run) are written only in json
 * format: a pipeline filters them by level, while a terminal stays quiet.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { describeError, redact } from "./redact.ts";

/** How lines are written: "text" for people, "json" for one object per line. */
export type LogFormat = "text" | "json";

/** Severity of a line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra fields of one line; an `error` field is shown as its redacted one-line description. */
export interface LogFields {
  /** Consumer group the line is about. */
  group?: string;
  /** Error the line reports. */
  error?: unknown;
  /** Any other field; strings are redacted. */
  [name: string]: unknown;
}

let format: LogFormat = "text";

/** Fields every line inside one invocation carries: its group and invocation id. */
const context = new AsyncLocalStorage<LogFields>();

/** Sets the format of every later line; main.ts calls it with LOG_FORMAT once config is read. */
export function setLogFormat(next: LogFormat): void {
  if (next !== "text" && next !== "json") {
    throw new RangeError(`Cannot set the log format as it must be text or json: got "${next}"`);
  }
  format = next;
}

/** The current log format. */
export function logFormat(): LogFormat {
  return format;
}

/**
 * Runs `body` with `fields` added to every line it logs, including lines of
 * the calls it awaits (AsyncLocalStorage); nested contexts add to outer ones.
 */
export function withLogContext<T>(fields: LogFields, body: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, body);
}

/** A new invocation id: short, random, unique enough to tell invocations apart in a log. */
export function newInvocationId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

function clean(value: unknown): unknown {
  if (typeof value === "string") return redact(value);
  if (value instanceof Error) return describeError(value);
  if (Array.isArray(value)) return value.map(clean);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
  }
  return value;
}

/** The line `log` writes, without writing it; exported for tests. */
export function formatLine(level: LogLevel, msg: string, fields: LogFields = {}): string {
  if (format === "text") {
    const text = redact(msg);
    return fields.error === undefined ? text : `${text}: ${describeError(fields.error)}`;
  }
  const line: Record<string, unknown> = {
    time: new Date().toISOString(),
    level,
    msg: redact(msg),
  };
  const span = trace.getActiveSpan()?.spanContext();
  if (span !== undefined && isSpanContextValid(span)) {
    line.trace_id = span.traceId;
    line.span_id = span.spanId;
  }
  for (const [name, value] of Object.entries({ ...context.getStore(), ...fields })) {
    if (value !== undefined && !(name in line)) {
      line[name] = name === "error" ? describeError(value) : clean(value);
    }
  }
  return JSON.stringify(line);
}

/**
 * Writes one line: info to stdout, warn and error to stderr (console.warn /
 * console.error, which Deno's OpenTelemetry also exports as log records).
 *
 * @example
 * ```ts
 * log("warn", "Drain cron: Redis is unavailable", { group: "price-alerts" });
 * ```
 */
export function log(level: LogLevel, msg: string, fields: LogFields = {}): void {
  if (level === "debug" && format === "text") return;
  const line = formatLine(level, msg, fields);
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
