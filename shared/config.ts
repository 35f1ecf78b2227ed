/**
 * Every setting, read from environment variables once and validated. An
 * invalid value stops start-up with a message naming the variable and value.
 *
 * @module
 */

import type { AnalysisSettings } from "./market/analysis.ts";
import { checkCron } from "./cron.ts";
import { SYMBOL_PATTERN } from "./market/quotes.ts";
import { redactUrl, registerSecret } from "./redact.ts";

/** Raised when environment variables hold invalid values; one line per problem. */
export class ConfigError extends Error {
  /** Every problem found, one line each, naming the variable and its (redacted) value. */
  readonly problems: string[];
  /** Creates the error from its problems. */
  constructor(problems: string[], options?: ErrorOptions) {
    super(problems.join("\n"), options);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** The validated settings of one process; the analyses' thresholds come from AnalysisSettings. */
export interface Config extends AnalysisSettings {
  /** Redis connection URL (redis:// or rediss://). */
  redisUrl: string;
  /** HTTP port. */
  port: number;
  /** Address the server listens on (HOST); loopback unless asked otherwise. */
  host: string;
  /** Bearer token protecting the operator functions; undefined when unset. */
  functionsToken: string | undefined;
  /** Bearer token of GET /metrics (METRICS_TOKEN); undefined: FUNCTIONS_TOKEN guards it. */
  metricsToken: string | undefined;
  /** Log line format (LOG_FORMAT): "text" for people, "json" for one object per line. */
  logFormat: "text" | "json";
  /** True on Deno Deploy (DENO_DEPLOYMENT_ID set). */
  deployed: boolean;
  /** Deno Deploy deployment id (DENO_DEPLOYMENT_ID), part of consumer names; undefined locally. */
  deploymentId: string | undefined;
  /** Quote stream key. */
  streamKey: string;
  /** Alerts stream key. */
  alertsKey: string;
  /** Dead-letter stream key. */
  deadLetterKey: string;
  /** Symbols the simulator emits by default. */
  symbols: string[];
  /** Whether main.ts registers the crons. */
  cronEnabled: boolean;
  /** Cron schedule of the emit job. */
  emitSchedule: string;
  /** Cron schedule of the drain job. */
  drainSchedule: string;
  /** Time budget of one cron drain in ms. */
  drainBudgetMs: number;
  /** Entries every group is done with that the quote stream keeps. */
  streamMaxlen: number;
  /** Approximate length the alerts stream keeps. */
  alertsMaxlen: number;
  /** Pending count per group above which /report warns. */
  pendingWarn: number;
  /** Idle time after which a pending entry is reclaimed, in ms. */
  claimIdleMs: number;
  /** Deliveries after which a failing entry is dead-lettered. */
  maxDeliveries: number;
  /** Delay before the first retry of a failed entry, in ms; doubles with each delivery. */
  retryDelayMs: number;
  /** Idle time after which a consumer without pending entries is removed, in ms. */
  consumerIdleMs: number;
  /** Slowest group's lag above which /emit-quotes answers 429. */
  maxLag: number;
  /** Path of the SQLite quote store. */
  databasePath: string;
  /** PostgreSQL URL of the quote store; undefined for SQLite. */
  databaseUrl: string | undefined;
  /** Longest life of one live-feed connection, in ms. */
  liveMaxMs: number;
  /** Most live-feed connections served at once. */
  liveMaxClients: number;
  /** Market time between two ticks of the simulator, in ms. */
  tickIntervalMs: number;
  /** How long one paced emit cron run keeps emitting, in ms; 0 emits one tick. */
  emitBudgetMs: number;
  /** Physical streams the quote stream is split into (STREAM_PARTITIONS); 1 keeps one stream. */
  streamPartitions: number;
  /** Redis Cluster seed nodes (REDIS_CLUSTER_NODES, host:port list); undefined for one Redis. */
  redisClusterNodes: string | undefined;
  /** (group, partition) drains the drain cron runs at once (DRAIN_CONCURRENCY). */
  drainConcurrency: number;
  /** Replicas emits and commits wait for (REDIS_WAIT_REPLICAS); 0 does not wait. */
  redisWaitReplicas: number;
  /** Longest wait for those replicas, in ms (REDIS_WAIT_TIMEOUT_MS). */
  redisWaitTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

/** How a numeric variable is read: its default and the values it may take. */
interface NumberRule {
  /** Value when the variable is unset or blank. */
  fallback: number;
  /** Smallest value allowed. */
  min: number;
  /** Largest value allowed. */
  max: number;
}

/** Reads typed variables from one environment; every error names the variable and its value. */
class EnvReader {
  readonly #env: Env;
  /** Problems found so far, one line each. */
  readonly problems: string[] = [];

  constructor(env: Env) {
    this.#env = env;
  }

  problem(line: string): void {
    this.problems.push(line);
  }

  text(name: string, fallback: string): string {
    const value = this.#env[name];
    return value === undefined || value.trim() === "" ? fallback : value.trim();
  }

  integer(name: string, rule: NumberRule): number {
    return this.#numeric(name, { ...rule, integer: true });
  }

  number(name: string, rule: NumberRule): number {
    return this.#numeric(name, { ...rule, integer: false });
  }

  #numeric(name: string, rule: NumberRule & { integer: boolean }): number {
    const { fallback, min, max, integer } = rule;
    const raw = this.#env[name];
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = Number(raw.trim());
    if (
      !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min ||
      value > max
    ) {
      const kind = integer ? "an integer" : "a number";
      this.problem(
        `Cannot read ${name} as it must be ${kind} from ${min} to ${max}: current value is "${raw}"`,
      );
      return fallback;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.#env[name];
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(value)) return true;
    if (["0", "false", "no", "off"].includes(value)) return false;
    this.problem(`Cannot read ${name} as it must be true or false: current value is "${raw}"`);
    return fallback;
  }

  key(name: string, fallback: string): string {
    const value = this.text(name, fallback);
    if (!/^[\w:.\-{}]{1,200}$/.test(value)) {
      this.problem(
        `Cannot read ${name} as it must be 1 to 200 of letters, digits and _:.-{}: current value is "${value}"`,
      );
    }
    return value;
  }

  schedule(name: string): string {
    const value = this.text(name, "* * * * *");
    try {
      checkCron(value);
    } catch (error) {
      this.problem(
        `Cannot read ${name} as ${
          (error as Error).message
        } (a 5-field UTC cron expression such as "*/5 * * * *"): current value is "${value}"`,
      );
      return "* * * * *";
    }
    return value;
  }
}

/** Default symbol list of the simulator. */
export const DEFAULT_SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA", "NFLX"];

/**
 * Reads and validates every setting from `env`.
 *
 * @example
 * ```ts
 * const config = loadConfig({ REDIS_URL: "redis://127.0.0.1:6380" });
 * config.streamKey; // "stock_quotes"
 * ```
 * @throws {ConfigError} When a variable holds an invalid value.
 */
export function loadConfig(env: Env = Deno.env.toObject()): Config {
  const read = new EnvReader(env);
  const redisUrl = read.text("REDIS_URL", "redis://127.0.0.1:6379");
  let parsed: URL | undefined;
  try {
    parsed = new URL(redisUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")) {
    read.problem(
      `Cannot read REDIS_URL as it must be a redis:// or rediss:// URL: current value is "${
        redactUrl(redisUrl)
      }"`,
    );
  } else {
    registerSecret(decodeURIComponent(parsed.password));
  }
  const symbols = read.text("SYMBOLS", DEFAULT_SYMBOLS.join(","))
    .split(",").map((s) => s.trim()).filter((s) => s !== "");
  const badSymbol = symbols.find((s) => !SYMBOL_PATTERN.test(s));
  if (symbols.length === 0 || badSymbol !== undefined) {
    read.problem(
      `Cannot read SYMBOLS as each must match ${SYMBOL_PATTERN}: current value is "${env.SYMBOLS}"`,
    );
  }
  const token = (env.FUNCTIONS_TOKEN ?? "").trim();
  registerSecret(token);
  const metricsToken = (env.METRICS_TOKEN ?? "").trim();
  registerSecret(metricsToken);
  const rawLogFormat = read.text("LOG_FORMAT", "text");
  const logFormat = rawLogFormat.toLowerCase();
  if (logFormat !== "text" && logFormat !== "json") {
    read.problem(
      `Cannot read LOG_FORMAT as it must be text or json: current value is "${rawLogFormat}"`,
    );
  }
  const clusterNodes = read.text("REDIS_CLUSTER_NODES", "");
  const badNode = clusterNodes.split(",").map((n) => n.trim()).find((n) =>
    !/^(\[[0-9a-f:]+\]|[a-z0-9.-]+):\d{1,5}$/i.test(n) ||
    Number(n.slice(n.lastIndexOf(":") + 1)) > 65535
  );
  if (clusterNodes !== "" && badNode !== undefined) {
    read.problem(
      `Cannot read REDIS_CLUSTER_NODES as it must be host:port seed nodes separated by commas: "${badNode}" is not one`,
    );
  }
  const databaseUrl = read.text("DATABASE_URL", "");
  if (databaseUrl !== "") {
    let pg: URL | undefined;
    try {
      pg = new URL(databaseUrl);
    } catch {
      pg = undefined;
    }
    if (!pg || !/^postgres(ql)?:$/.test(pg.protocol) || pg.hostname === "") {
      read.problem(
        `Cannot read DATABASE_URL as it must be a postgres://user@host/database URL: current value is "${
          redactUrl(databaseUrl)
        }"`,
      );
    } else {
      registerSecret(decodeURIComponent(pg.password));
    }
  }
  const host = read.text("HOST", "127.0.0.1");
  if (!/^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-f:]+\]?|[a-z0-9.-]+)$/i.test(host)) {
    read.problem(
      `Cannot read HOST as it must be an IP address or host name such as 127.0.0.1 or 0.0.0.0: current value is "${host}"`,
    );
  }
  const databasePath = read.text("DATABASE_PATH", "./data/quotes.db");
  if (databasePath.includes("\0")) {
    read.problem(
      `Cannot read DATABASE_PATH as it must be a file path: current value is "${databasePath}"`,
    );
  }
  const streamKey = read.key("STREAM_KEY", "stock_quotes");
  const drainBudgetMs = read.integer("DRAIN_BUDGET_MS", { fallback: 20000, min: 1, max: 55000 });
  const claimIdleMs = read.integer("CLAIM_IDLE_MS", { fallback: 60000, min: 10, max: 86400000 });
  // A live drain renews its entries' ownership only by finishing chunks: an
  // idle time shorter than its budget lets another invocation claim them.
  const claimMargin = Math.min(1000, Math.ceil(drainBudgetMs / 10));
  if (claimIdleMs <= drainBudgetMs + claimMargin) {
    read.problem(
      `Cannot read CLAIM_IDLE_MS as it must exceed DRAIN_BUDGET_MS (${drainBudgetMs}) plus ${claimMargin} ms, or running drains lose their entries to other invocations: current value is "${claimIdleMs}"`,
    );
  }
  const config: Config = {
    redisUrl,
    port: read.integer("PORT", { fallback: 8000, min: 0, max: 65535 }),
    host,
    functionsToken: token === "" ? undefined : token,
    metricsToken: metricsToken === "" ? undefined : metricsToken,
    logFormat: logFormat === "json" ? "json" : "text",
    deployed: (env.DENO_DEPLOYMENT_ID ?? "") !== "",
    deploymentId: (env.DENO_DEPLOYMENT_ID ?? "") === "" ? undefined : env.DENO_DEPLOYMENT_ID,
    streamKey,
    alertsKey: read.key("ALERTS_KEY", "stock_alerts"),
    deadLetterKey: read.key("DEAD_LETTER_KEY", `${streamKey}:dead`),
    symbols: [...new Set(symbols)],
    cronEnabled: read.boolean("CRON_ENABLED", true),
    emitSchedule: read.schedule("EMIT_SCHEDULE"),
    drainSchedule: read.schedule("DRAIN_SCHEDULE"),
    drainBudgetMs,
    streamMaxlen: read.integer("STREAM_MAXLEN", { fallback: 100000, min: 1, max: 1e9 }),
    alertsMaxlen: read.integer("ALERTS_MAXLEN", { fallback: 10000, min: 1, max: 1e9 }),
    priceAlertPercent: read.number("PRICE_ALERT_PERCENT", { fallback: 2.0, min: 0.01, max: 100 }),
    volumeSpikeFactor: read.number("VOLUME_SPIKE_FACTOR", { fallback: 3.0, min: 1, max: 1000 }),
    pendingWarn: read.integer("PENDING_WARN", { fallback: 100, min: 0, max: 1e9 }),
    claimIdleMs,
    maxDeliveries: read.integer("MAX_DELIVERIES", { fallback: 5, min: 1, max: 1000 }),
    retryDelayMs: read.integer("RETRY_DELAY_MS", { fallback: 1000, min: 0, max: 86400000 }),
    consumerIdleMs: read.integer("CONSUMER_IDLE_MS", {
      fallback: 3600000,
      min: 1000,
      max: 30 * 86400000,
    }),
    maxLag: read.integer("MAX_LAG", { fallback: 1000000, min: 1, max: 1e9 }),
    databasePath,
    databaseUrl: databaseUrl === "" ? undefined : databaseUrl,
    liveMaxMs: read.integer("LIVE_MAX_MS", { fallback: 25000, min: 100, max: 3600000 }),
    liveMaxClients: read.integer("LIVE_MAX_CLIENTS", { fallback: 200, min: 1, max: 100000 }),
    tickIntervalMs: read.integer("TICK_INTERVAL_MS", { fallback: 1000, min: 1, max: 3600000 }),
    emitBudgetMs: read.integer("EMIT_BUDGET_MS", { fallback: 59000, min: 0, max: 3600000 }),
    streamPartitions: read.integer("STREAM_PARTITIONS", { fallback: 1, min: 1, max: 256 }),
    redisClusterNodes: clusterNodes === "" ? undefined : clusterNodes,
    drainConcurrency: read.integer("DRAIN_CONCURRENCY", { fallback: 8, min: 1, max: 256 }),
    redisWaitReplicas: read.integer("REDIS_WAIT_REPLICAS", { fallback: 0, min: 0, max: 16 }),
    redisWaitTimeoutMs: read.integer("REDIS_WAIT_TIMEOUT_MS", {
      fallback: 1000,
      min: 1,
      max: 60000,
    }),
    priceAlertRearmPercent: read.number("PRICE_ALERT_REARM_PERCENT", {
      fallback: 0.5,
      min: 0,
      max: 100,
    }),
    volumeSpikeGapTicks: read.integer("VOLUME_SPIKE_GAP_TICKS", {
      fallback: 10,
      min: 0,
      max: 100000,
    }),
    crossGapPercent: read.number("CROSS_GAP_PERCENT", { fallback: 0.3, min: 0, max: 100 }),
    crossConfirmTicks: read.integer("CROSS_CONFIRM_TICKS", { fallback: 5, min: 1, max: 1000 }),
    rsiOverbought: read.number("RSI_OVERBOUGHT", { fallback: 75, min: 50, max: 100 }),
    rsiOversold: read.number("RSI_OVERSOLD", { fallback: 25, min: 0, max: 50 }),
    rsiRearmPoints: read.number("RSI_REARM_POINTS", { fallback: 10, min: 0, max: 50 }),
    sessionWarmupTicks: read.integer("SESSION_WARMUP_TICKS", {
      fallback: 60,
      min: 0,
      max: 100000,
    }),
    sessionMarginPercent: read.number("SESSION_MARGIN_PERCENT", {
      fallback: 0.2,
      min: 0,
      max: 100,
    }),
    sessionAlertGapTicks: read.integer("SESSION_ALERT_GAP_TICKS", {
      fallback: 50,
      min: 0,
      max: 100000,
    }),
  };
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}

/** True when `host` is a loopback address, where an open operator route reaches only this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
