import assert from "node:assert/strict";
import { alertToJson } from "../shared/market/alerts.ts";
import { ANALYSES } from "../shared/groups/registry.ts";
import { analysisSettings } from "../shared/market/settings.ts";
import { createApp } from "../shared/app.ts";
import { loadConfig } from "../shared/config.ts";
import type { Deps } from "../shared/http.ts";
import { encodeQuote, fieldsToRecord } from "../shared/market/quotes.ts";
import { createRandom, initialSimulatorState, simulateTicks } from "../shared/market/simulator.ts";

const ROOT = new URL("../", import.meta.url);

function read(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, ROOT));
}

/** Every markdown page: the README and docs/*.md. */
async function pages(): Promise<{ path: string; text: string }[]> {
  const out = [{ path: "README.md", text: await read("README.md") }];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      out.push({ path: `docs/${entry.name}`, text: await read(`docs/${entry.name}`) });
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The variables loadConfig reads, recorded from the code as it runs rather than listed here. */
function settingsRead(): string[] {
  const seen = new Set<string>();
  const env = new Proxy({}, {
    get(_target, name) {
      if (typeof name === "string") seen.add(name);
      return undefined;
    },
  });
  loadConfig(env as Record<string, string>);
  return [...seen];
}

Deno.test("every setting shared/config.ts reads is documented in docs/settings.md", async () => {
  const doc = await read("docs/settings.md");
  const names = settingsRead();
  assert.ok(names.length >= 20, `only ${names.length} settings seen: ${names}`);
  const missing = names.filter((name) => !doc.includes(`\`${name}\``));
  assert.deepEqual(missing, [], `settings missing from docs/settings.md: ${missing.join(", ")}`);
});

Deno.test("every route of the composed app is documented in docs/http_api.md", async () => {
  const doc = await read("docs/http_api.md");
  const deps: Deps = {
    config: loadConfig({ CRON_ENABLED: "false" }),
    redis() {
      throw new Error("Listing routes must not need Redis");
    },
    now: Date.now,
    random: Math.random,
  };
  const routes = [...new Set(createApp(deps).routes.map((r) => `${r.method} ${r.path}`))];
  assert.ok(routes.length >= 10, `only ${routes.length} routes: ${routes}`);
  const missing = routes.filter((route) => !doc.includes(`\`${route}\``));
  assert.deepEqual(missing, [], `routes missing from docs/http_api.md: ${missing.join(", ")}`);
});

Deno.test("every quote field, alert field and alert type is documented in docs/quotes.md", async () => {
  const doc = await read("docs/quotes.md");
  const config = loadConfig({});
  const { quotes } = simulateTicks(initialSimulatorState(), {
    symbols: config.symbols,
    ticks: 2000,
    now: Date.UTC(2024, 2, 4, 23, 50),
    random: createRandom(3),
  });
  const fields = Object.keys(fieldsToRecord(encodeQuote(quotes[0])));
  const alertFields = Object.keys(alertToJson({ id: "1-0", fields: [] })).filter((f) => f !== "id");
  const types = new Set<string>();
  const settings = analysisSettings(config);
  for (const analysis of ANALYSES) {
    const states = new Map<string, unknown>();
    for (const quote of quotes) {
      const result = analysis.step(states.get(quote.symbol), { quote, settings });
      states.set(quote.symbol, result.state);
      for (const alert of result.alerts) types.add(alert.type);
    }
  }
  assert.ok(types.size >= 8, `only ${[...types]} fired`);
  const missing = [...fields, ...alertFields, ...types].filter((n) => !doc.includes(`\`${n}\``));
  assert.deepEqual(missing, [], `missing from docs/quotes.md: ${missing.join(", ")}`);
});

Deno.test("the README is a front page: the two commands first, under 150 lines, linking every doc", async () => {
  const readme = await read("README.md");
  const lines = readme.split("\n");
  assert.ok(lines.length < 150, `README has ${lines.length} lines`);
  assert.equal(lines[0], "# tickstream");
  const firstBlock = readme.slice(
    readme.indexOf("```sh"),
    readme.indexOf("```", readme.indexOf("```sh") + 5),
  );
  const commands = firstBlock.split("\n").slice(1).map((l) => l.split("#")[0].trim());
  assert.deepEqual(commands.slice(0, 2), ["deno task dev", "deno task ci"]);
  for (const { path } of await pages()) {
    if (path !== "README.md") {
      assert.ok(readme.includes(`](${path})`), `README does not link ${path}`);
    }
  }
  for (
    const page of ["architecture", "http_api", "settings", "guarantees", "deploying", "operations"]
  ) {
    assert.ok(readme.includes(`](docs/${page}.md)`), `README does not link docs/${page}.md`);
  }
  assert.ok(readme.includes("](docs/failure_modes.md)"), "README does not link the failure modes");
});

Deno.test("the README shows the dashboard screenshot by a relative path that exists", async () => {
  const readme = await read("README.md");
  const match = readme.match(/!\[[^\]]+\]\(([^)]+)\)/);
  assert.ok(match, "no image in the README");
  const path = match[1];
  assert.equal(path, "docs/dashboard.png");
  const png = await Deno.readFile(new URL(path, ROOT));
  assert.deepEqual([...png.slice(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // IHDR: width and height, big-endian, at bytes 16..23.
  const view = new DataView(png.buffer, png.byteOffset);
  assert.ok(view.getUint32(16) >= 800, `screenshot is ${view.getUint32(16)} px wide`);
});

Deno.test("table cells in the README and docs stay short", async () => {
  const long: string[] = [];
  for (const { path, text } of await pages()) {
    for (const [i, line] of text.split("\n").entries()) {
      if (!line.startsWith("|")) continue;
      for (const cell of line.split(/(?<!\\)\|/).slice(1, -1)) {
        if (cell.trim().length > 80) long.push(`${path}:${i + 1}: ${cell.trim().slice(0, 40)}...`);
      }
    }
  }
  assert.deepEqual(long, []);
});
