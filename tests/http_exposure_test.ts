/**
 * What reaches the model, over real HTTP: tokens the Account Server echoes back (the caller's,
 * the operator's, with or without "Bearer ") are masked in results, successful or not, and every
 * hidden character range is stripped.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { cleanText } from "../src/mcp/sanitize.ts";
import type { StubServer } from "../src/stub/mod.ts";
import { openEndpoint } from "../testing/mod.ts";

async function withCaller(
  fn: (stub: StubServer, call: (name: string) => Promise<CallToolResult>) => Promise<void>,
  options: { serverToken?: boolean } = {},
): Promise<void> {
  await using http = await openEndpoint({
    fromStub: (stub) => ({ serverToken: options.serverToken ? stub.tokens.admin : undefined }),
    allowServerCredentials: options.serverToken,
  });
  const { stub } = http;
  const client = await http.connect(options.serverToken ? undefined : stub.tokens.alice);
  await fn(
    stub,
    async (name) => await client.callTool({ name, arguments: {} }) as CallToolResult,
  );
}

function everything(result: CallToolResult): string {
  return JSON.stringify(result);
}

Deno.test("a caller's token echoed back in a successful answer, bare or as Bearer, is masked", () =>
  withCaller(async (stub, call) => {
    const token = stub.tokens.alice;
    stub.inject("get_account", {
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ user: { id: "alice" }, seen: token, header: `Bearer ${token}` }),
    });
    const result = await call("get_account");
    assert.equal(result.isError, false);
    assert.equal(everything(result).includes(token), false, "the token reached the model");
    assert.deepEqual((result.structuredContent as { msg: unknown }).msg, {
      user: { id: "alice" },
      seen: "[redacted]",
      header: "Bearer [redacted]",
    });
  }));

Deno.test("a caller's token echoed back in an error without Bearer is masked", () =>
  withCaller(async (stub, call) => {
    const token = stub.tokens.alice;
    stub.inject("get_account", {
      status: 401,
      contentType: "application/json",
      body: JSON.stringify({ error: `Token ${token} is not valid here` }),
    });
    const result = await call("get_account");
    assert.equal(everything(result).includes(token), false, "the token reached the model");
    assert.match(
      String((result.structuredContent as { msg: { error: string } }).msg.error),
      /Token \[redacted\] is not valid here/,
    );
  }));

Deno.test("the operator's token echoed back in a successful answer is masked", () =>
  withCaller(async (stub, call) => {
    stub.inject("get_account", {
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ user: { id: "admin" }, note: `issued ${stub.tokens.admin}` }),
    });
    const result = await call("get_account");
    assert.equal(everything(result).includes(stub.tokens.admin), false);
    assert.equal(
      (result.structuredContent as { msg: { note: string } }).msg.note,
      "issued [redacted]",
    );
  }, { serverToken: true }));

// Every range the issue lists: each end (and the middle where there is one) must go.
const HIDDEN: [string, number[]][] = [
  ["variation selectors", [0xfe00, 0xfe07, 0xfe0f]],
  ["variation selectors supplement", [0xe0100, 0xe0150, 0xe01ef]],
  ["Hangul fillers", [0x115f, 0x1160, 0x3164, 0xffa0]],
  ["combining grapheme joiner", [0x034f]],
  ["Khmer inherent vowels", [0x17b4, 0x17b5]],
  ["Mongolian variation selectors", [0x180b, 0x180c, 0x180d, 0x180e, 0x180f]],
  ["Braille pattern blank", [0x2800]],
  ["interlinear annotation marks", [0xfff9, 0xfffa, 0xfffb]],
  ["invisible musical symbols", [0x1d173, 0x1d176, 0x1d17a]],
];

for (const [name, points] of HIDDEN) {
  Deno.test(`hidden characters are stripped: ${name}`, () => {
    for (const point of points) {
      const hex = point.toString(16).toUpperCase();
      assert.equal(cleanText(`ig${String.fromCodePoint(point)}nore`), "ignore", `U+${hex}`);
    }
  });
}

Deno.test("hidden characters in an answer never reach the model over HTTP", () =>
  withCaller(async (stub, call) => {
    const hidden = HIDDEN.flatMap(([, points]) => points).map((p) => String.fromCodePoint(p));
    stub.inject("get_account", {
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({ user: { id: `al${hidden.join("")}ice` } }),
    });
    const result = await call("get_account");
    assert.deepEqual((result.structuredContent as { msg: unknown }).msg, { user: { id: "alice" } });
    const text = (result.content as { text: string }[])[0]!.text;
    assert.equal(text, '{"success":true,"msg":{"user":{"id":"alice"}},"http_status_code":200}');
  }));

Deno.test("visible text that uses the same blocks is kept: Hangul, Braille, Mongolian letters", () => {
  for (const text of ["한국어", "⠁⠃", "ᠮᠣᠩᠭᠣᠯ", "Ａ"]) assert.equal(cleanText(text), text);
});
