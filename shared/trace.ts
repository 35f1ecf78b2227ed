/**
 * Spans for function invocations and cron runs, through the OpenTelemetry
 * API. With OTEL_DENO=true Deno registers the global tracer provider and
 * exports spans over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL=http/json); without it the API's no-op tracer
 * makes every span free, so code traces unconditionally.
 *
 * @module
 */

import { type Attributes, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { newInvocationId, withLogContext } from "./log.ts";
import { describeError } from "./redact.ts";

/** Name of the tracer, shown as the instrumentation scope. */
export const TRACER_NAME = "tickstream";

/** Options of {@linkcode withSpan}. */
export interface WithSpanOptions<T> {
  /**
   * Attributes known when the span starts, e.g. `tickstream.group`.
   * @default {{}}
   */
  attributes?: Attributes;
  /**
   * Attributes taken from the body's result when it succeeds, e.g. entries acknowledged.
   * @default {undefined}
   */
  resultAttributes?: (result: T) => Attributes;
}

/**
 * Runs `body` inside a new active span named `name` (child of any active
 * span, such as Deno's HTTP server span), and inside a log context with a
 * new invocation id and the span's `tickstream.group`, so its log lines
 * carry both. A thrown error is recorded on the span, which ends with status
 * ERROR, and rethrown.
 *
 * @example
 * ```ts
 * declare function drain(): Promise<{ acked: number }>;
 * const result = await withSpan("drain price-alerts", () => drain(), {
 *   attributes: { "tickstream.group": "price-alerts" },
 *   resultAttributes: (r) => ({ "tickstream.acked": r.acked }),
 * });
 * ```
 */
export function withSpan<T>(
  name: string,
  body: (span: Span) => Promise<T>,
  options: WithSpanOptions<T> = {},
): Promise<T> {
  if (typeof name !== "string" || name === "") {
    throw new RangeError(`Cannot start a span as 'name' must be a non-empty string: got ${name}`);
  }
  const { attributes = {}, resultAttributes } = options;
  const group = attributes["tickstream.group"];
  const fields = {
    invocation: newInvocationId(),
    group: typeof group === "string" ? group : undefined,
  };
  return trace.getTracer(TRACER_NAME).startActiveSpan(
    name,
    { attributes },
    function traced(span) {
      return withLogContext(fields, async function run() {
        try {
          const result = await body(span);
          if (resultAttributes !== undefined) span.setAttributes(resultAttributes(result));
          return result;
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
          throw error;
        } finally {
          span.end();
        }
      });
    },
  );
}

/** The span attributes of a drain's result, under the `tickstream.` names docs/metrics.md lists. */
export function drainAttributes(result: {
  read: number;
  acked: number;
  failed: number;
  deadLettered: number;
  lag: number | null;
}): Attributes {
  const out: Attributes = {
    "tickstream.read": result.read,
    "tickstream.acked": result.acked,
    "tickstream.failed": result.failed,
    "tickstream.dead_lettered": result.deadLettered,
  };
  if (result.lag !== null) out["tickstream.lag"] = result.lag;
  return out;
}
