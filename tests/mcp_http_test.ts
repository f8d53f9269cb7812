/**
 * MCP over Streamable HTTP, end to end with the SDK's HTTP client: callers acting as themselves,
 * tokens required, Origin and Host checks, sessions kept to their owner, tool selection, and
 * shutdown with a call in flight.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { selectTools } from "../src/mcp/mod.ts";
import { initializeRequest, seedIds } from "./_helpers.ts";
import { type Endpoint, type EndpointOptions, openEndpoint } from "../testing/mod.ts";

async function withHttp(
  fn: (http: Endpoint) => Promise<void>,
  options: EndpointOptions = {},
): Promise<void> {
  await using http = await openEndpoint(options);
  await fn(http);
}

async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<CallToolResult> {
  return await client.callTool({ name, arguments: args }) as CallToolResult;
}

function userOf(result: CallToolResult): unknown {
  return (result.structuredContent as { msg: { user?: unknown } }).msg.user;
}

const INITIALIZE = JSON.stringify(initializeRequest());

function post(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: INITIALIZE,
  });
}

Deno.test("two concurrent HTTP sessions with different tokens each act as their own user", () =>
  withHttp(async ({ stub, connect }) => {
    const [alice, bob] = await Promise.all([connect(stub.tokens.alice), connect(stub.tokens.bob)]);
    const calls: CallToolResult[] = await Promise.all(
      Array.from(
        { length: 5 },
        () => [callTool(alice, "get_account"), callTool(bob, "get_account")],
      )
        .flat(),
    );
    const users = calls.map(userOf);
    assert.deepEqual(users.filter((u) => (u as { id: string }).id === "alice").length, 5);
    assert.deepEqual(users.filter((u) => (u as { id: string }).id === "bob").length, 5);
    for (const [i, result] of calls.entries()) {
      assert.deepEqual(userOf(result), { id: i % 2 === 0 ? "alice" : "bob" });
    }
    const seen = stub.requests.map((r) => r.authorization);
    assert.equal(seen.filter((a) => a === `Bearer ${stub.tokens.alice}`).length, 5);
    assert.equal(seen.filter((a) => a === `Bearer ${stub.tokens.bob}`).length, 5);

    const forbidden = await callTool(bob, "get_organisation", { org_id: seedIds(stub).org });
    assert.equal(forbidden.isError, true, "bob cannot see alice's organisation through the server");
  }));

Deno.test("a request without a token gets 401 unless the operator allows server credentials", async () => {
  await withHttp(async ({ endpoint, stub }) => {
    const response = await post(endpoint.url);
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.match((await response.json()).error.message, /Authorization: Bearer <token>/);
    assert.equal(stub.requests.length, 0);
  });
  await withHttp(async ({ connect }) => {
    const client = await connect();
    assert.deepEqual(userOf(await callTool(client, "get_account")), { id: "admin" });
  }, {
    allowServerCredentials: true,
    fromStub: (stub) => ({ serverToken: stub.tokens.admin }),
  });
});

Deno.test("an unknown Origin and a Host that is not allowed are refused with 403", async () => {
  await withHttp(async ({ endpoint, stub, connect }) => {
    const response = await post(endpoint.url, {
      authorization: `Bearer ${stub.tokens.alice}`,
      origin: "https://evil.example",
    });
    assert.equal(response.status, 403);
    assert.match((await response.json()).error.message, /Origin "https:\/\/evil.example"/);
    const client = await connect(stub.tokens.alice, {
      headers: { origin: "https://console.example" },
    });
    assert.equal((await callTool(client, "get_account")).isError, false);
  }, { allowedOrigins: ["https://console.example"] });
  await withHttp(async ({ endpoint, stub }) => {
    const response = await post(endpoint.url, { authorization: `Bearer ${stub.tokens.alice}` });
    assert.equal(response.status, 403);
    assert.match((await response.json()).error.message, /Host "127\.0\.0\.1:\d+" is not allowed/);
    assert.equal(stub.requests.length, 0);
  }, { allowedHosts: ["mcp.example.org"] });
});

Deno.test("a session cannot be used with another caller's token", () =>
  withHttp(async ({ endpoint, stub, connect }) => {
    const alice = await connect(stub.tokens.alice);
    await callTool(alice, "ping");
    const sessionId = (alice.transport as StreamableHTTPClientTransport).sessionId!;
    assert.ok(sessionId);
    const hijack = await fetch(endpoint.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-06-18",
        authorization: `Bearer ${stub.tokens.bob}`,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    assert.equal(hijack.status, 404, "another caller learns nothing, not even that it exists");
    assert.match((await hijack.json()).error.message, /^Session not found/);
    const unknown = await fetch(endpoint.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": "no-such-session",
        authorization: `Bearer ${stub.tokens.bob}`,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  }));

Deno.test("read-only over HTTP lists only reads and refuses a write, sending nothing", () =>
  withHttp(async ({ stub, connect }) => {
    const client = await connect(stub.tokens.alice);
    const { tools } = await client.listTools();
    const names = tools.map((t: { name: string }) => t.name);
    assert.ok(names.includes("get_units") && names.includes("get_api_url"));
    assert.equal(names.includes("create_unit"), false);
    assert.equal(names.length, selectTools({ readOnly: true }).length);
    const write = await callTool(client, "create_unit", {
      unit_name: "Nope",
      org_id: seedIds(stub).org,
      billing_day: 1,
    });
    assert.equal(write.isError, true);
    assert.match(JSON.stringify(write.content), /create_unit/);
    assert.equal(stub.requests.length, 0);
  }, { selection: { readOnly: true } }));

Deno.test("toolsets over HTTP offer exactly their tools", () =>
  withHttp(async ({ stub, connect }) => {
    const client = await connect(stub.tokens.alice);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t: { name: string }) => t.name).sort(), [
      "get_merchant",
      "get_merchants",
      "get_unit",
    ]);
  }, { selection: { toolsets: ["merchants"], tools: ["get_unit"] } }));

Deno.test("shutdown lets a call in flight finish, then refuses new requests", () =>
  withHttp(async ({ stub, endpoint, connect }) => {
    const client = await connect(stub.tokens.alice);
    stub.inject("get_available_units", { delayMs: 400 });
    const inFlight = callTool(client, "get_units");
    while (stub.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    const stopped = endpoint.shutdown();
    const result = await inFlight;
    assert.equal(result.isError, false, JSON.stringify(result.content));
    await stopped;
    assert.equal(endpoint.sessions, 0);
    await assert.rejects(post(endpoint.url, { authorization: `Bearer ${stub.tokens.alice}` }));
  }, { graceMs: 10_000 }));

Deno.test("shutdown cancels a call that outlives the grace period", () =>
  withHttp(async ({ stub, endpoint, connect }) => {
    const client = await connect(stub.tokens.alice);
    stub.inject("get_available_units", { delayMs: 30_000 });
    const inFlight = callTool(client, "get_units", { timeout_s: 60 }).then(
      (result) => ({ result }),
      (error) => ({ error }),
    );
    while (stub.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    const started = performance.now();
    await endpoint.shutdown();
    assert.ok(performance.now() - started < 10_000, "shutdown did not wait for the slow call");
    const outcome = await inFlight;
    assert.ok("result" in outcome, "the caller hears how the call ended");
    assert.equal(outcome.result.isError, true);
    assert.match(
      JSON.stringify(outcome.result.content),
      /cancelled before the Account Server answered/,
    );
  }, { graceMs: 100 }));

Deno.test("on loopback the server's own origin may call and other origins are still refused", () =>
  withHttp(async ({ endpoint, stub }) => {
    const port = Number(new URL(endpoint.url).port);
    const auth = { authorization: `Bearer ${stub.tokens.alice}` };
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      const response = await post(endpoint.url, { ...auth, origin });
      assert.equal(response.status, 200, origin);
      await response.body?.cancel();
    }
    for (const origin of [`http://localhost:${port + 1}`, `http://evil.example:${port}`]) {
      const response = await post(endpoint.url, { ...auth, origin });
      assert.equal(response.status, 403, origin);
      assert.match((await response.json()).error.message, /Origin ".+" is not allowed/);
    }
  }));
