/**
 * Code mode shared by many callers: each caller may run only their share of the programs the
 * server runs at once, so one caller cannot keep every other caller's programs out. A call past a
 * cap waits a little for a place, then is refused, saying whose cap it met.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Slots } from "../src/codemode/_slots.ts";
import { callerKey } from "../src/codemode/tool.ts";
import { type ProgramRv, runProgram } from "../src/codemode/sandbox.ts";
import { openEndpoint } from "../testing/mod.ts";

const YOURS_TAKEN =
  "You have 2 programs running already, the most one caller may: try again when one of yours has finished";
const ALL_TAKEN =
  "The server is running 4 programs already, the most it runs for all callers together: try again in a moment";

/** A program that runs until it is stopped, without using the CPU. */
const IDLE = "await new Promise((resolve) => setTimeout(resolve, 120_000))";

const gate = () => Promise.resolve({ success: true, msg: {}, http_status_code: 200 });

/** Programs started for callers, each stopped by its own controller. */
class Programs {
  #started: { stop: AbortController; done: Promise<ProgramRv> }[] = [];

  /** Starts `program` for `caller`. */
  start(caller: string, program = IDLE, timeoutS = 30): Promise<ProgramRv> {
    const stop = new AbortController();
    const done = runProgram(program, {
      gate,
      operations: [],
      caller,
      signal: stop.signal,
      limits: { timeoutS },
    });
    this.#started.push({ stop, done });
    return done;
  }

  /** Stops the `index`th program started. */
  stop(index: number): void {
    this.#started[index]!.stop.abort();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const { stop } of this.#started) stop.abort();
    await Promise.all(this.#started.map((p) => p.done));
  }
}

Deno.test("a caller's share must be less than the whole cap, so no one caller can fill it", () => {
  assert.throws(
    () => new Slots({ total: 4, perCaller: 4, maxWaiting: 8 }),
    /A caller's share of the programs must be less than all of them/,
  );
});

Deno.test("a caller at their share is refused as themselves; another caller still gets a place", async () => {
  const slots = new Slots({ total: 4, perCaller: 2, maxWaiting: 8 });
  const bob = [await slots.take("bob", { waitMs: 0 }), await slots.take("bob", { waitMs: 0 })];
  assert.ok(bob.every((place) => "release" in place));
  assert.deepEqual(await slots.take("bob", { waitMs: 0 }), { refused: YOURS_TAKEN });
  const alice = await slots.take("alice", { waitMs: 0 });
  assert.ok("release" in alice, "alice has a place while bob holds his share");
});

Deno.test("with every place taken, a new caller is refused as the server, not as themselves", async () => {
  const slots = new Slots({ total: 4, perCaller: 2, maxWaiting: 8 });
  for (const caller of ["bob", "bob", "carol", "carol"]) await slots.take(caller, { waitMs: 0 });
  assert.deepEqual(await slots.take("alice", { waitMs: 0 }), { refused: ALL_TAKEN });
});

Deno.test("a waiting caller gets the first place they may take, not one a caller at their share waits for", async () => {
  const slots = new Slots({ total: 4, perCaller: 2, maxWaiting: 8 });
  const held = [];
  for (const caller of ["bob", "bob", "carol", "carol"]) {
    held.push(await slots.take(caller, { waitMs: 0 }) as { release: () => void });
  }
  const bobsThird = slots.take("bob", { waitMs: 60_000 });
  const alices = slots.take("alice", { waitMs: 60_000 });
  held[2]!.release(); // carol's: bob is still at his share, so alice, who came later, gets it
  assert.ok("release" in await alices);
  held[0]!.release();
  const third = await bobsThird;
  assert.ok("release" in third, "bob's third starts once one of his own has finished");
  assert.equal(slots.running, 4);
});

Deno.test("a cancelled wait for a place ends at once and leaves no place taken", async () => {
  const slots = new Slots({ total: 4, perCaller: 2, maxWaiting: 8 });
  await slots.take("bob", { waitMs: 0 });
  await slots.take("bob", { waitMs: 0 });
  const cancel = new AbortController();
  const waiting = slots.take("bob", { waitMs: 60_000, signal: cancel.signal });
  cancel.abort();
  assert.deepEqual(await waiting, { refused: "Program stopped: the call was cancelled" });
  assert.equal(slots.running, 2);
});

Deno.test("one caller may queue only their share of calls: more are refused without a wait", async () => {
  const slots = new Slots({ total: 4, perCaller: 2, maxWaiting: 8 });
  await slots.take("bob", { waitMs: 0 });
  await slots.take("bob", { waitMs: 0 });
  const cancel = new AbortController();
  const queued = [1, 2].map(() => slots.take("bob", { waitMs: 60_000, signal: cancel.signal }));
  assert.deepEqual(await slots.take("bob", { waitMs: 60_000 }), { refused: YOURS_TAKEN });
  cancel.abort();
  await Promise.all(queued);
});

Deno.test("two programs of one caller do not stop another caller's; their third is refused as theirs", async () => {
  await using programs = new Programs();
  programs.start("bob");
  programs.start("bob");
  // timeout_s 1: the third waits half of it for a place, then is refused.
  const third = await programs.start("bob", "return 3", 1);
  assert.deepEqual(third.msg.error, YOURS_TAKEN);
  const alice = await programs.start("alice", "return 1");
  assert.deepEqual(alice.msg, { value: 1, log: [], calls: [], time_ms: alice.msg.time_ms });
});

Deno.test("a caller's program waiting for a place runs once one of theirs has finished", async () => {
  await using programs = new Programs();
  programs.start("bob");
  programs.start("bob");
  const third = programs.start("bob", "return 3", 30);
  programs.stop(0);
  assert.equal((await third).msg.value, 3);
});

Deno.test("a caller key is the token's SHA-256, never the token; calls without one share a key", async () => {
  const key = await callerKey({ callerToken: "secret-token" });
  assert.match(key, /^token:[0-9a-f]{64}$/);
  assert.equal(key.includes("secret-token"), false);
  assert.equal(await callerKey({ callerToken: "secret-token" }), key);
  assert.notEqual(await callerKey({ callerToken: "other-token" }), key);
  assert.equal(await callerKey({}), "");
});

/** An MCP client over HTTP with `token`. */
async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: "codemode-callers", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

async function runOver(
  client: Client,
  program: string,
  timeoutS: number,
  signal?: AbortSignal,
): Promise<ProgramRv> {
  const result = await client.callTool(
    { name: "run_program", arguments: { program, timeout_s: timeoutS } },
    undefined,
    { signal, timeout: 120_000 },
  ) as CallToolResult;
  return result.structuredContent as unknown as ProgramRv;
}

/** The first `count` of `promises` to resolve, in the order they did; the others are ignored. */
function firstOf<T>(promises: Promise<T>[], count: number): Promise<T[]> {
  const settled: T[] = [];
  return new Promise((resolve) => {
    for (const promise of promises) {
      promise.then((value) => {
        settled.push(value);
        if (settled.length === count) resolve(settled);
      }, () => {});
    }
  });
}

Deno.test("over HTTP, bob's four endless programs cannot keep alice's program out", async () => {
  await using http = await openEndpoint({ selection: { codeMode: true } });
  const { stub, endpoint } = http;
  const bob = await connect(endpoint.url, stub.tokens.bob);
  const alice = await connect(endpoint.url, stub.tokens.alice);
  const stop = new AbortController();
  try {
    // The reviewer's case: four programs that never end, each given timeout_s 20.
    const program = `await as.get_account(); ${IDLE}`;
    const bobs = [1, 2, 3, 4].map(() => runOver(bob, program, 20, stop.signal));
    const answered = await firstOf(bobs, 2);
    assert.deepEqual(answered.map((rv) => rv.msg.error), [YOURS_TAKEN, YOURS_TAKEN]);
    const rv = await runOver(alice, "return (await as.get_account()).msg.user.id", 20);
    assert.equal(rv.msg.value, "alice");
    const users = new Map([[stub.tokens.alice, "alice"], [stub.tokens.bob, "bob"]]);
    const callers = stub.requests.map((q) =>
      users.get(String(q.authorization).replace("Bearer ", ""))
    );
    assert.deepEqual(callers.sort(), ["alice", "bob", "bob"]);
  } finally {
    stop.abort();
    await bob.close();
    await alice.close();
  }
});

Deno.test("with callers verified, one user's two tokens share one share of places", async () => {
  await using http = await openEndpoint({ selection: { codeMode: true }, keycloak: true });
  const { stub, endpoint } = http;
  // Before: the share was keyed by the token, so each new token of bob's bought two more places.
  const tokens = [
    await stub.keycloak.mint("bob", { lifetimeS: 300 }),
    await stub.keycloak.mint("bob", { lifetimeS: 301 }),
  ];
  assert.notEqual(tokens[0], tokens[1]);
  const [first, second] = await Promise.all(tokens.map((t) => connect(endpoint.url, t)));
  const stop = new AbortController();
  try {
    const program = `await as.get_account(); ${IDLE}`;
    const running = [1, 2].map(() => runOver(first!, program, 20, stop.signal));
    while (stub.requests.length < 2) await new Promise((r) => setTimeout(r, 20));
    const rv = await runOver(second!, "return 1", 1);
    assert.equal(rv.msg.error, YOURS_TAKEN);
    stop.abort();
    await Promise.allSettled(running);
  } finally {
    stop.abort();
    await first!.close();
    await second!.close();
  }
});
