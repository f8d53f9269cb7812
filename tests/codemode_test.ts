/**
 * Code mode: `run_program` through the SDK's Client in memory against the stub. Hostile programs
 * are refused or cut off with a clear error, the server stays up, and the stub receives nothing
 * the tool layer's gate would not let through.
 */
import assert from "node:assert/strict";
import { declarationOf } from "../src/codemode/declaration.ts";
import type { ProgramRv } from "../src/codemode/sandbox.ts";
import { selectTools, type ToolSelection } from "../src/mcp/mod.ts";
import { seedIds } from "./_helpers.ts";
import { openSession, type Session } from "../testing/mod.ts";

type Answer = { action: "accept" | "decline" | "cancel"; content?: Record<string, unknown> };

interface Rig extends Session {
  /** Runs a program and returns run_program's structured result. */
  run(program: string, timeoutS?: number): Promise<ProgramRv>;
}

async function rig(options: { selection?: ToolSelection; answer?: Answer } = {}): Promise<Rig> {
  const session = await openSession({
    answer: options.answer,
    selection: { codeMode: true, ...options.selection },
  });
  return {
    ...session,
    run: async (program, timeoutS) => {
      const args = { program, ...(timeoutS ? { timeout_s: timeoutS } : {}) };
      return (await session.call("run_program", args)).structuredContent as unknown as ProgramRv;
    },
  };
}

/** The server still answers a plain tool call. */
async function assertUp(r: Rig): Promise<void> {
  const result = await r.call("get_version");
  assert.equal(result.isError, false);
}

Deno.test("run_program is off by default and by all, on with code mode or the code toolset", () => {
  assert.equal(selectTools().includes("run_program"), false);
  assert.equal(selectTools({ toolsets: ["all"] }).includes("run_program"), false);
  assert.equal(selectTools({ codeMode: true }).includes("run_program"), true);
  assert.deepEqual(selectTools({ toolsets: ["code"] }), ["run_program"]);
  assert.equal(selectTools({ codeMode: true, readOnly: true }).includes("run_program"), true);
});

Deno.test("a program calls as, logs, and returns its value with the calls it made", async () => {
  await using r = await rig();
  const rv = await r.run(`
    const account = await as.get_account();
    const orgs: any = await as.get_organisations();
    console.log("user", account.msg.user.id);
    return orgs.msg.organisations.map((o: { name: string }) => o.name).sort();`);
  assert.equal(rv.success, true);
  assert.deepEqual(rv.msg.value, ["Informatics Matters"]);
  assert.deepEqual(rv.msg.log, ["user alice"]);
  assert.deepEqual(rv.msg.calls, [
    { operation: "get_account", http_status_code: 200, success: true },
    { operation: "get_organisations", http_status_code: 200, success: true },
  ]);
  assert.deepEqual(r.stub.requests.map((q) => `${q.method} ${q.path}`), [
    "GET /user/account",
    "GET /organisation",
  ]);
  assert.equal(r.stub.requests[0]!.authorization, `Bearer ${r.stub.tokens.alice}`);
});

Deno.test("a program never sees the token, the Account Server URL or the environment", async () => {
  await using r = await rig();
  const rv = await r.run(`return {
    args: Deno.args,
    env: (() => { try { return Deno.env.toObject(); } catch (e) { return String(e); } })(),
    account: await as.get_account(),
  };`);
  const text = JSON.stringify(rv);
  assert.equal(rv.success, true);
  assert.equal(text.includes(r.stub.tokens.alice), false);
  assert.equal(text.includes(r.stub.url), false);
  assert.match(text, /Requires env access/);
});

Deno.test("a program's working folder is / and not the server's, whose path would show", async () => {
  await using r = await rig();
  const rv = await r.run("return Deno.cwd()");
  assert.equal(Deno.cwd() === "/", false, "the test runs in a folder other than /");
  assert.deepEqual(rv.msg.value, "/");
});

Deno.test("as calls are checked like tool calls: a bad id is refused before any request", async () => {
  await using r = await rig();
  const rv = await r.run(`return [
    await as.get_unit({ unit_id: "../organisation" }),
    await as.get_version({ surprise: 1 }),
  ];`);
  const [badId, unknownKey] = rv.msg.value as { success: boolean; msg: { error: string } }[];
  assert.match(
    badId!.msg.error,
    /^Cannot get_unit: invalid input: unit_id: must be an id like "unit-"/,
  );
  assert.match(unknownKey!.msg.error, /^Cannot get_version: .*surprise/);
  assert.deepEqual(r.stub.requests, []);
});

Deno.test("reading a file, a socket, the environment and spawning are refused", async () => {
  await using r = await rig();
  const port = new URL(r.stub.url).port;
  const cases: [string, RegExp][] = [
    [`return await Deno.readTextFile("/etc/passwd")`, /Requires read access to "\/etc\/passwd"/],
    [`return await Deno.connect({ hostname: "127.0.0.1", port: ${port} })`, /Requires net access/],
    [`return await (await fetch("${r.stub.url}/user/account")).text()`, /Requires net access/],
    [`return Deno.env.get("HOME")`, /Requires env access to "HOME"/],
    [`return await new Deno.Command("/bin/sh").output()`, /Requires run access to "\/bin\/sh"/],
  ];
  for (const [program, error] of cases) {
    const rv = await r.run(program);
    assert.equal(rv.success, false, program);
    assert.match(String(rv.msg.error), error);
  }
  assert.deepEqual(r.stub.requests, []);
  await assertUp(r);
});

Deno.test("a dynamic import of a URL or a file is refused", async () => {
  await using r = await rig();
  const url = await r.run(`return await import("https://example.com/mod.js")`);
  assert.match(String(url.msg.error), /Requires import access to "example.com:443"/);
  const file = await r.run(`return await import("file:///etc/passwd")`);
  assert.match(String(file.msg.error), /Requires read access to "\/etc\/passwd"/);
  await assertUp(r);
});

Deno.test("importing a Node built-in says it is not available in code mode", async () => {
  await using r = await rig();
  const fs = await r.run(`return await import("node:fs")`);
  assert.equal(
    fs.msg.error,
    "Error: node:fs is not available in code mode: the program has only as",
  );
  const spawn = await r.run(`const name = "node:" + "child_process"; return await import(name)`);
  assert.equal(
    spawn.msg.error,
    "Error: node:child_process is not available in code mode: the program has only as",
  );
});

Deno.test("an endless loop is stopped at its timeout_s and the server stays up", async () => {
  await using r = await rig();
  const rv = await r.run("for (;;) {}", 1);
  assert.deepEqual(rv.msg.error, "Program stopped after 1 s (its timeout_s)");
  await assertUp(r);
});

Deno.test("allocating gigabytes is cut off: heap, array buffers and workers", async () => {
  await using r = await rig();
  const heap = await r.run("const a = []; for (;;) a.push(new Array(1e6).fill(1.5));");
  assert.match(String(heap.msg.error), /^Program stopped: it used more than its memory cap/);
  const buffers = await r.run(
    "const b = []; for (let i = 0; i < 16; i++) b.push(new Uint8Array(1e9).fill(1)); return 1",
  );
  assert.match(String(buffers.msg.error), /Array buffer allocation failed|memory cap/);
  const workers = await r.run(
    `
    const code = "const a = []; for (;;) a.push(new Array(1e5).fill(1.5));";
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    for (let i = 0; i < 32; i++) new Worker(url, { type: "module" });
    await new Promise((resolve) => setTimeout(resolve, 20_000));`,
    10,
  );
  assert.equal(workers.success, false);
  assert.doesNotMatch(String(workers.msg.error), /timeout_s/);
  if (await Deno.stat("/usr/bin/prlimit").then(() => true, () => false)) {
    // Under prlimit the first Worker meets the process's cap, not the heap's: each says which.
    assert.equal(
      heap.msg.error,
      "Program stopped: it used more than its memory cap (128 MiB of heap)",
    );
    assert.equal(
      workers.msg.error,
      "Program stopped: it reached the sandbox's memory limit (a Worker cannot start within it)",
    );
  }
  await assertUp(r);
});

Deno.test("flooding the log is cut off at the output cap", async () => {
  await using r = await rig();
  const rv = await r.run(`for (;;) console.log("é".repeat(1000));`);
  assert.equal(rv.msg.error, "Program stopped: its output (log and value) passed 65536 bytes");
  const kept = rv.msg.log.reduce((n, line) => n + new TextEncoder().encode(line).length, 0);
  assert.ok(kept <= 65_536, `${kept} bytes kept`);
});

Deno.test("more calls than the cap stop the program; the stub saw only those allowed", async () => {
  await using r = await rig();
  const rv = await r.run("for (let i = 0; i < 1000; i++) await as.get_version();");
  assert.equal(rv.msg.error, "Program stopped: it made more than 200 calls to as");
  assert.equal(r.stub.requests.length, 200);
});

Deno.test("in read-only mode a write is not offered to the program and nothing is sent", async () => {
  await using r = await rig({ selection: { readOnly: true } });
  const ids = seedIds(r.stub);
  const rv = await r.run(`return await as.delete_unit({ unit_id: "${ids.unit}" })`);
  assert.match(String(rv.msg.error), /^TypeError: as\.delete_unit is not an operation this server/);
  const create = await r.run(
    `return await as.create_unit({ org_id: "${ids.org}", unit_name: "x" })`,
  );
  assert.match(String(create.msg.error), /as\.create_unit is not an operation/);
  assert.deepEqual(r.stub.requests, []);
});

Deno.test("an operation the operator excluded cannot be called", async () => {
  await using r = await rig({ selection: { excludeTools: ["get_units"] } });
  const rv = await r.run("return await as.get_units()");
  assert.match(String(rv.msg.error), /as\.get_units is not an operation this server offers/);
  assert.deepEqual(r.stub.requests, []);
});

Deno.test("a tool that is not an operation is named as a tool; a misspelt name as not offered", async () => {
  await using r = await rig();
  const tool = await r.run("return await as.read_event_stream({})");
  assert.match(
    String(tool.msg.error),
    /^TypeError: as\.read_event_stream is not available inside run_program: read_event_stream is a tool, not an Account Server operation; call it as a tool \(at line 1/,
  );
  const typo = await r.run("return await as.get_unitz()");
  assert.match(
    String(typo.msg.error),
    /^TypeError: as\.get_unitz is not an operation this server offers \(switched off by the operator, a write in read-only mode, or misspelt\)/,
  );
  assert.deepEqual(r.stub.requests, []);
});

Deno.test("a tool the operator left out is not named as a tool to call", async () => {
  await using r = await rig({ selection: { excludeTools: ["read_event_stream"] } });
  const rv = await r.run("return await as.read_event_stream({})");
  assert.match(String(rv.msg.error), /^TypeError: as\.read_event_stream is not an operation this/);
});

Deno.test("each delete asks the user; a declined delete sends nothing", async () => {
  await using r = await rig({ answer: { action: "decline" } });
  const ids = seedIds(r.stub);
  const rv = await r.run(`
    const a = await as.delete_product({ product_id: "${ids.storageProduct}" });
    const b = await as.delete_product({ product_id: "${ids.tierProduct}" });
    return [a.msg.error, b.msg.error];`);
  assert.deepEqual(rv.msg.value, [
    "Cannot delete_product: the user did not confirm; nothing was sent",
    "Cannot delete_product: the user did not confirm; nothing was sent",
  ]);
  assert.equal(r.asked.length, 2);
  assert.deepEqual(r.stub.requests.filter((q) => q.method === "DELETE"), []);
});

Deno.test("prototype tricks on as change nothing and forged channel lines stop the program", async () => {
  await using r = await rig();
  const tricks = await r.run(`
    const out = [];
    for (const trick of [
      () => { (as as any).get_units = () => "mine"; },
      () => Object.setPrototypeOf(as, {}),
      () => Object.defineProperty(as, "get_version", { value: 1 }),
      () => delete (as as any).get_version,
    ]) { try { trick(); out.push("changed"); } catch (e) { out.push(String(e)); } }
    (Object.prototype as any).toJSON = function () { return this; };
    JSON.stringify = () => "{}";
    out.push(Object.getPrototypeOf(as), "__proto__" in as, (await as.get_version()).http_status_code);
    return out;`);
  assert.deepEqual(tricks.msg.value, [
    "TypeError: as cannot be changed",
    "TypeError: as cannot be changed",
    "TypeError: as cannot be changed",
    "TypeError: as cannot be changed",
    null,
    false,
    200,
  ]);
  const forged = await r.run(`
    const line = '{"t":"call","id":99,"op":"delete_unit","args":{}}\\n';
    Deno.stdout.writeSync(new TextEncoder().encode(line));
    await new Promise((resolve) => setTimeout(resolve, 5_000));`);
  assert.match(String(forged.msg.error), /^Program stopped: it wrote to the channel directly/);
  assert.deepEqual(r.stub.requests.map((q) => q.path), ["/version"]);
  await assertUp(r);
});

Deno.test("the declaration of as types each offered operation's parameters", () => {
  const text = declarationOf(["get_unit", "get_organisations", "get_account"]);
  assert.match(text, /\nget_unit\(p:\{unit_id:string\}\):R;/);
  assert.match(text, /\nget_organisations\(p\?:\{org_name\?:string\}\):R;/);
  assert.match(text, /\nget_account\(\):R;/);
  assert.match(text, /\/\*\* Returns the caller's username, Account Server roles and whether/);
  assert.doesNotMatch(text, /delete_unit/);
});
