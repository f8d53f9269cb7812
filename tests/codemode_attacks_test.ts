/**
 * Attacks on code mode that once worked: each hostile program here broke one of run_program's
 * promises (the channel key stays out of the program's reach, no state outlives a run, a run
 * ends at its timeout, a confirmation does not outlive its run, the result is a tool result).
 * After each, the server still answers and the stub received nothing the gate would not allow.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { type CallToolResult, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { AsApi } from "../src/api/mod.ts";
import { StaticToken } from "../src/auth/mod.ts";
import { type GateResult, type ProgramRv, runProgram } from "../src/codemode/sandbox.ts";
import { createServer, selectTools } from "../src/mcp/mod.ts";
import { startStub } from "../src/stub/mod.ts";
import { openSession, type Session } from "../testing/mod.ts";
import { initializeRequest, seedIds } from "./_helpers.ts";
import { hermeticEnv, ROOT, serverArgs } from "./_spawn.ts";

async function run(session: Session, program: string, timeoutS?: number): Promise<ProgramRv> {
  const args = { program, ...(timeoutS ? { timeout_s: timeoutS } : {}) };
  return (await session.call("run_program", args)).structuredContent as unknown as ProgramRv;
}

async function assertUp(session: Session): Promise<void> {
  assert.equal((await session.call("get_version")).isError, false);
}

/** Hooks every way the runner's writer touches its bytes, then logs once: the key, if seen. */
const STEAL_KEY = `
  const TA = Object.getPrototypeOf(Uint8Array.prototype);
  const subarray = TA.subarray;
  const length = Object.getOwnPropertyDescriptor(TA, "length")!;
  let seen: string | null = null;
  const look = (bytes: Uint8Array) => {
    const text = String.fromCharCode(...Reflect.apply(subarray, bytes, [0, 37]) as Uint8Array);
    if (!seen && / $/.test(text)) seen = text.slice(0, 36);
  };
  TA.subarray = function (this: Uint8Array, ...a: number[]) { look(this); return Reflect.apply(subarray, this, a); };
  Object.defineProperty(TA, "length", { configurable: true, get() { look(this); return length.get!.call(this); } });
  console.log("hello");
  TA.subarray = subarray;
  Object.defineProperty(TA, "length", length);
`;

Deno.test("a program cannot read the channel key off the bytes the runner writes", async () => {
  await using session = await openSession({ selection: { codeMode: true } });
  const rv = await run(session, `${STEAL_KEY} return seen;`);
  assert.equal(rv.success, true, JSON.stringify(rv));
  assert.equal(rv.msg.value, null, "the program saw the per-run key");
  await assertUp(session);
});

Deno.test("forged log lines cannot carry objects past the output cap", async () => {
  // With the key, a `log` whose text is an object was counted as "[object Object]" (15 bytes)
  // but kept whole: megabytes of server memory per line.
  const gate = () => Promise.resolve({ success: true, msg: {}, http_status_code: 200 });
  const rv = await runProgram(
    `${STEAL_KEY}
    const line = seen + ' {"t":"log","text":{"big":"' + "x".repeat(100_000) + '"}}\\n';
    for (let i = 0; i < 20; i++) Deno.stdout.writeSync(new TextEncoder().encode(line));
    return "sent";`,
    { gate, operations: [], limits: { timeoutS: 10 } },
  );
  for (const item of rv.msg.log) assert.equal(typeof item, "string");
  const kept = JSON.stringify(rv.msg.log).length + JSON.stringify(rv.msg.value ?? null).length;
  assert.ok(kept <= 65_536 + 1024, `${kept} bytes kept`);
});

/** A gate answering each call with a result of 64 KiB. */
const bigGate = () =>
  Promise.resolve<GateResult>({
    success: true,
    msg: { text: "x".repeat(65_536) },
    http_status_code: 200,
  });

Deno.test("a program that stops reading its answers still ends at its timeout_s", async () => {
  // The server waited for its answers to be written before killing the child: a child that
  // never reads kept run_program (and one of the four run slots) and a CPU busy for ever.
  const started = performance.now();
  const rv = await runProgram(
    `for (let i = 0; i < 8; i++) as.get_version();
    const t = Date.now(); while (Date.now() - t < 8_000) {}`,
    { gate: bigGate, operations: ["get_version"], limits: { timeoutS: 1 } },
  );
  const seconds = (performance.now() - started) / 1000;
  assert.equal(rv.msg.error, "Program stopped after 1 s (its timeout_s)");
  assert.ok(seconds < 5, `run_program took ${seconds.toFixed(1)} s with a timeout_s of 1`);
});

Deno.test("a program that returns and then blocks is killed without waiting for it", async () => {
  // Once `done` came, the timeout was cleared: a busy loop in a timer held the run for ever.
  const started = performance.now();
  const rv = await runProgram(
    `for (let i = 0; i < 8; i++) as.get_version();
    setTimeout(() => { const t = Date.now(); while (Date.now() - t < 8_000) {} }, 0);
    return "done";`,
    { gate: bigGate, operations: ["get_version"], limits: { timeoutS: 30 } },
  );
  const seconds = (performance.now() - started) / 1000;
  assert.equal(rv.msg.value, "done");
  assert.ok(seconds < 5, `run_program took ${seconds.toFixed(1)} s after the program returned`);
});

Deno.test("nothing a program stores outlives its run (localStorage, caches)", async () => {
  await using session = await openSession({ selection: { codeMode: true } });
  const mark = crypto.randomUUID();
  const store = await run(
    session,
    `const out: string[] = [];
    try { localStorage.setItem("attack", "${mark}"); out.push("localStorage"); } catch { /* refused */ }
    try {
      const cache = await caches.open("attack");
      await cache.put("http://attack/", new Response("${mark}"));
      out.push("caches");
    } catch { /* refused */ }
    return out;`,
  );
  assert.equal(store.success, true, JSON.stringify(store));
  const read = await run(
    session,
    `const found: string[] = [];
    try { found.push(String(localStorage.getItem("attack"))); localStorage.removeItem("attack"); } catch { /* none */ }
    try {
      const cache = await caches.open("attack");
      const hit = await cache.match("http://attack/");
      if (hit) found.push(await hit.text());
      await caches.delete("attack");
    } catch { /* none */ }
    return found;`,
  );
  assert.equal(
    JSON.stringify(read).includes(mark),
    false,
    "a later run read what an earlier stored",
  );
  await assertUp(session);
});

Deno.test("a deeply nested value gives a tool result, not a protocol error", async () => {
  await using session = await openSession({ selection: { codeMode: true } });
  const result = await session.call("run_program", {
    program: `let v: unknown = ["\\u200b"]; for (let i = 0; i < 9000; i++) v = [v]; return v;`,
  }).catch((error) => error as Error);
  assert.ok(!(result instanceof Error), String(result));
  const rv = result.structuredContent as unknown as ProgramRv;
  assert.equal(rv.success, false);
  assert.match(String(rv.msg.error), /nests more than/);
  await assertUp(session);
});

Deno.test("args whose toJSON gives undefined throw in the program, they do not stop it", async () => {
  await using session = await openSession({ selection: { codeMode: true } });
  const rv = await run(
    session,
    `try { await as.get_version({ toJSON() { return undefined; } } as never); return "sent"; }
    catch (e) { return String(e); }`,
  );
  assert.equal(rv.success, true, JSON.stringify(rv));
  assert.match(String(rv.msg.value), /^TypeError: /);
  assert.deepEqual(session.stub.requests, []);
  await assertUp(session);
});

Deno.test("a delete's confirmation ends with its run: no late answer waits or sends", async () => {
  // The user answers a minute later; the program has long thrown.
  const stub = await startStub();
  const server = createServer({
    api: new AsApi({ url: stub.url, env: () => undefined }),
    tokens: new StaticToken(stub.tokens.alice),
    version: "test",
    tools: selectTools({ codeMode: true }),
  });
  const client = new Client({ name: "slow-user", version: "1.0.0" }, {
    capabilities: { elicitation: {} },
  });
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => answer = resolve);
  client.setRequestHandler(ElicitRequestSchema, async () => {
    await answered;
    return { action: "accept" as const, content: { confirm: true } };
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  try {
    const ids = seedIds(stub);
    const call = client.callTool({
      name: "run_program",
      arguments: {
        program: `as.delete_unit({ unit_id: "${ids.unit}" });
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error("gone");`,
      },
    }) as Promise<CallToolResult>;
    const late = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 5_000));
    const first = await Promise.race([call, late]);
    answer();
    const result = await call;
    assert.notEqual(first, "late", "run_program waited for the user after its program ended");
    const rv = result.structuredContent as unknown as ProgramRv;
    assert.match(String(rv.msg.error), /^Error: gone/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(stub.requests.filter((q) => q.method === "DELETE"), []);
    const up = await client.callTool({ name: "get_version", arguments: {} });
    assert.equal(up.isError, false);
  } finally {
    answer();
    await client.close();
    await server.close();
    await stub.shutdown();
  }
});

/** What `ps` says, one line per process, for `args`. */
async function ps(...args: string[]): Promise<string[]> {
  const { stdout } = await new Deno.Command("ps", { args, stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(stdout).split("\n").map((l) => l.trim()).filter(Boolean);
}

/** The pids of the processes whose parent is `parent`. */
async function childrenOf(parent: number): Promise<number[]> {
  return (await ps("-o", "pid=", "--ppid", String(parent))).map(Number);
}

/** Whether `pid` still runs (a zombie does not). */
async function alive(pid: number): Promise<boolean> {
  const [stat] = await ps("-o", "stat=", "-p", String(pid));
  return stat !== undefined && !stat.startsWith("Z");
}

Deno.test({
  name: "a sandbox whose server died does not spin for ever",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // Killed hard (or by the OOM killer), the server cannot kill its sandboxes: an endless loop
    // then used a CPU until the machine restarted.
    const server = new Deno.Command(Deno.execPath(), {
      args: serverArgs("demo", "--code-mode"),
      cwd: ROOT,
      env: hermeticEnv(),
      clearEnv: true,
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const writer = server.stdin.getWriter();
    const send = (message: Record<string, unknown>) =>
      writer.write(new TextEncoder().encode(`${JSON.stringify({ jsonrpc: "2.0", ...message })}\n`));
    let sandbox: number | undefined;
    try {
      await send(initializeRequest());
      await send({ method: "notifications/initialized" });
      await send({
        id: 2,
        method: "tools/call",
        params: { name: "run_program", arguments: { program: "for (;;) {}", timeout_s: 3 } },
      });
      for (let i = 0; i < 100 && sandbox === undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        sandbox = (await childrenOf(server.pid))[0];
      }
      assert.ok(sandbox, "no sandbox process started");
      server.kill("SIGKILL");
      await server.status;
      for (let i = 0; i < 200 && await alive(sandbox); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(await alive(sandbox), false, "the sandbox outlived its server by 20 s");
    } finally {
      if (sandbox && await alive(sandbox)) Deno.kill(sandbox, "SIGKILL");
      try {
        server.kill("SIGKILL");
      } catch {
        // It has exited already.
      }
      await writer.close().catch(() => {});
      await server.status;
    }
  },
});
