import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function start(
  args: string[],
  options: { allowEnv?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  // `deno run` with the start task's flags but no --env-file: a developer's .env in the checkout
  // must not change what these tests see.
  const task: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.start;
  const flags = task.replace(/^deno run /, "").replace(/ src\/main\.ts$/, "").split(" ")
    .filter((f) => !f.startsWith("--env-file"))
    .map((f) => f.startsWith("--allow-env=") && options.allowEnv ? options.allowEnv : f);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "src/main.ts", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("--help shows flags with their variables and defaults, and exits 0", async () => {
  const { code, stdout } = await start(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^ {2}--url URL +Account Server API URL, .* \(SQUONK2_ASAPI_URL\)$/m);
  assert.match(
    stdout,
    /^ {2}--read-only +"yes" offers only tools that read .*\(SQUONK2_MCP_READ_ONLY\)$/m,
  );
  assert.match(stdout, /^ {2}-h, --help +Print this help and exit$/m);
  assert.match(stdout, /^ {2}SQUONK2_MCP_PORT +HTTP: port to listen on \(default 3000\)$/m);
  assert.match(stdout, /^ {2}SQUONK2_KEYCLOAK_USER_PASSWORD +Keycloak password of that user$/m);
});

Deno.test("--version prints the version of deno.json and exits 0", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const { code, stdout } = await start(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), config.version);
});

Deno.test("a variable the permissions do not let the server read stops it with one line", async () => {
  const { code, stderr } = await start(["--version"], {
    allowEnv: "--allow-env=SQUONK2_ASAPI_URL",
    env: { SQUONK2_MCP_READ_ONLY: "yes" },
  });
  assert.equal(code, 2);
  assert.equal(
    stderr.trim(),
    "squonk2-as-mcp: SQUONK2_ASAPI_VERIFY_SSL_CERT cannot be read: the server was started " +
      "without --allow-env for it (start it with deno task start, or add it to --allow-env)",
  );
});

Deno.test("a yes/no setting refuses anything but yes or no, naming the variable", async () => {
  const { code, stderr } = await start([], { env: { SQUONK2_MCP_READ_ONLY: "true" } });
  assert.equal(code, 2);
  assert.equal(
    stderr.trim(),
    'squonk2-as-mcp: SQUONK2_MCP_READ_ONLY must be "yes" or "no", not "true"',
  );
});

Deno.test("an unknown option and an option without its value are refused", async () => {
  const unknown = await start(["--readonly"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim(), "squonk2-as-mcp: Unknown option '--readonly' (see --help)");
  const bare = await start(["--port"]);
  assert.equal(bare.code, 2);
  assert.equal(bare.stderr.trim(), "squonk2-as-mcp: --port needs a value: --port N (see --help)");
});
