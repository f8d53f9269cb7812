import assert from "node:assert/strict";
import { envExample, normalize, render, renderTasks } from "../scripts/docs.ts";

const root = new URL("..", import.meta.url);

Deno.test("the README's tool, toolset and settings tables match the code (run deno task docs)", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  assert.equal(normalize(render(readme)), normalize(readme));
});

Deno.test(".env.example is the one the settings table makes (run deno task docs)", async () => {
  const example = await Deno.readTextFile(new URL(".env.example", root));
  assert.equal(example, envExample());
  assert.match(example, /^# SQUONK2_KEYCLOAK_USER_PASSWORD=$/m, "a secret is left empty");
  assert.match(example, /^# SQUONK2_ASAPI_VERIFY_SSL_CERT=yes$/m);
});

Deno.test("every task that starts the server may read exactly the table's variables", async () => {
  const json = await Deno.readTextFile(new URL("deno.json", root));
  assert.equal(json, renderTasks(json), "run deno task docs");
  const tasks: Record<string, string> = JSON.parse(json).tasks;
  for (const task of ["start", "demo", "compile"]) {
    assert.match(tasks[task]!, /--allow-env=SQUONK2_ASAPI_URL,SQUONK2_ASAPI_VERIFY_SSL_CERT,/);
  }
});
