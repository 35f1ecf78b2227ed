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

Deno.test("config refuses cron expressions out of range or that can never fire, before Deno.cron sees them", () => {
  for (
    const schedule of [
      "99 * * * *",
      "0 0 31 2 *",
      "0 0 30 2 *",
      "0 0 31 4,6,9,11 *",
      "* * * * 0",
      "*/0 * * * *",
    ]
  ) {
    assert.throws(() => loadConfig({ EMIT_SCHEDULE: schedule }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^Cannot read EMIT_SCHEDULE as /);
      assert.ok(error.message.includes(`"${schedule}"`), error.message);
      return true;
    });
  }
  for (const schedule of ["*/5 * * * *", "0 9 * * MON-FRI", "0 0 29 2 *", "15,45 8-17 * * *"]) {
    assert.equal(loadConfig({ DRAIN_SCHEDULE: schedule }).drainSchedule, schedule);
  }
});

Deno.test("config refuses a CLAIM_IDLE_MS that a running drain could outlast", () => {
  assert.throws(
    () => loadConfig({ CLAIM_IDLE_MS: "20000", DRAIN_BUDGET_MS: "20000" }),
    /CLAIM_IDLE_MS as it must exceed DRAIN_BUDGET_MS \(20000\) plus 1000 ms/,
  );
  assert.throws(() => loadConfig({ CLAIM_IDLE_MS: "5000" }), /CLAIM_IDLE_MS.*"5000"/);
  assert.equal(loadConfig({ CLAIM_IDLE_MS: "21001" }).claimIdleMs, 21001);
  // Short values for tests: the margin shrinks with the budget.
  assert.equal(loadConfig({ CLAIM_IDLE_MS: "50", DRAIN_BUDGET_MS: "25" }).claimIdleMs, 50);
});

Deno.test("config reports every problem at once, one line each, with passwords redacted", () => {
  assert.throws(
    () =>
      loadConfig({
        REDIS_URL: "http://app:hunter2pw@cache:6379",
        DATABASE_URL: "mysql://db:pgsecret99@db/x",
        PORT: "eighty",
        EMIT_SCHEDULE: "99 * * * *",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 4, error.message);
      assert.equal(error.message.split("\n").length, 4);
      assert.doesNotMatch(error.message, /hunter2pw|pgsecret99/);
      assert.match(error.message, /http:\/\/app:\*\*\*@cache:6379/);
      return true;
    },
  );
});

Deno.test("config listens on loopback unless HOST says otherwise, and an empty token is no token", () => {
  assert.equal(loadConfig({}).host, "127.0.0.1");
  assert.equal(loadConfig({ HOST: "0.0.0.0" }).host, "0.0.0.0");
  assert.equal(loadConfig({ FUNCTIONS_TOKEN: "" }).functionsToken, undefined);
  assert.equal(loadConfig({ FUNCTIONS_TOKEN: "  " }).functionsToken, undefined);
  assert.throws(() => loadConfig({ HOST: "not a host!" }), /HOST.*"not a host!"/);
});
