import assert from "node:assert/strict";
import { createDashboardApp } from "../functions/dashboard.ts";
import { loadConfig } from "../shared/config.ts";
import type { Deps } from "../shared/http.ts";
import { bundleDashboard } from "../scripts/bundle_dashboard.ts";

function deps(env: Record<string, string> = {}): Deps {
  const config = loadConfig({ CRON_ENABLED: "false", ...env });
  return {
    config,
    redis() {
      throw new Error("The dashboard page must not need Redis");
    },
    now: Date.now,
    random: Math.random,
  };
}

Deno.test("GET / serves the dashboard page with its development buttons switched on locally", async () => {
  const app = createDashboardApp(deps());
  const response = await app.request("/");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
  const csp = response.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  const html = await response.text();
  assert.match(html, /<meta name="tickstream-dev" content="true">/);
  assert.match(html, /<script type="module" src="\/static\/dashboard.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/static\/dashboard.css">/);
  // Nothing is loaded from another origin.
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
});

Deno.test("GET / hides the development buttons when FUNCTIONS_TOKEN is set or deployed", async () => {
  const envs: Record<string, string>[] = [{ FUNCTIONS_TOKEN: "secret" }, {
    DENO_DEPLOYMENT_ID: "abc",
  }];
  for (const env of envs) {
    const html = await (await createDashboardApp(deps(env)).request("/")).text();
    assert.match(html, /<meta name="tickstream-dev" content="false">/, JSON.stringify(env));
  }
});

Deno.test("the committed dashboard bundle is served and revalidates with its ETag", async () => {
  const app = createDashboardApp(deps());
  const js = await app.request("/static/dashboard.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.equal(js.headers.get("cache-control"), "no-cache");
  const body = await js.text();
  assert.ok(body.length > 10000, "the bundle includes the chart library");
  assert.ok(!/\bfrom\s*["']https?:/.test(body), "the bundle imports nothing remote");
  const etag = js.headers.get("etag")!;
  const again = await app.request("/static/dashboard.js", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  const css = await app.request("/static/dashboard.css");
  assert.equal(css.status, 200);
  assert.match(css.headers.get("content-type") ?? "", /^text\/css/);
  assert.match(await css.text(), /\.uplot/);
});

Deno.test("the committed dashboard bundle is what deno task bundle builds from web/", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-bundle-" });
  try {
    const built = await bundleDashboard({ outFile: `${dir}/dashboard.js` });
    const root = new URL("../static/", import.meta.url);
    assert.ok(
      (await Deno.readTextFile(built.js)) ===
        (await Deno.readTextFile(new URL("dashboard.js", root))),
      "static/dashboard.js is stale: run deno task bundle",
    );
    assert.ok(
      (await Deno.readTextFile(built.css)) ===
        (await Deno.readTextFile(new URL("dashboard.css", root))),
      "static/dashboard.css is stale: run deno task bundle",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
