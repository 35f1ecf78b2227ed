import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const QUEUE = new URL("../../shared/queue/", import.meta.url).href;

async function graphOf(entry: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  return graph.modules.map((m) => m.specifier);
}

Deno.test("the engine imports only its own files and node built-ins: no config, no quotes, no Hono", async () => {
  const specifiers = await graphOf("shared/queue/mod.ts");
  assert.ok(specifiers.length > 10, `only ${specifiers.length} modules`);
  const foreign = specifiers.filter((s) =>
    !s.startsWith(QUEUE) && !s.startsWith("node:") && !/^npm:\/?ioredis@/.test(s)
  );
  assert.deepEqual(foreign, []);
});

Deno.test("every Lua file opens with its KEYS, ARGV and return contract and says why it is atomic", async () => {
  const dir = new URL("../../shared/queue/lua/", import.meta.url);
  let files = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".lua")) continue;
    files += 1;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    const header = text.split("\n").filter((l) => l.startsWith("--")).join("\n");
    if (entry.name.startsWith("_")) {
      assert.match(header, /KEYS/, `${entry.name} says which keys its helpers touch`);
      continue;
    }
    assert.match(header, new RegExp(`^-- ${entry.name}: `), entry.name);
    assert.match(header, /^-- KEYS/m, `${entry.name} lists its KEYS`);
    assert.match(header, /^-- ARGV/m, `${entry.name} lists its ARGV`);
    assert.match(header, /^-- Returns/m, `${entry.name} states its return value`);
    assert.match(header, /Atomic|atomic|One script/, `${entry.name} says why it is one script`);
    // A key may only come from KEYS: no script builds a key name from ARGV.
    assert.doesNotMatch(text, /redis\.call\('[A-Z]+', ARGV/, entry.name);
  }
  assert.ok(files >= 10, `only ${files} Lua files`);
});

Deno.test("no TypeScript file calls redis.call: Lua lives in .lua files", async () => {
  const offenders: string[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(`${ROOT}${path}`);
        if (/redis\.call\s*\(\s*['"]/.test(text)) offenders.push(path);
      }
    }
  }
  for (const dir of ["shared", "functions", "scripts"]) await walk(dir);
  assert.deepEqual(offenders, []);
});

Deno.test("no file of the engine is over 400 lines", async () => {
  const dir = new URL("../../shared/queue/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const lines = (await Deno.readTextFile(new URL(entry.name, dir))).split("\n").length;
    assert.ok(lines <= 400, `${entry.name} has ${lines} lines`);
  }
});
