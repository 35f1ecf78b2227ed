/**
 * Function `GET /`: the stock dashboard, a static page (web/index.html) and
 * its bundle (static/dashboard.js and static/dashboard.css, built from web/
 * by `deno task bundle` and committed). The page talks only to this origin:
 * the public API, the /live feed and, in development, /emit-quotes and
 * /drain/:group.
 *
 * @module
 */

import { Hono } from "hono";
import type { Context } from "hono";
import { createHash } from "node:crypto";
import { loadConfig } from "../shared/config.ts";
import { UnavailableError } from "../shared/errors.ts";
import { defaultDeps, type Deps, installErrorHandling } from "../shared/http.ts";

const ROOT = new URL("../", import.meta.url);

/** Files the dashboard serves, by URL path. */
export const DASHBOARD_FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "web/index.html", type: "text/html; charset=utf-8" },
  "/static/dashboard.js": { file: "static/dashboard.js", type: "text/javascript; charset=utf-8" },
  "/static/dashboard.css": { file: "static/dashboard.css", type: "text/css; charset=utf-8" },
};

// The page loads nothing from elsewhere, and this keeps it that way.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** True when the development buttons show: no FUNCTIONS_TOKEN and not deployed. */
export function isDevelopment(deps: Deps): boolean {
  return deps.config.functionsToken === undefined && !deps.config.deployed;
}

interface Asset {
  body: string;
  etag: string;
}

/** Builds the dashboard's app: GET / and the static bundle. */
export function createDashboardApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  const dev = isDevelopment(deps);
  // Files are read once per isolate: a deployment never changes them.
  const cache = new Map<string, Promise<Asset>>();
  async function read(path: string): Promise<Asset> {
    const { file } = DASHBOARD_FILES[path];
    let body: string;
    try {
      body = await Deno.readTextFile(new URL(file, ROOT));
    } catch (error) {
      throw new UnavailableError(`Dashboard file is missing: ${file}: run deno task bundle`, {
        cause: error,
      });
    }
    if (path === "/") {
      body = body.replace(
        '<meta name="tickstream-dev" content="false">',
        `<meta name="tickstream-dev" content="${dev}">`,
      );
    }
    const etag = `"${createHash("sha1").update(body).digest("base64url")}"`;
    return { body, etag };
  }
  function asset(path: string): Promise<Asset> {
    let pending = cache.get(path);
    if (pending === undefined) {
      pending = read(path);
      cache.set(path, pending);
      pending.catch(() => cache.delete(path));
    }
    return pending;
  }
  async function serve(c: Context, path: string): Promise<Response> {
    const { body, etag } = await asset(path);
    // Revalidate every time (cheap 304s), so a new deployment shows at once.
    c.header("Cache-Control", "no-cache");
    c.header("ETag", etag);
    c.header("X-Content-Type-Options", "nosniff");
    if (path === "/") {
      c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
      c.header("Referrer-Policy", "no-referrer");
    }
    if (c.req.header("If-None-Match") === etag) return c.body(null, 304);
    c.header("Content-Type", DASHBOARD_FILES[path].type);
    return c.body(body);
  }
  for (const path of Object.keys(DASHBOARD_FILES)) {
    app.get(path, function dashboardFile(c) {
      return serve(c, path);
    });
  }
  return app;
}

if (import.meta.main) {
  const config = loadConfig();
  Deno.serve({ port: config.port }, createDashboardApp(defaultDeps(config)).fetch);
}
