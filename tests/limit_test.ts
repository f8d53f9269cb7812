/**
 * The result size limit: counted in UTF-8 bytes, held whatever the answer's shape, at a cost
 * that grows with the answer's size and no faster.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type ApiRv } from "../src/api/mod.ts";
import { toolResult } from "../src/mcp/result.ts";
import { limitMsg } from "../src/mcp/limit.ts";
import { type StubServer } from "../src/stub/mod.ts";
import { seedIds } from "./_helpers.ts";
import { openSession, type Session } from "../testing/mod.ts";

type Json = Record<string, unknown>;
interface Note {
  total_bytes: number;
  limit_bytes: number;
  kept: Record<string, string>;
  hint: string;
}

const utf8 = (text: string) => new TextEncoder().encode(text).length;
const textOf = (result: CallToolResult) => (result.content[0] as { text: string }).text;
const msgOf = (result: CallToolResult) => (result.structuredContent as { msg: Json }).msg;

/** Cuts `msg` as a tool result would, checks the result is whole and within `limit`. */
function cut(msg: Json, limit: number): { msg: Json; note: Note } {
  const result = toolResult({ success: true, msg, http_status_code: 200 }, { maxBytes: limit });
  const text = textOf(result);
  assert.ok(utf8(text) <= limit, `${utf8(text)} bytes of text over the limit of ${limit}`);
  assert.deepEqual(JSON.parse(text), result.structuredContent, "the text is the structured result");
  const { truncated, ...rest } = msgOf(result);
  const note = truncated as Note;
  assert.equal(note.total_bytes, utf8(JSON.stringify(msg)));
  assert.equal(note.limit_bytes, limit);
  assert.match(note.hint, /^The answer was too large and has been cut: ask for less/);
  return { msg: rest, note };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const JAPANESE = "化学研究ユニット";

Deno.test("a result of Japanese names is cut to the limit in UTF-8 bytes, keeping the first", () => {
  const units = range(3_000).map((i) => ({ id: `unit-${i}`, name: `${JAPANESE}${i}` }));
  const { msg, note } = cut({ count: units.length, units }, 8_192);
  const kept = (msg.units as unknown[]).length;
  assert.ok(kept > 10, `${kept} units kept`);
  assert.deepEqual(msg, { count: 3_000, units: units.slice(0, kept) });
  assert.deepEqual(note.kept, { units: `${kept} of 3000` });
});

Deno.test("10,000 small lists are cut to the limit by dropping keys, the others kept whole", () => {
  const lists = Object.fromEntries(range(10_000).map((i) => [`a${i}`, [1]]));
  const { msg, note } = cut(lists, 8_192);
  const keys = Object.keys(msg);
  assert.ok(keys.length > 100 && keys.length < 10_000, `${keys.length} keys kept`);
  for (const key of keys) assert.deepEqual(msg[key], [1]);
  assert.deepEqual(note.kept, { "(the answer)": `${keys.length} of 10000 keys` });
});

Deno.test("lists nested in 10,000 objects are cut to the limit", () => {
  const groups = Object.fromEntries(range(10_000).map((i) => [`g${i}`, { items: [i] }]));
  const { msg, note } = cut({ count: 10_000, groups }, 8_192);
  assert.equal(msg.count, 10_000);
  const kept = Object.keys(msg.groups as Json);
  assert.ok(kept.length > 100, `${kept.length} groups kept`);
  assert.deepEqual(note.kept, { groups: `${kept.length} of 10000 keys` });
});

Deno.test("an answer nested 1,000 levels deep is cut to the limit", () => {
  let deep: Json = { leaf: "x".repeat(100_000) };
  for (let i = 0; i < 1_000; i++) deep = { level: i, inner: deep };
  const { msg } = cut({ id: "deep", tree: deep }, 4_096);
  assert.equal(msg.id, "deep");
});

Deno.test("one huge string is cut to a prefix of it, and the note says how much was kept", () => {
  const content = `${JAPANESE}\n"\\😀`.repeat(50_000);
  const { msg, note } = cut({ name: "big", content }, 8_192);
  const kept = msg.content as string;
  assert.equal(msg.name, "big");
  assert.ok(kept.length > 100 && content.startsWith(kept), `${kept.length} characters kept`);
  assert.deepEqual(note.kept, { content: `first ${kept.length} of ${content.length} characters` });
});

Deno.test("a string of control characters and lone surrogates is cut by its escaped size", () => {
  const content = "\u0001\ud800x".repeat(20_000);
  const limited = limitMsg({ content }, 2_048);
  assert.ok(utf8(JSON.stringify(limited)) <= 2_048, `${utf8(JSON.stringify(limited))} bytes`);
  const kept = limited.content as string;
  assert.ok(kept.length > 100 && content.startsWith(kept), `${kept.length} characters kept`);
});

Deno.test("a huge object with no lists is cut to the limit by dropping keys", () => {
  const object = Object.fromEntries(range(50_000).map((i) => [`key-${i}`, `value ${i}`]));
  const { msg, note } = cut(object, 4_096);
  const keys = Object.keys(msg);
  assert.ok(keys.length > 10, `${keys.length} keys kept`);
  for (const key of keys) assert.equal(msg[key], object[key]);
  assert.deepEqual(note.kept, { "(the answer)": `${keys.length} of 50000 keys` });
});

Deno.test("a cut still under way when the call's time is up keeps only its note", () => {
  // Before: an 11.7 MB answer took 1.2 s to cut, after the call's timeout_s of 1 s had passed.
  const object = Object.fromEntries(range(50_000).map((i) => [`key-${i}`, [i, `value ${i}`]]));
  const msg = { success: true, msg: object, http_status_code: 200 };
  const late = toolResult(msg, { maxBytes: 4_096, deadline: performance.now() - 1 });
  assert.deepEqual(msgOf(late), {
    truncated: {
      total_bytes: utf8(JSON.stringify(object)),
      limit_bytes: 4_096,
      kept: {},
      hint: "The answer was too large and has been cut: ask for less, e.g. one id, a scope_id, " +
        "or a shorter from/until window",
    },
  });
  const inTime = toolResult(msg, { maxBytes: 4_096, deadline: performance.now() + 60_000 });
  assert.ok(Object.keys(msgOf(inTime)).length > 10, "with time left, the cut keeps keys");
});

Deno.test("a list whose first item alone is over the limit keeps a cut version of that item", () => {
  const items = range(3).map((i) => ({ id: i, content: "y".repeat(100_000) }));
  const { msg, note } = cut({ items }, 4_096);
  const first = (msg.items as { id: number; content: string }[])[0]!;
  assert.equal((msg.items as unknown[]).length, 1);
  assert.equal(first.id, 0);
  assert.deepEqual(note.kept, {
    items: "1 of 3, the last cut",
    "items.0.content": `first ${first.content.length} of 100000 characters`,
  });
});

Deno.test("every shape is within the smallest limit the configuration allows", () => {
  const shapes: Json[] = [
    { units: range(3_000).map((i) => ({ name: `${JAPANESE}${i}` })) },
    Object.fromEntries(range(10_000).map((i) => [`a${i}`, [1]])),
    { [`${"k".repeat(5_000)}`]: "v".repeat(5_000), other: [range(2_000)] },
    { content: "😀".repeat(100_000) },
  ];
  for (const shape of shapes) cut(shape, 1_024);
});

Deno.test("a large failure is cut with room for its hint", () => {
  // Nested lists under long keys, so that the note of what was kept is long too.
  const tree = (depth: number): unknown =>
    depth === 0 ? range(3_000) : Object.fromEntries(
      ["a", "b"].map((s) => [`${"k".repeat(70)}${depth}${s}`, tree(depth - 1)]),
    );
  const rv: ApiRv = {
    success: false,
    msg: { error: "Cannot get_units: connection refused", tree: tree(2) },
    http_status_code: 0,
    reason: "refused",
  };
  for (const limit of [1_024, 2_048, 4_096]) {
    const result = toolResult(rv, { maxBytes: limit });
    const text = textOf(result);
    assert.ok(utf8(text) <= limit, `${utf8(text)} bytes over the limit of ${limit}`);
    const msg = msgOf(result);
    assert.match(String(msg.hint), /^Nothing is listening at the Account Server URL/);
    assert.ok(msg.truncated, "the tree was cut");
  }
});

Deno.test("an answer within the limit is returned as it is", () => {
  const msg = { units: range(100).map((i) => ({ name: `${JAPANESE}${i}` })) };
  const result = toolResult({ success: true, msg, http_status_code: 200 }, { maxBytes: 65_536 });
  assert.deepEqual(msgOf(result), msg);
});

async function withStub(
  maxResultBytes: number,
  fn: (stub: StubServer, call: Session["call"]) => Promise<void>,
): Promise<void> {
  await using session = await openSession({ maxResultBytes });
  await fn(session.stub, session.call);
}

Deno.test("get_units over units with Japanese names is cut to the limit in UTF-8 bytes", () =>
  withStub(4_096, async (stub, call) => {
    const org = seedIds(stub).org;
    for (let i = 0; i < 500; i++) stub.state.addUnit(org, `${JAPANESE}${i}`, 1, "alice", "alice");
    const result = await call("get_units", { timeout_s: 30 });
    const text = textOf(result);
    assert.equal(result.isError, false, text);
    assert.ok(utf8(text) <= 4_096, `${utf8(text)} bytes`);
    const note = msgOf(result).truncated as Note;
    assert.ok(note.total_bytes > 4 * 4_096, String(note.total_bytes));
    assert.match(text, new RegExp(JAPANESE));
  }));

Deno.test("a tool call answered with 10,000 small lists is cut and answers in bounded time", () =>
  withStub(65_536, async (stub, call) => {
    const body = Object.fromEntries(range(10_000).map((i) => [`a${i}`, [1, 2, 3, 4, 5]]));
    stub.inject("get_available_units", {
      status: 200,
      body: JSON.stringify(body),
      contentType: "application/json",
    });
    const started = performance.now();
    const result = await call("get_available_units", { timeout_s: 10 });
    const seconds = (performance.now() - started) / 1000;
    // Not a speed test: a cut that grows faster than the answer took minutes here.
    assert.ok(seconds < 10, `answered after ${seconds.toFixed(1)} s`);
    const text = textOf(result);
    assert.equal(result.isError, false, text.slice(0, 300));
    assert.ok(utf8(text) <= 65_536, `${utf8(text)} bytes`);
    const kept = (msgOf(result).truncated as Note).kept["(the answer)"];
    assert.match(kept ?? "", /^\d+ of 10000 keys$/);
  }));

Deno.test("an answer nested thousands of levels deep is refused as a failure, not a crash", () => {
  let value: unknown = "hidden\u200bcharacter";
  for (let i = 0; i < 20_000; i++) value = { a: value };
  const result = toolResult(
    { success: true, msg: value as Record<string, unknown>, http_status_code: 200 },
    { maxBytes: 65_536 },
  );
  assert.equal(result.isError, true);
  assert.deepEqual(result.structuredContent, {
    success: false,
    msg: { error: "Cannot call: the answer is nested too deeply to show" },
    http_status_code: 200,
  });
});
