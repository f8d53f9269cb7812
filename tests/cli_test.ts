import assert from "node:assert/strict";
import { ENVIRONMENT, OPTIONS } from "../src/config.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function start(...args: string[]): Promise<{ code: number; stdout: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
}

Deno.test("--help lists every option and every environment variable, and exits 0", async () => {
  const { code, stdout } = await start("--help");
  assert.equal(code, 0);
  for (const name of [...Object.keys(OPTIONS), ...Object.keys(ENVIRONMENT)]) {
    assert.ok(stdout.includes(name), `--help mentions ${name}`);
  }
});

Deno.test("--version prints the version of deno.json and exits 0", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const { code, stdout } = await start("--version");
  assert.equal(code, 0);
  assert.equal(stdout.trim(), config.version);
});
