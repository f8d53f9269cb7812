/**
 * The project's layers depend one way: `api/` knows nothing of credentials or MCP, `auth/`
 * nothing of MCP, and the benchmarks share scaffolding with the tests through `testing/`, never
 * by importing `tests/`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

async function importsIn(folder: string): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for await (const entry of Deno.readDir(new URL(folder, ROOT))) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`${folder}/${entry.name}`, ROOT));
    const specifiers = [...text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)";/gms)]
      .map((m) => m[1]!);
    found.set(entry.name, specifiers);
  }
  return found;
}

async function assertNoImport(folder: string, forbidden: RegExp): Promise<void> {
  const files = await importsIn(folder);
  assert.ok(files.size > 0, `${folder} has files`);
  for (const [file, specifiers] of files) {
    const bad = specifiers.filter((s) => forbidden.test(s));
    assert.deepEqual(bad, [], `${folder}/${file} imports ${bad.join(", ")}`);
  }
}

Deno.test("api/ imports nothing from auth/, mcp/, stub/ or codemode/", () =>
  assertNoImport("src/api", /\.\.\/(auth|mcp|stub|codemode)\//));

Deno.test("auth/ imports nothing from mcp/, stub/ or codemode/", () =>
  assertNoImport("src/auth", /\.\.\/(mcp|stub|codemode)\//));

Deno.test("bench/ shares scaffolding through testing/, never by importing tests/", () =>
  assertNoImport("bench", /\.\.\/tests\//));

Deno.test("no folder reaches into another folder's private _files", async () => {
  for (const folder of ["src/api", "src/auth", "src/mcp", "src/stub", "src/codemode", "bench"]) {
    await assertNoImport(folder, /\.\.\/[a-z]+\/_[a-z_]+\.ts$/);
  }
});

/** A spawn of the start task, which reads the checkout's `.env` (`--env-file`). */
const START_TASK = /"task",(?:\s*(?:"[^"]*"|`[^`]*`),)*?\s*"start"/;

/** Each `Deno.test` in `text` (and what follows it up to the next), and the file's preamble. */
function testsIn(text: string): { name: string; body: string }[] {
  return text.split(/^(?=Deno\.test\()/m).map((body) => ({
    name: /^Deno\.test\(\s*(?:\{\s*name:\s*)?"([^"]*)"/.exec(body)?.[1] ?? "(outside any test)",
    body,
  }));
}

Deno.test("tests run the start task, which reads .env, only in a copy of the checkout", async () => {
  // Elsewhere a developer's .env changes the outcome: spawn serverArgs(...) with hermeticEnv().
  const found: string[] = [];
  const offenders: string[] = [];
  for await (const entry of Deno.readDir(new URL("tests", ROOT))) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`tests/${entry.name}`, ROOT));
    for (const { name, body } of testsIn(text)) {
      if (!START_TASK.test(body)) continue;
      found.push(name);
      if (!body.includes("checkoutCopy()")) offenders.push(`${entry.name}: ${name}`);
    }
  }
  assert.deepEqual(offenders, []);
  assert.ok(found.some((name) => name.startsWith("a .env in the checkout")), "the check sees");
});

Deno.test("api/mod.ts leaves the transport and the environment readers private", async () => {
  const api: Record<string, unknown> = await import("../src/api/mod.ts");
  const exposed = ["exchange", "send", "readEnv", "debugRequestsFrom", "verifySslCertFrom"]
    .filter((name) => name in api);
  assert.deepEqual(exposed, []);
});
