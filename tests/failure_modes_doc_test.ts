import assert from "node:assert/strict";

Deno.test("every row of the failure-mode table names a test that exists, and the README links it", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assert.match(readme, /\(docs\/failure_modes\.md\)/);
  const page = await Deno.readTextFile(new URL("../docs/failure_modes.md", import.meta.url));
  const section = page.split("# Failure modes")[1] ?? "";
  const rows = section.split("\n").filter((line) => /^\|\s*\d+\s*\|/.test(line));
  assert.ok(rows.length >= 10, `only ${rows.length} rows`);
  const cited = new Map<number, string>();
  // List items may wrap onto indented lines; a blank line ends the list.
  const list = (section.split("Proved by")[1] ?? "").split(/\n\s*\n/)[1] ?? "";
  for (const item of list.split(/\n(?=\d+\. )/)) {
    const match = /^(\d+)\. ([\s\S]+)$/.exec(item.trim());
    if (match) cited.set(Number(match[1]), match[2].replace(/\s+/g, " ").trim());
  }
  assert.equal(cited.size, rows.length, "one test per row");
  const names = new Set<string>();
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    if (!entry.name.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, import.meta.url));
    for (const match of text.matchAll(/Deno\.test\(\s*[`"]([^`"]+)[`"]/g)) names.add(match[1]);
    for (const match of text.matchAll(/name:\s*[`"]([^`"]+)[`"]/g)) names.add(match[1]);
  }
  for (const [row, test] of cited) {
    // Test names built from a template keep their fixed parts.
    const found = [...names].some((name) =>
      name === test ||
      new RegExp(
        `^${name.replace(/[.*+?^()|[\]\\]/g, "\\$&").replace(/\$\{[^}]+\}/g, ".*")}$`,
      ).test(test)
    );
    assert.ok(found, `row ${row}: no test named "${test}"`);
  }
});
