import assert from "node:assert/strict";
import { createApp } from "../shared/app.ts";
import { resetGroupCache } from "../shared/queue/mod.ts";
import { createQuoteStore } from "../shared/store/quote_store.ts";
import { startRedis, type TestRedis } from "./_redis_server.ts";
import { siteConfig, siteDeps } from "./_site.ts";

const OPERATOR_ROUTES: [string, string][] = [
  ["POST", "/emit-quotes"],
  ["POST", "/drain/price-alerts"],
  ["GET", "/report"],
  ["GET", "/dead-letters"],
  ["POST", "/dead-letters/price-alerts/replay"],
];

async function withApp(
  env: Record<string, string>,
  fn: (app: ReturnType<typeof createApp>, redis: TestRedis) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "tickstream-closed-" });
  const config = siteConfig(redis.url, dir, env);
  const store = createQuoteStore(config);
  resetGroupCache();
  try {
    await fn(createApp(siteDeps(config, { redis: redis.client(), quoteStore: store })), redis);
  } finally {
    await store.close();
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

function request(method: string, headers: Record<string, string> = {}): RequestInit {
  return method === "POST"
    ? { method, headers: { "content-type": "application/json", ...headers }, body: "{}" }
    : { method, headers };
}

for (const token of [undefined, "", "   "]) {
  Deno.test(`without a token (${JSON.stringify(token)}) on a non-loopback HOST every operator route answers 503 and nothing is written`, async () => {
    const env: Record<string, string> = { HOST: "0.0.0.0" };
    if (token !== undefined) env.FUNCTIONS_TOKEN = token;
    await withApp(env, async (app, redis) => {
      for (const [method, path] of OPERATOR_ROUTES) {
        const res = await app.request(path, request(method));
        assert.equal(res.status, 503, `${method} ${path}`);
        assert.match((await res.json()).error, /FUNCTIONS_TOKEN is not set/);
        assert.ok(Number(res.headers.get("retry-after")) >= 1);
      }
      assert.equal(await redis.client().exists("stock_quotes"), 0);
      assert.equal((await app.request("/health")).status, 200, "health stays public");
      assert.equal((await app.request("/api/stocks")).status, 200, "the public API stays open");
    });
  });
}

Deno.test("without a token on the default loopback HOST the operator routes are open", async () => {
  await withApp({}, async (app) => {
    const res = await app.request("/emit-quotes", request("POST"));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await app.request("/report")).status, 200);
  });
});

Deno.test("operator POSTs without Content-Type application/json answer 415, so cross-site simple POSTs change nothing", async () => {
  await withApp({}, async (app, redis) => {
    for (const [method, path] of OPERATOR_ROUTES.filter(([m]) => m === "POST")) {
      for (const type of [undefined, "text/plain", "application/x-www-form-urlencoded"]) {
        const headers: Record<string, string> = type === undefined ? {} : { "content-type": type };
        const res = await app.request(path, { method, headers, body: '{"ticks": 5}' });
        assert.equal(res.status, 415, `${path} ${type}`);
        assert.match((await res.json()).error, /Content-Type must be application\/json/);
      }
    }
    assert.equal(await redis.client().exists("stock_quotes"), 0);
    const ok = await app.request("/emit-quotes", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: '{"ticks": 1}',
    });
    assert.equal(ok.status, 200);
  });
});

Deno.test("with FUNCTIONS_TOKEN set on any HOST a wrong token answers 401 and the right one 200", async () => {
  await withApp({ HOST: "0.0.0.0", FUNCTIONS_TOKEN: "tok-123456" }, async (app) => {
    for (const [method, path] of OPERATOR_ROUTES) {
      const missing = await app.request(path, request(method));
      assert.equal(missing.status, 401, `${path} without token`);
      const wrong = await app.request(
        path,
        request(method, { authorization: "Bearer tok-123457" }),
      );
      assert.equal(wrong.status, 401, `${path} wrong token`);
    }
    const right = await app.request(
      "/emit-quotes",
      request("POST", { authorization: "Bearer tok-123456" }),
    );
    assert.equal(right.status, 200);
  });
});
