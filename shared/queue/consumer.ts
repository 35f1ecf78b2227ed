/**
 * Consumer names: one per process and trigger, the same on every call, so a
 * group keeps a handful of consumers instead of one per invocation.
 *
 * @module
 */

/** Options of {@linkcode consumerName}. */
export interface ConsumerNameOptions {
  /**
   * Deployment id (e.g. Deno Deploy's), named instead of the host.
   * @default {undefined}
   */
  deploymentId?: string;
}

/**
 * The consumer name of this process for `trigger` ("http", "cron"):
 * `trigger@host:pid`. Invocations that share it are still serialized by the
 * group's fenced lease.
 *
 * @example
 * ```ts
 * consumerName("cron"); // "cron@my-host:4242"
 * ```
 */
export function consumerName(trigger: string, options: ConsumerNameOptions = {}): string {
  const deployment = options.deploymentId;
  let host = "local";
  try {
    host = deployment ? `deploy-${deployment}` : Deno.hostname();
  } catch {
    // Hosts without the sys permission keep "local".
  }
  return `${trigger}@${host}:${Deno.pid}`;
}
