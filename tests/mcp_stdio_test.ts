/**
 * The real thing: `deno task start` spawned as an MCP client would spawn it, speaking MCP over
 * stdio to a stub Account Server with a stub Keycloak.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { OPERATIONS } from "../src/api/mod.ts";
import { StdioTransport } from "../src/mcp/mod.ts";
import { KEYCLOAK_SEED, startStub, type StubServer } from "../src/stub/mod.ts";
import { initializeRequest, seedIds } from "./_helpers.ts";
import { hermeticEnv, ROOT, serverArgs } from "./_spawn.ts";

function serverEnv(stub: StubServer): Record<string, string> {
  return {
    SQUONK2_ASAPI_URL: stub.url,
    SQUONK2_API_DEBUG_REQUESTS: "yes",
    SQUONK2_KEYCLOAK_URL: stub.keycloak.url,
    SQUONK2_KEYCLOAK_REALM: stub.keycloak.realm,
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: stub.keycloak.clientId,
    SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: stub.keycloak.clientSecret,
    SQUONK2_KEYCLOAK_USER: "alice",
    SQUONK2_KEYCLOAK_USER_PASSWORD: KEYCLOAK_SEED.passwords.alice!,
  };
}

function secretsOf(stub: StubServer): string[] {
  return [KEYCLOAK_SEED.passwords.alice!, stub.keycloak.clientSecret];
}

Deno.test("deno task start serves MCP on stdio: list, read, write, failure, token renewal", async () => {
  const stub = await startStub({ tokenLifetimeS: 2 });
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: serverArgs("start"),
    cwd: ROOT,
    env: { ...baseEnv(), ...serverEnv(stub) },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Uint8Array) => stderr += new TextDecoder().decode(chunk));
  const protocolErrors: Error[] = [];
  const client = new Client({ name: "stdio-test", version: "1.0.0" });
  try {
    await client.connect(transport);
    transport.onerror = (error: Error) => protocolErrors.push(error);
    const call = async (name: string, args: Record<string, unknown> = {}) =>
      await client.callTool({ name, arguments: args }) as CallToolResult;

    const { tools } = await client.listTools();
    assert.equal(
      tools.length,
      OPERATIONS.length + 2,
      "the operations, get_api_url, read_event_stream",
    );

    const account = await call("get_account");
    assert.deepEqual((account.structuredContent as { msg: { user: unknown } }).msg.user, {
      id: "alice",
    });

    const created = await call("create_unit", {
      unit_name: "Made over stdio",
      org_id: seedIds(stub).org,
      billing_day: 12,
    });
    assert.equal(created.isError, false, JSON.stringify(created.content));
    const unitId = (created.structuredContent as { msg: { id: string } }).msg.id;
    assert.equal(stub.state.units.get(unitId)?.name, "Made over stdio");

    const missing = await call("get_product", {
      product_id: "product-00000000-0000-4000-8000-0000000000ff",
    });
    assert.equal(missing.isError, true);
    assert.equal((missing.structuredContent as { http_status_code: number }).http_status_code, 404);

    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const renewed = await call("get_account");
    assert.equal(renewed.isError, false, JSON.stringify(renewed.content));
    assert.deepEqual(stub.keycloak.requests.map((r) => r.grant_type), [
      "password",
      "refresh_token",
    ]);
    const tokens = new Set(stub.requests.map((r) => r.authorization));
    assert.equal(tokens.size, 2, "the call after expiry used a renewed token");

    assert.deepEqual(protocolErrors, [], "stdout carried nothing but protocol messages");
  } finally {
    await client.close();
    await stub.shutdown();
  }
  assert.match(stderr, /serving MCP on stdio/);
  assert.match(stderr, /\[as-api\] GET .*\/user\/account -> 200/);
  const issued = stub.requests.map((r) => r.authorization!.replace("Bearer ", ""));
  for (const secret of [...secretsOf(stub), ...issued]) {
    assert.equal(stderr.includes(secret), false, "no password, secret or token on stderr");
  }
});

Deno.test("stdout holds only JSON-RPC messages, and the server exits when stdin closes", async () => {
  const stub = await startStub();
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs("start"),
    cwd: ROOT,
    clearEnv: true,
    env: { ...baseEnv(), ...serverEnv(stub) },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const messages = [
    initializeRequest(),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "get_units", arguments: {} } },
    {
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "get_unit", arguments: { unit_id: "nope" } },
    },
  ];
  const writer = child.stdin.getWriter();
  const stdoutText = child.stdout.pipeThrough(new TextDecoderStream());
  const reader = stdoutText.getReader();
  let out = "";
  try {
    for (const message of messages) {
      await writer.write(new TextEncoder().encode(`${JSON.stringify(message)}\n`));
    }
    while ((out.match(/\n/g) ?? []).length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    await writer.close();
    const rest = await reader.read().then(async function drain(r): Promise<string> {
      return r.done ? "" : r.value + await reader.read().then(drain);
    });
    out += rest;
    const status = await child.status;
    assert.equal(status.code, 0, "the server exits cleanly when its client goes away");
  } finally {
    await stub.shutdown();
  }
  const lines = out.split("\n").filter((l) => l.trim());
  assert.equal(lines.length, 3);
  const replies = lines.map((line) => JSON.parse(line)).sort((a, b) => a.id - b.id);
  for (const reply of replies) assert.equal(reply.jsonrpc, "2.0");
  assert.deepEqual(replies.map((r) => r.id), [1, 2, 3]);
  assert.equal(replies[1].result.isError, false);
  assert.equal(replies[2].result.isError, true);
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  for (const secret of secretsOf(stub)) assert.equal(stderr.includes(secret), false);
});

/** Only what Deno needs to find itself and its cache: nothing of this machine's SQUONK2_*. */
/** What Deno needs to run, and nothing from the developer's shell. */
function baseEnv(): Record<string, string> {
  return hermeticEnv();
}

const BAD_CONFIGS: [string, Record<string, string>, string[], RegExp][] = [
  ["a malformed URL", { SQUONK2_ASAPI_URL: "localhost:8080" }, [], /Invalid Account Server URL/],
  ["an unknown option", {}, ["--colour"], /Unknown option '--colour'/],
  [
    "half a Keycloak configuration",
    { SQUONK2_ASAPI_URL: "http://127.0.0.1:9", SQUONK2_KEYCLOAK_URL: "http://127.0.0.1:9" },
    [],
    /Keycloak is half configured: SQUONK2_KEYCLOAK_REALM, SQUONK2_KEYCLOAK_AS_CLIENT_ID/,
  ],
  [
    "a user without a password",
    {
      SQUONK2_ASAPI_URL: "http://127.0.0.1:9",
      SQUONK2_KEYCLOAK_URL: "http://127.0.0.1:9",
      SQUONK2_KEYCLOAK_REALM: "r",
      SQUONK2_KEYCLOAK_AS_CLIENT_ID: "c",
      SQUONK2_KEYCLOAK_USER: "alice",
    },
    [],
    /Set both SQUONK2_KEYCLOAK_USER and SQUONK2_KEYCLOAK_USER_PASSWORD/,
  ],
  [
    "a token and Keycloak at once",
    {
      SQUONK2_ASAPI_URL: "http://127.0.0.1:9",
      SQUONK2_ASAPI_TOKEN: "tok-123456",
      SQUONK2_KEYCLOAK_REALM: "r",
    },
    [],
    /not both/,
  ],
  [
    "credentials without a URL",
    { SQUONK2_ASAPI_TOKEN: "tok-123456" },
    [],
    /credentials are set but SQUONK2_ASAPI_URL/,
  ],
  [
    "a bad --verify-ssl-cert",
    { SQUONK2_ASAPI_URL: "http://127.0.0.1:9" },
    ["--verify-ssl-cert", "maybe"],
    /--verify-ssl-cert must be "yes" or "no"/,
  ],
];

for (const [what, env, args, message] of BAD_CONFIGS) {
  Deno.test(`start refuses ${what} with one line on stderr and exit code 2`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: serverArgs("start", ...args),
      cwd: ROOT,
      env: { ...baseEnv(), NO_COLOR: "1", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr).trim();
    assert.equal(output.code, 2, stderr);
    assert.equal(new TextDecoder().decode(output.stdout), "");
    const lines = stderr.split("\n").filter((l) => !l.startsWith("Warning"));
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^squonk2-as-mcp: /);
    assert.match(lines[0]!, message);
    assert.equal(stderr.includes("tok-123456"), false);
  });
}

for (const [task, args] of [["demo", []], ["start", []]] as const) {
  Deno.test(`deno task ${task} with no URL serves every tool against the embedded stub`, async () => {
    const transport = new StdioClientTransport({
      command: Deno.execPath(),
      args: serverArgs(task, ...args),
      cwd: ROOT,
      env: { ...baseEnv(), NO_COLOR: "1" },
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (chunk: Uint8Array) => stderr += new TextDecoder().decode(chunk));
    const client = new Client({ name: "demo-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      const call = async (name: string, args: Record<string, unknown> = {}) =>
        await client.callTool({ name, arguments: args }) as CallToolResult;
      const where = (await call("get_api_url")).structuredContent as { msg: { mode: string } };
      assert.match(where.msg.mode, /^demo: embedded stub/);
      const orgs = await call("get_organisations", { org_name: "Informatics Matters" });
      assert.equal((orgs.structuredContent as { msg: { count: number } }).msg.count, 1);
      const created = await call("create_organisation", { org_name: "Demo Org", org_owner: "bob" });
      assert.equal(created.isError, false, JSON.stringify(created.content));
    } finally {
      await client.close();
    }
    assert.match(stderr, /demo mode.*embedded stub Account Server at http:\/\/127\.0\.0\.1:\d+/);
  });
}

Deno.test("deno task start --read-only over stdio lists only reads and refuses a write", async () => {
  const stub = await startStub();
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: serverArgs("start", "--read-only", "--toolsets", "units,server"),
    cwd: ROOT,
    env: { ...baseEnv(), SQUONK2_ASAPI_URL: stub.url, SQUONK2_ASAPI_TOKEN: stub.tokens.alice },
    stderr: "pipe",
  });
  const client = new Client({ name: "read-only-test", version: "1.0.0" });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t: { name: string }) => t.name).sort(), [
      "get_api_url",
      "get_available_units",
      "get_personal_unit",
      "get_unit",
      "get_units",
      "get_version",
      "ping",
    ]);
    const write = await client.callTool({
      name: "create_personal_unit",
      arguments: { billing_day: 3 },
    }) as CallToolResult;
    assert.equal(write.isError, true);
    const read = await client.callTool({ name: "get_personal_unit", arguments: {} });
    assert.equal(read.isError, false);
    assert.deepEqual(stub.requests.map((r) => r.path), ["/personal-unit"]);
    assert.equal(stub.requests[0]!.method, "GET");
  } finally {
    await client.close();
    await stub.shutdown();
  }
});

Deno.test("--transport http: callers use their own tokens; SIGTERM waits for a call in flight", async () => {
  const stub = await startStub();
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs("start", "--transport", "http", "--port", "0"),
    cwd: ROOT,
    clearEnv: true,
    env: {
      ...baseEnv(),
      NO_COLOR: "1",
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_API_DEBUG_REQUESTS: "yes",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrReader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  let url: string | undefined;
  while (!url) {
    const { value, done } = await stderrReader.read();
    if (done) break;
    stderr += value;
    url = /serving MCP at (http:\/\/\S+\/mcp)/.exec(stderr)?.[1];
  }
  const clients: Client[] = [];
  try {
    assert.ok(url, stderr);
    const connect = async (token: string) => {
      const client = new Client({ name: "http-process-test", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url!), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      clients.push(client);
      return client;
    };
    const [alice, bob] = await Promise.all([connect(stub.tokens.alice), connect(stub.tokens.bob)]);
    const who = async (client: Client) =>
      ((await client.callTool({ name: "get_account", arguments: {} })).structuredContent as {
        msg: { user: unknown };
      }).msg.user;
    assert.deepEqual(await who(alice), { id: "alice" });
    assert.deepEqual(await who(bob), { id: "bob" });

    stub.inject("get_available_units", { delayMs: 500 });
    const before = stub.requests.length;
    const inFlight = alice.callTool({ name: "get_units", arguments: {} });
    while (stub.requests.length === before) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGTERM");
    const result = await inFlight as CallToolResult;
    assert.equal(result.isError, false, JSON.stringify(result.content));
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    for (const client of clients) await client.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await stub.shutdown();
  }
  for (;;) {
    const { value, done } = await stderrReader.read();
    if (done) break;
    stderr += value;
  }
  assert.match(stderr, /shutting down/);
  assert.match(stderr, /\[as-api\] GET .*\/unit -> 200/);
  for (const token of Object.values(stub.tokens)) {
    assert.equal(stderr.includes(token), false, "no caller's token in the log");
  }
});

Deno.test("a burst of malformed MCP input on stdio never stops the server", async () => {
  const stub = await startStub();
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs("start"),
    cwd: ROOT,
    clearEnv: true,
    env: {
      ...baseEnv(),
      NO_COLOR: "1",
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_ASAPI_TOKEN: stub.tokens.alice,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const replies = new Map<number, Record<string, unknown>>();
  const anonymous: { error: { code: number } }[] = [];
  let buffered = "";
  const waitFor = async (id: number) => {
    while (!replies.has(id)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stdout closed before the answer to ${id}`);
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines.filter((l) => l.trim())) {
        const message = JSON.parse(line);
        assert.equal(message.jsonrpc, "2.0", "stdout holds only JSON-RPC");
        if (typeof message.id === "number") replies.set(message.id, message);
        if (message.id === null) anonymous.push(message);
      }
    }
    return replies.get(id)!;
  };
  const send = (line: string) => writer.write(new TextEncoder().encode(`${line}\n`));
  try {
    await send(JSON.stringify(initializeRequest()));
    await waitFor(1);
    await send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    const call = (id: number, name: string, args: unknown) =>
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name, arguments: args },
      });
    await send("{not json at all");
    await send("");
    await send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "no/such/method" }));
    await send(call(3, "get_unit", { unit_id: 42 }));
    await send(call(4, "get_organisations", { org_name: "y".repeat(1_000_000) }));
    await send(call(5, "no_such_tool", {}));
    await send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "tools/call", params: [1, 2] }));
    await send(
      JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list", params: { cursor: 5 } }),
    );
    await send(call(8, "get_account", {}));

    assert.equal(
      (await waitFor(2)).error && ((await waitFor(2)).error as { code: number }).code,
      -32601,
    );
    assert.equal(((await waitFor(3)).result as { isError: boolean }).isError, true);
    assert.equal(((await waitFor(4)).result as { isError: boolean }).isError, true);
    const unknownTool = await waitFor(5);
    assert.ok(unknownTool.error || (unknownTool.result as { isError: boolean }).isError);
    assert.ok((await waitFor(6)).error, "params of the wrong type get an error");
    await waitFor(7);
    const good = (await waitFor(8)).result as {
      isError: boolean;
      structuredContent: { msg: { user: unknown } };
    };
    assert.equal(good.isError, false);
    assert.deepEqual(good.structuredContent.msg.user, { id: "alice" });
    assert.deepEqual(stub.requests.map((r) => r.path), ["/user/account"]);
    assert.deepEqual(
      anonymous.map((m) => m.error.code),
      [-32700],
      "the bad line got a parse error",
    );
  } finally {
    await writer.close().catch(() => {});
    await child.status;
    await reader.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await stub.shutdown();
  }
});

/** A StdioTransport over in-memory streams, serving an SDK server that answers `ping`. */
async function pingServer(maxLineBytes: number) {
  const input = new TransformStream<Uint8Array, Uint8Array>();
  const lines: Record<string, unknown>[] = [];
  let text = "";
  const output = new WritableStream<Uint8Array>({
    write(chunk) {
      text += new TextDecoder().decode(chunk);
      const complete = text.split("\n");
      text = complete.pop()!;
      lines.push(...complete.map((line) => JSON.parse(line)));
    },
  });
  const server = new Server({ name: "ping", version: "1.0.0" }, { capabilities: {} });
  await server.connect(new StdioTransport(input.readable, output, { maxLineBytes }));
  const writer = input.writable.getWriter();
  return {
    lines,
    /** Writes `text` as UTF-8 in chunks of `size` bytes. */
    async write(text: string, size = 100) {
      const bytes = new TextEncoder().encode(text);
      for (let at = 0; at < bytes.length; at += size) {
        await writer.write(bytes.slice(at, at + size));
      }
    },
    async answers(count: number) {
      for (let i = 0; i < 200 && lines.length < count; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return lines;
    },
    async [Symbol.asyncDispose]() {
      await writer.close();
      await server.close();
    },
  };
}

const ping = (id: number) => `${JSON.stringify({ jsonrpc: "2.0", id, method: "ping" })}\n`;
const TOO_LONG = {
  jsonrpc: "2.0",
  id: null,
  error: { code: -32600, message: "Invalid Request: a message is over 1000 bytes" },
};

Deno.test("a line over the stdio limit gets exactly one error, and the next request its answer", async () => {
  await using rig = await pingServer(1_000);
  // 3,500 bytes, arriving 100 at a time.
  const long = JSON.stringify({
    jsonrpc: "2.0",
    id: 7,
    method: "ping",
    params: { pad: "x".repeat(3_450) },
  });
  await rig.write(`${long}\n${ping(8)}`);
  assert.deepEqual(await rig.answers(2), [TOO_LONG, { jsonrpc: "2.0", id: 8, result: {} }]);
});

Deno.test("the stdio line limit counts UTF-8 bytes: 400 Japanese characters are 1,200 bytes", async () => {
  await using rig = await pingServer(1_000);
  const long = JSON.stringify({
    jsonrpc: "2.0",
    id: 7,
    method: "ping",
    params: { pad: "化".repeat(400) },
  });
  assert.ok(long.length < 1_000, "under the limit in UTF-16 units");
  await rig.write(`${long}\n${ping(8)}`, 7);
  assert.deepEqual(await rig.answers(2), [TOO_LONG, { jsonrpc: "2.0", id: 8, result: {} }]);
});

/**
 * The child's stdout and exit status once it exits; if it has not exited within `ms`, kills it
 * and fails with what it wrote to stderr, rather than leaving the test to hang.
 */
async function exitWithin(
  child: Deno.ChildProcess,
  ms: number,
): Promise<[string, Deno.CommandStatus]> {
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, ms);
  try {
    const [status, out, err] = await Promise.all([child.status, stdout, stderr]);
    if (timedOut) {
      assert.fail(`the server had not exited ${ms / 1000} s after stdin closed:\n${err}`);
    }
    return [out, status];
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("closing stdin ends the server only after every request received is answered", async () => {
  const stub = await startStub();
  stub.inject("get_available_units", { delayMs: 1_500 });
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs("start"),
    cwd: ROOT,
    env: { ...baseEnv(), SQUONK2_ASAPI_URL: stub.url, SQUONK2_ASAPI_TOKEN: stub.tokens.alice },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const call = (id: number, name: string) => ({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: {} },
  });
  const messages = [
    initializeRequest(),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    call(2, "get_available_units"),
    call(3, "get_account"),
    { jsonrpc: "2.0", id: 4, method: "tools/list" },
    { jsonrpc: "2.0", id: 5, method: "ping" },
  ];
  try {
    const writer = child.stdin.getWriter();
    await writer.write(
      new TextEncoder().encode(messages.map((m) => `${JSON.stringify(m)}\n`).join("")),
    );
    await writer.close();
    const [out, status] = await exitWithin(child, 30_000);
    assert.equal(status.code, 0);
    const replies = out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    assert.deepEqual(replies.map((r) => r.id).sort(), [1, 2, 3, 4, 5]);
    const units = replies.find((r) => r.id === 2);
    assert.equal(units.result.isError, false, JSON.stringify(units));
    assert.deepEqual(stub.requests.map((r) => r.path).sort(), ["/unit", "/user/account"]);
  } finally {
    await stub.shutdown();
  }
});
