import assert from "node:assert/strict";
import { parse } from "yaml";

interface ComposeService {
  image?: string;
  command?: string | string[];
  working_dir?: string;
  volumes?: string[];
  environment?: Record<string, string> | string[];
  ports?: string[];
  healthcheck?: { test?: string | string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

async function loadCompose(): Promise<ComposeFile> {
  const text = await Deno.readTextFile(new URL("../docker-compose.yml", import.meta.url));
  return parse(text) as ComposeFile;
}

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(env.map((entry) => {
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)];
  }));
}

Deno.test("docker-compose.yml defines exactly the redis and app services", async () => {
  const compose = await loadCompose();
  assert.deepEqual(Object.keys(compose.services).sort(), ["app", "redis"]);
});

Deno.test("the redis service runs redis 7.0 with AOF on a named volume and a ping healthcheck", async () => {
  const { services, volumes } = await loadCompose();
  const redis = services.redis;
  assert.equal(redis.image, "redis:7.0");
  const command = Array.isArray(redis.command) ? redis.command.join(" ") : redis.command ?? "";
  assert.match(command, /--appendonly yes/);
  const dataVolume = redis.volumes?.find((volume) => volume.endsWith(":/data"));
  assert.ok(dataVolume, "no volume mounted on /data");
  const name = dataVolume.slice(0, dataVolume.lastIndexOf(":"));
  assert.ok(volumes && name in volumes, `volume "${name}" is not declared as a named volume`);
  const test = redis.healthcheck?.test;
  const testLine = Array.isArray(test) ? test.join(" ") : test ?? "";
  assert.match(testLine, /redis-cli ping/);
});

Deno.test("the app service runs deno task start on the pinned deno image against the redis service", async () => {
  const { services } = await loadCompose();
  const app = services.app;
  assert.equal(app.image, "denoland/deno:2.9.6");
  assert.equal(app.working_dir, "/app");
  assert.ok(app.volumes?.includes(".:/app"), `volumes: ${JSON.stringify(app.volumes)}`);
  assert.deepEqual(app.command, ["task", "start"]);
  assert.equal(environmentOf(app).REDIS_URL, "redis://redis:6379");
  assert.ok(app.ports?.includes("8000:8000"), `ports: ${JSON.stringify(app.ports)}`);
  assert.deepEqual(app.depends_on, { redis: { condition: "service_healthy" } });
});

Deno.test("the start task the app service runs exists in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks?: Record<string, string> };
  assert.equal(typeof config.tasks?.start, "string");
});

Deno.test("the app listens on every interface inside its container and requires FUNCTIONS_TOKEN from the environment", async () => {
  const { services } = await loadCompose();
  const env = environmentOf(services.app);
  assert.equal(env.HOST, "0.0.0.0");
  // ${VAR:?message} makes compose refuse to start without it, and no default secret is in the file.
  assert.match(env.FUNCTIONS_TOKEN, /^\$\{FUNCTIONS_TOKEN:\?[^}]+\}$/);
  const text = await Deno.readTextFile(new URL("../docker-compose.yml", import.meta.url));
  assert.doesNotMatch(text, /FUNCTIONS_TOKEN:-/);
});

Deno.test("the compose Redis is reachable from this machine only, as the dev hint says", async () => {
  const { services } = await loadCompose();
  assert.deepEqual(services.redis.ports, ["127.0.0.1:6379:6379"]);
  const dev = await Deno.readTextFile(new URL("../scripts/dev.ts", import.meta.url));
  assert.match(dev, /docker compose up -d redis\s+\(then REDIS_URL=redis:\/\/127\.0\.0\.1:6379\)/);
});
