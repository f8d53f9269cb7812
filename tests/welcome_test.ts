/**
 * What a person sees who starts the server or the stub by hand: how to connect a client when stdin
 * is a terminal, the demo's tokens over HTTP, and one line when the port is taken.
 */
import assert from "node:assert/strict";
import { SEED_USERS } from "../src/stub/mod.ts";
import { hermeticEnv, ROOT, runDeno, serverArgs } from "./_spawn.ts";

/** Runs `deno args` to its end with stdin closed; returns its exit code and its stderr. */
const run = (args: string[]) => runDeno(args);

/** `word` quoted for the shell that `script -c` starts. */
function quoted(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Calls `fn` with a port that something else is listening on. */
async function withTakenPort(fn: (port: number) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await fn((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
  }
}

Deno.test("deno task stub on a port in use says so in one line and exits 1", () =>
  withTakenPort(async (port) => {
    const { code, stderr } = await run(["task", "-q", "stub", "--port", String(port)]);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `Cannot listen on 127.0.0.1:${port}: the port is in use (choose another with --port N)\n`,
    );
  }));

Deno.test("the HTTP server on a port in use says so in one line and exits 2", () =>
  withTakenPort(async (port) => {
    const { code, stderr } = await run(
      serverArgs("demo", "--transport", "http", "--port", String(port)),
    );
    assert.equal(code, 2, "a start-up mistake, like a configuration error");
    const lines = stderr.trim().split("\n");
    assert.equal(
      lines.at(-1),
      `squonk2-as-mcp: Cannot listen on 127.0.0.1:${port}: the port is in use ` +
        "(choose another with --port N)",
    );
    assert.ok(!stderr.includes("    at "), `no stack trace: ${stderr}`);
  }));

Deno.test("deno task demo in a terminal says it waits for an MCP client and how to connect one", async () => {
  // `script` gives the server a terminal for stdin; its end of input stops the server.
  const output = await new Deno.Command("script", {
    args: ["-qec", [Deno.execPath(), ...serverArgs("demo")].map(quoted).join(" "), "/dev/null"],
    cwd: ROOT,
    env: hermeticEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).replaceAll("\r", "");
  assert.match(text, /it now waits for an MCP client on stdin and stdout, not for\ntyping/);
  assert.match(text, /MCP Inspector: +npx @modelcontextprotocol\/inspector deno task -q demo/);
  assert.match(text, /Claude Desktop: deno task desktop-config/);
});

Deno.test("deno task demo over HTTP prints the stub's users' tokens to call it with", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs("demo", "--transport", "http", "--port", "0"),
    cwd: ROOT,
    env: hermeticEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    text += decoder.decode(chunk);
    if (/^MCP Inspector:.*\n.*\n/m.test(text)) break;
  }
  child.kill("SIGTERM");
  await child.status;
  const url = /serving MCP at (http:\S+)/.exec(text)?.[1];
  assert.ok(url, text);
  assert.ok(text.includes(`send "Authorization: Bearer <token>" to ${url}`), text);
  for (const user of Object.values(SEED_USERS)) {
    assert.match(text, new RegExp(`^  ${user.username} +${user.token} `, "m"));
  }
  assert.match(text, /^ {2}bob +stub-bob-token-e84a10 +\(member of Bench Org 1-3, /m);
  assert.match(text, /connection type\nVia Proxy \(the default\); Direct cannot work/);
  assert.ok(!text.includes("--allowed-origins"), "a browser's origin would not help");
  assert.ok(!/waits for an MCP client/.test(text), "no terminal, no terminal advice");
});
