import assert from "node:assert/strict";
import { ConfigError, DEFAULT_SYMBOLS, loadConfig } from "../shared/config.ts";

Deno.test("config defaults match the documented settings", () => {
  const config = loadConfig({});
  assert.equal(config.redisUrl, "redis://127.0.0.1:6379");
  assert.equal(config.port, 8000);
  assert.equal(config.functionsToken, undefined);
  assert.equal(config.streamKey, "stock_quotes");
  assert.equal(config.alertsKey, "stock_alerts");
  assert.equal(config.deadLetterKey, "stock_quotes:dead");
  assert.deepEqual(config.symbols, DEFAULT_SYMBOLS);
  assert.equal(config.cronEnabled, true);
  assert.equal(config.emitSchedule, "* * * * *");
  assert.equal(config.drainSchedule, "* * * * *");
  assert.equal(config.drainBudgetMs, 20000);
  assert.equal(config.streamMaxlen, 100000);
  assert.equal(config.priceAlertPercent, 2.0);
  assert.equal(config.volumeSpikeFactor, 3.0);
  assert.equal(config.pendingWarn, 100);
  assert.equal(config.claimIdleMs, 60000);
  assert.equal(config.maxDeliveries, 5);
  assert.equal(config.retryDelayMs, 1000);
  assert.equal(config.consumerIdleMs, 3600000);
  assert.equal(config.maxLag, 1000000);
  assert.equal(config.deployed, false);
});

Deno.test("config reads every variable it is given", () => {
  const config = loadConfig({
    REDIS_URL: "rediss://user:pw@example.test:6380/2",
    PORT: "9000",
    FUNCTIONS_TOKEN: "secret",
    STREAM_KEY: "q",
    ALERTS_KEY: "a",
    SYMBOLS: "IBM, BRK.B ,IBM",
    CRON_ENABLED: "false",
    EMIT_SCHEDULE: "*/5 * * * *",
    DRAIN_SCHEDULE: "0 * * * *",
    DRAIN_BUDGET_MS: "5000",
    STREAM_MAXLEN: "10",
    PRICE_ALERT_PERCENT: "1.5",
    VOLUME_SPIKE_FACTOR: "4",
    PENDING_WARN: "7",
    DENO_DEPLOYMENT_ID: "abc",
  });
  assert.equal(config.redisUrl, "rediss://user:pw@example.test:6380/2");
  assert.equal(config.port, 9000);
  assert.equal(config.functionsToken, "secret");
  assert.equal(config.streamKey, "q");
  assert.equal(config.deadLetterKey, "q:dead");
  assert.deepEqual(config.symbols, ["IBM", "BRK.B"]);
  assert.equal(config.cronEnabled, false);
  assert.equal(config.emitSchedule, "*/5 * * * *");
  assert.equal(config.drainSchedule, "0 * * * *");
  assert.equal(config.drainBudgetMs, 5000);
  assert.equal(config.streamMaxlen, 10);
  assert.equal(config.priceAlertPercent, 1.5);
  assert.equal(config.volumeSpikeFactor, 4);
  assert.equal(config.pendingWarn, 7);
  assert.equal(config.deployed, true);
});

Deno.test("config refuses an invalid value naming the variable and the value", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ REDIS_URL: "http://x" }, /REDIS_URL.*"http:\/\/x"/],
    [{ PORT: "eighty" }, /PORT.*"eighty"/],
    [{ PORT: "70000" }, /PORT.*"70000"/],
    [{ SYMBOLS: "aapl" }, /SYMBOLS.*"aapl"/],
    [{ CRON_ENABLED: "maybe" }, /CRON_ENABLED.*"maybe"/],
    [{ EMIT_SCHEDULE: "*/5 * * *" }, /EMIT_SCHEDULE.*"\*\/5 \* \* \*"/],
    [{ DRAIN_BUDGET_MS: "60000" }, /DRAIN_BUDGET_MS.*"60000"/],
    [{ STREAM_MAXLEN: "1.5" }, /STREAM_MAXLEN.*"1.5"/],
    [{ PRICE_ALERT_PERCENT: "-1" }, /PRICE_ALERT_PERCENT.*"-1"/],
    [{ STREAM_KEY: "has space" }, /STREAM_KEY.*"has space"/],
    [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL.*"mysql:\/\/x"/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      assert.match(error.message, /^[A-Z]/);
      assert.doesNotMatch(error.message, /\.$/);
      return true;
    });
  }
});
