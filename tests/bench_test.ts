import assert from "node:assert/strict";
import { GROUP_NAMES } from "../shared/groups/registry.ts";

const BENCH = new URL("../scripts/bench.ts", import.meta.url).pathname;
const KEYS = ["scenario", "figure", "unit", "baseline", "ratio", "target", "pass"];

/** Every scenario of the issue, each the name or the prefix ("name/part") of its rows. */
const SCENARIOS = [
  "emit-module",
  "emit-http",
  "drain-raw-batch",
  "drain-tutorial",
  ...GROUP_NAMES.map((g) => `drain-${g}`),
  "drain-partitions",
  "growth",
  "live-latency",
  "http-overhead",
  "memory",
  "cold-start",
  "client",
];

Deno.test("the quick benchmark completes and writes a row of the seven keys for every scenario", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickstream-bench-test-" });
  try {
    const json = `${dir}/bench.json`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-cron", BENCH, "--quick", "--json", json],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(stdout, /^scenario\s+figure\s+unit\s+baseline\s+ratio\s+target\s+pass/m);
    const rows = JSON.parse(await Deno.readTextFile(json)) as Record<string, unknown>[];
    assert.ok(Array.isArray(rows) && rows.length > 0);
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), KEYS, JSON.stringify(row));
      assert.equal(typeof row.scenario, "string");
      assert.ok(row.figure === null || typeof row.figure === "number");
      assert.ok(row.pass === null || typeof row.pass === "boolean");
    }
    for (const scenario of SCENARIOS) {
      const matching = rows.filter((r) =>
        r.scenario === scenario || String(r.scenario).startsWith(`${scenario}/`)
      );
      assert.ok(matching.length > 0, `No row for scenario "${scenario}"`);
    }
    // One group over 1, 2 and 4 partitions, on one Redis and on a local cluster.
    for (const target of ["redis", "cluster"]) {
      for (const n of [1, 2, 4]) {
        const row = rows.find((r) => r.scenario === `drain-partitions/${target}/${n}`);
        assert.ok(row !== undefined && typeof row.figure === "number", `${target}/${n}`);
      }
    }
    assert.match(stdout, /drain-partitions\/redis\/4: app \d+% cpu, redis \d+%/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
