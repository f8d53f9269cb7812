/**
 * The tool layer's strictness and its listing: an argument a tool does not know is refused by
 * name with the nearest valid one, prototype keys included, and nothing reaches the Account
 * Server; the listing says no other argument is accepted, shows timeout_s's bounds, stays within
 * its token budget and never names a tool the operator left out.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { getEncoding } from "js-tiktoken";
import { AsApi } from "../src/api/mod.ts";
import { ALL_TOOLS, createServer, StdioTransport, type ToolSelection } from "../src/mcp/mod.ts";
import { NoCredentials, StaticToken } from "../src/auth/mod.ts";
import { startStub, type StubServer } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";
import { openSession } from "../testing/mod.ts";

type Call = (name: string, args?: Record<string, unknown>) => Promise<CallToolResult>;

async function withTools(
  fn: (call: Call, stub: StubServer) => Promise<void>,
  selection?: ToolSelection,
): Promise<void> {
  await using session = await openSession({
    selection,
    tokens: (stub) => new StaticToken(stub.tokens.admin),
  });
  await fn(session.call, session.stub);
}

function errorOf(result: CallToolResult): string {
  assert.equal(result.isError, true, "the call failed");
  const rv = result.structuredContent as { msg: { error: string }; http_status_code: number };
  assert.equal(rv.http_status_code, 0, "nothing was sent");
  return rv.msg.error;
}

Deno.test("get_units refuses a misspelt unit_name, suggests it, and sends nothing", () =>
  withTools(async (call, stub) => {
    const error = errorOf(await call("get_units", { unit_nme: "Chemistry" }));
    assert.equal(
      error,
      "Cannot get_units: invalid input: unit_nme: not a parameter of get_units; did you mean unit_name?",
    );
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("alter_unit refuses a misspelt name instead of sending an empty PATCH", () =>
  withTools(async (call, stub) => {
    const { unit } = seedIds(stub);
    const error = errorOf(await call("alter_unit", { unit_id: unit, nmae: "x" }));
    assert.match(error, /nmae: not a parameter of alter_unit; did you mean name\?$/);
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("a misspelt timeout_s is refused with timeout_s suggested", () =>
  withTools(async (call, stub) => {
    const error = errorOf(await call("get_version", { timeout: 5 }));
    assert.match(error, /timeout: not a parameter of get_version; did you mean timeout_s\?$/);
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("an argument with no near name is refused without a suggestion", () =>
  withTools(async (call, stub) => {
    const error = errorOf(await call("get_account", { verbose: true }));
    assert.equal(
      error,
      "Cannot get_account: invalid input: verbose: not a parameter of get_account",
    );
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("constructor, toString and hasOwnProperty are refused like any unknown argument", () =>
  withTools(async (call, stub) => {
    for (const key of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
      const error = errorOf(await call("get_organisations", { [key]: "x" }));
      assert.match(error, new RegExp(`${key}: not a parameter of get_organisations`));
    }
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("get_api_url refuses arguments it does not take", () =>
  withTools(async (call) => {
    const error = errorOf(await call("get_api_url", { url: "https://evil.example" }));
    assert.equal(error, "Cannot get_api_url: invalid input: url: not a parameter of get_api_url");
  }));

Deno.test("timeout_s out of its bounds is refused, naming the bounds", () =>
  withTools(async (call, stub) => {
    for (const value of [0, 61, "5"]) {
      const error = errorOf(await call("get_version", { timeout_s: value }));
      assert.equal(
        error,
        "Cannot get_version: invalid input: timeout_s: must be a number of seconds from 0.1 to 60",
      );
    }
    assert.deepEqual(stub.requests, []);
  }));

Deno.test("an unknown tool is refused with the nearest offered name; an excluded one says so", () =>
  withTools(async (call) => {
    assert.equal(
      errorOf(await call("get_unitz")),
      "Cannot get_unitz: no such tool; did you mean get_units?",
    );
    assert.equal(
      errorOf(await call("delete_unit")),
      "Cannot delete_unit: this server does not offer it (the operator's tool selection leaves it out)",
    );
  }, { excludeTools: ["delete_unit"] }));

/** Runs raw JSON-RPC lines through the stdio transport and returns the answers by id. */
async function overStdio(stub: StubServer, lines: string[]): Promise<Map<unknown, unknown>> {
  const server = createServer({
    api: new AsApi({ url: stub.url, env: () => undefined }),
    tokens: new StaticToken(stub.tokens.admin),
    version: "test",
  });
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(lines.map((l) => `${l}\n`).join("")));
    },
  });
  const answers = new Map<unknown, unknown>();
  let text = "";
  const output = new WritableStream<Uint8Array>({
    write(chunk) {
      text += new TextDecoder().decode(chunk);
      for (const line of text.split("\n").slice(0, -1)) {
        const message = JSON.parse(line);
        answers.set(message.id, message);
      }
      text = text.slice(text.lastIndexOf("\n") + 1);
    },
  });
  await server.connect(new StdioTransport(input, output));
  const ids = lines.map((l) => JSON.parse(l).id).filter((id) => id !== undefined);
  for (let i = 0; i < 200 && !ids.every((id) => answers.has(id)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await server.close();
  return answers;
}

Deno.test("a __proto__ argument sent as raw JSON is refused, not silently dropped", async () => {
  const stub = await startStub();
  try {
    const init = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "raw", version: "1" },
      },
    };
    const answers = await overStdio(stub, [
      JSON.stringify(init),
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_units",' +
      '"arguments":{"__proto__":{"unit_name":"Chemistry"}}}}',
    ]);
    const answer = answers.get(2) as { result: CallToolResult };
    assert.ok(answer, "the call was answered");
    assert.match(errorOf(answer.result), /__proto__: not a parameter of get_units/);
    assert.deepEqual(stub.requests, []);
  } finally {
    await stub.shutdown();
  }
});

const encoder = getEncoding("cl100k_base");

interface Listing {
  tools: { name: string; inputSchema: Record<string, unknown> }[];
  instructions: string;
}

async function listingOf(selection?: ToolSelection): Promise<Listing> {
  await using session = await openSession({ selection, tokens: () => new NoCredentials() });
  const { tools } = await session.client.listTools();
  return { tools, instructions: session.client.getInstructions() ?? "" };
}

Deno.test("every listed input schema accepts no other argument and bounds timeout_s", async () => {
  // Code mode on: run_program is the one tool not offered by default.
  const { tools } = await listingOf({ codeMode: true });
  assert.equal(tools.length, ALL_TOOLS.size);
  for (const tool of tools) {
    const schema = tool.inputSchema as Record<string, unknown> & {
      properties: Record<string, unknown>;
    };
    assert.equal(schema.additionalProperties, false, tool.name);
    assert.deepEqual(schema.properties.timeout_s, { type: "number", minimum: 0.1, maximum: 60 });
  }
});

Deno.test("tools/list for all tools costs at most 8,000 cl100k tokens", async () => {
  const { tools } = await listingOf();
  const tokens = encoder.encode(JSON.stringify({ tools })).length;
  assert.ok(tokens <= 8_000, `tools/list is ${tokens} tokens`);
});

Deno.test("no listed text or instruction names a tool the selection leaves out", async () => {
  for (const excluded of ALL_TOOLS.keys()) {
    const { tools, instructions } = await listingOf({ excludeTools: [excluded] });
    const text = JSON.stringify(tools) + instructions;
    assert.doesNotMatch(text, new RegExp(`\\b${excluded}\\b`), `${excluded} is not named`);
  }
});

Deno.test("leaving a tool out keeps the rest of a sentence that names it among others", async () => {
  const { instructions } = await listingOf({ excludeTools: ["get_available_units"] });
  assert.match(
    instructions,
    /Find ids with the list tools \(get_organisations, get_available_products, get_available_assets\) rather than guessing\./,
  );
  const { tools } = await listingOf({ excludeTools: ["get_merchants"] });
  const getMerchant = tools.find((t) => t.name === "get_merchant")!;
  const merchantId = (getMerchant.inputSchema.properties as Record<string, { description: string }>)
    .merchant_id!;
  assert.equal(merchantId.description, "Merchant id (an integer)");
});

Deno.test("the instructions point to run_program only where code mode is on", async () => {
  const off = await listingOf();
  assert.doesNotMatch(off.instructions, /run_program/);
  assert.match(off.instructions, /What happened lately on your accounts: read_event_stream\./);
  const on = await listingOf({ codeMode: true });
  assert.match(on.instructions, /run_program runs one short program that makes them/);
});
