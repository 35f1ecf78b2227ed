/**
 * Composes the one Hono app that main.ts serves from the function apps.
 *
 * @module
 */

import { Hono } from "hono";
import { createApiApp } from "../functions/api.ts";
import { createDashboardApp } from "../functions/dashboard.ts";
import { createDeadLettersApp } from "../functions/dead_letters.ts";
import { createDrainApp } from "../functions/drain.ts";
import { createEmitApp } from "../functions/emit_quotes.ts";
import { createHealthApp } from "../functions/health.ts";
import { createLiveApp } from "../functions/live.ts";
import { createReportApp } from "../functions/report.ts";
import { type Deps, installErrorHandling } from "./http.ts";

/** Builds the whole HTTP surface from the function apps. */
export function createApp(deps: Deps): Hono {
  const app = new Hono();
  installErrorHandling(app);
  app.route("/", createHealthApp(deps));
  app.route("/", createEmitApp(deps));
  app.route("/", createDrainApp(deps));
  app.route("/", createReportApp(deps));
  app.route("/", createDeadLettersApp(deps));
  app.route("/", createApiApp(deps));
  app.route("/", createLiveApp(deps));
  app.route("/", createDashboardApp(deps));
  return app;
}
