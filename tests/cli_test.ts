/**
 * The server as a process: --help and --version, configuration refused at start, the lines it
 * writes to stderr at start (TLS) and when the operator must act, and proof that a `.env` in the
 * checkout cannot reach the servers tests spawn.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { KEYCLOAK_SEED, startStub } from "../src/stub/mod.ts";
import { checkoutCopy, hermeticEnv, ROOT, serverArgs } from "./_spawn.ts";

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the server (the start task's flags, no .env) with `args` and only the variables given,
 * stdin closed, until it exits. `allowEnv` replaces the task's --allow-env flag.
 */
async function run(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; allowEnv?: string } = {},
): Promise<Output> {
  const flags = serverArgs("start", ...args)
    .map((f) => f.startsWith("--allow-env=") && options.allowEnv ? options.allowEnv : f);
  const output = await new Deno.Command(Deno.execPath(), {
    args: flags,
    cwd: options.cwd ?? ROOT,
    env: hermeticEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: text(output.stdout), stderr: text(output.stderr) };
}

Deno.test("--help shows flags with their variables and defaults, and exits 0", async () => {
  const { code, stdout } = await run(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^ {2}--url URL +Account Server API URL, .* \(SQUONK2_ASAPI_URL\)$/m);
  assert.match(
    stdout,
    /^ {2}--read-only +Offer only tools that read .*\(SQUONK2_MCP_READ_ONLY\)$/m,
  );
  assert.match(stdout, /^ {2}-h, --help +Print this help and exit$/m);
  assert.match(stdout, /^ {2}SQUONK2_MCP_PORT +HTTP: port to listen on \(default 3000\)$/m);
  assert.match(
    stdout,
    /^ {2}SQUONK2_MCP_READ_ONLY +Offer only tools .* \(yes or no, default no\)$/m,
  );
  assert.match(
    stdout,
    /^ {2}SQUONK2_KEYCLOAK_USER_PASSWORD +Keycloak password of that user \(secret\)$/m,
  );
});

Deno.test("--version prints the version of deno.json and exits 0", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const { code, stdout } = await run(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), config.version);
});

Deno.test("a variable the permissions do not let the server read stops it with one line", async () => {
  const { code, stderr } = await run(["--version"], {
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
  const { code, stderr } = await run([], { env: { SQUONK2_MCP_READ_ONLY: "true" } });
  assert.equal(code, 2);
  assert.equal(
    stderr.trim(),
    'squonk2-as-mcp: SQUONK2_MCP_READ_ONLY must be "yes" or "no", not "true"',
  );
});

Deno.test("an unknown option and an option without its value are refused", async () => {
  const unknown = await run(["--readonly"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim(), "squonk2-as-mcp: Unknown option '--readonly' (see --help)");
  const bare = await run(["--port"]);
  assert.equal(bare.code, 2);
  assert.equal(bare.stderr.trim(), "squonk2-as-mcp: --port needs a value: --port N (see --help)");
});

Deno.test("a relative upload folder is taken from the project folder, and its error shows where", async () => {
  // Before: 'SQUONK2_MCP_FILE_ROOT "no-such-uploads" cannot be used: ... realpath
  // 'no-such-uploads'', though the flag was given and the folder it looked in was not said.
  const flag = await run(["--file-root", "no-such-uploads"], { cwd: ROOT });
  assert.equal(flag.code, 2);
  assert.equal(
    flag.stderr.trim(),
    `squonk2-as-mcp: --file-root "no-such-uploads" ("${ROOT}no-such-uploads") cannot be used: ` +
      `No such file or directory (os error 2): realpath '${ROOT}no-such-uploads'`,
  );
  const variable = await run([], { env: { SQUONK2_MCP_FILE_ROOT: "/no/such/uploads" } });
  assert.equal(
    variable.stderr.trim(),
    'squonk2-as-mcp: SQUONK2_MCP_FILE_ROOT "/no/such/uploads" cannot be used: ' +
      "No such file or directory (os error 2): realpath '/no/such/uploads'",
  );
});

Deno.test("a .env in the checkout changes deno task start, but not the servers tests spawn", async () => {
  await using copy = await checkoutCopy();
  await Deno.writeTextFile(`${copy.path}.env`, "SQUONK2_MCP_TRANSPORT=carrier-pigeon\n");
  const task = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", "--version"],
    cwd: copy.path,
    env: hermeticEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(task.code, 2, "the task reads .env, so the hostile value stops it");
  assert.match(new TextDecoder().decode(task.stderr), /not "carrier-pigeon"/);

  const spawned = await run(["--version"], { cwd: copy.path });
  assert.equal(spawned.code, 0, spawned.stderr);
  assert.equal(spawned.stderr.includes("carrier-pigeon"), false);
});

const ACCOUNT_SERVER = { SQUONK2_ASAPI_TOKEN: "tok-123456789" };
const startLine = (stderr: string) =>
  stderr.split("\n").find((line) => line.startsWith("squonk2-as-mcp: using ")) ?? "";
const tlsWarnings = (stderr: string) =>
  stderr.split("\n").filter((line) => line.includes("will NOT be verified"));

/** Starts the server for an Account Server at `url`, with `verify` as VERIFY_SSL_CERT. */
function startFor(url: string, verify: string): Promise<Output> {
  return run([], {
    env: { ...ACCOUNT_SERVER, SQUONK2_ASAPI_URL: url, SQUONK2_ASAPI_VERIFY_SSL_CERT: verify },
  });
}

Deno.test('SQUONK2_ASAPI_VERIFY_SSL_CERT="true" warns once that certificates will NOT be verified', async () => {
  const { code, stderr } = await startFor("https://127.0.0.1:9/api", "true");
  assert.equal(code, 0, stderr);
  assert.deepEqual(tlsWarnings(stderr), [
    'squonk2-as-mcp: SQUONK2_ASAPI_VERIFY_SSL_CERT is "true", not "yes": TLS certificates will NOT be verified (as with the Python client, anything but "yes" turns verification off; say "no" to mean it, or "yes" to verify)',
  ]);
  assert.equal(
    startLine(stderr),
    "squonk2-as-mcp: using https://127.0.0.1:9/api (TLS certificates NOT verified) with static token credentials",
  );
});

Deno.test('SQUONK2_ASAPI_VERIFY_SSL_CERT="no", "yes" or "YES" gives no warning', async () => {
  for (const value of ["no", "yes", "YES"]) {
    const { stderr } = await startFor("https://127.0.0.1:9/api", value);
    assert.deepEqual(tlsWarnings(stderr), [], value);
  }
});

Deno.test("the start line says nothing about TLS for an http:// URL", async () => {
  const { stderr } = await startFor("http://127.0.0.1:9/api", "no");
  assert.equal(
    startLine(stderr),
    "squonk2-as-mcp: using http://127.0.0.1:9/api with static token credentials",
  );
});

Deno.test("the start line names Keycloak's grant once, and counts one tool as one tool", async () => {
  const keycloak = {
    SQUONK2_ASAPI_URL: "http://127.0.0.1:9/api",
    SQUONK2_KEYCLOAK_URL: "http://127.0.0.1:9/auth",
    SQUONK2_KEYCLOAK_REALM: "squonk2",
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
    SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "s3cr3t",
  };
  const client = await run(["--tools", "get_unit"], { env: keycloak });
  assert.equal(client.code, 0, client.stderr);
  assert.equal(
    startLine(client.stderr),
    "squonk2-as-mcp: using http://127.0.0.1:9/api with Keycloak credentials (client-credentials grant)",
  );
  assert.match(client.stderr, /: serving MCP on stdio \(1 tool\)\n/);
  const user = { SQUONK2_KEYCLOAK_USER: "alice", SQUONK2_KEYCLOAK_USER_PASSWORD: "pw-123456" };
  const password = await run(["--tools", "get_unit,get_units"], { env: { ...keycloak, ...user } });
  assert.equal(
    startLine(password.stderr),
    "squonk2-as-mcp: using http://127.0.0.1:9/api with Keycloak credentials (password grant)",
  );
  assert.match(password.stderr, /: serving MCP on stdio \(2 tools\)\n/);
});

/** Serves MCP on stdio with `env`, calls `tool` twice, and returns the results and stderr. */
async function callTwice(
  env: Record<string, string>,
  tool: string,
): Promise<{ results: CallToolResult[]; stderr: string }> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: serverArgs("start"),
    cwd: ROOT,
    env: hermeticEnv(env),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Uint8Array) => stderr += new TextDecoder().decode(chunk));
  const client = new Client({ name: "cli-test", version: "1.0.0" });
  const results: CallToolResult[] = [];
  try {
    await client.connect(transport);
    for (let i = 0; i < 2; i++) {
      results.push(await client.callTool({ name: tool, arguments: {} }) as CallToolResult);
    }
  } finally {
    await client.close();
  }
  return { results, stderr };
}

Deno.test("an unreachable Account Server is written to stderr once per failed call", async () => {
  const gone = await startStub();
  await gone.shutdown();
  const { results, stderr } = await callTwice(
    { SQUONK2_ASAPI_URL: gone.url, ...ACCOUNT_SERVER },
    "get_account",
  );
  assert.ok(results.every((r) => r.isError));
  const lines = stderr.split("\n").filter((l) => l.includes("Cannot get_account"));
  assert.equal(lines.length, 2, stderr);
  assert.match(
    lines[0]!,
    /^squonk2-as-mcp: Cannot get_account: connection to "127\.0\.0\.1:\d+" refused .*waiting will not help/,
  );
  assert.equal(stderr.includes(ACCOUNT_SERVER.SQUONK2_ASAPI_TOKEN), false);
});

Deno.test("Keycloak refusing the password is written to stderr once per failed call, without it", async () => {
  const stub = await startStub();
  try {
    const { results, stderr } = await callTwice({
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_KEYCLOAK_URL: stub.keycloak.url,
      SQUONK2_KEYCLOAK_REALM: stub.keycloak.realm,
      SQUONK2_KEYCLOAK_AS_CLIENT_ID: stub.keycloak.clientId,
      SQUONK2_KEYCLOAK_USER: "alice",
      SQUONK2_KEYCLOAK_USER_PASSWORD: "not-alices-password",
    }, "get_units");
    assert.ok(results.every((r) => r.isError));
    const lines = stderr.split("\n").filter((l) => l.includes("Cannot get_units"));
    assert.equal(lines.length, 2, stderr);
    assert.match(
      lines[0]!,
      /^squonk2-as-mcp: Cannot get_units: Keycloak refused to issue an access token: 401 Unauthorized: invalid_grant .*wrong user, password or client secret/,
    );
    assert.equal(stderr.includes("not-alices-password"), false);
    assert.equal(stderr.includes(KEYCLOAK_SEED.passwords.alice!), false);
    assert.equal(stub.requests.length, 0);
  } finally {
    await stub.shutdown();
  }
});
