/**
 * Attacks on who may call, over real HTTP: forged, expired, foreign and misdirected tokens are
 * refused before anything reaches the Account Server; a session and its delete confirmations
 * belong only to the caller who opened it.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type CallToolResult, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { HttpEndpoint, HttpOptions } from "../src/mcp/mod.ts";
import { KEYCLOAK_SEED } from "../src/stub/mod.ts";
import { initializeRequest, passwordToken, seedIds } from "./_helpers.ts";
import { type Endpoint, type EndpointOptions, openEndpoint } from "../testing/mod.ts";

async function withRig(
  fn: (rig: Endpoint) => Promise<void>,
  options: { keycloak?: EndpointOptions["keycloak"]; http?: Partial<HttpOptions> } = {},
): Promise<void> {
  await using rig = await openEndpoint({
    keycloak: options.keycloak,
    graceMs: undefined,
    ...options.http,
  });
  await fn(rig);
}

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** An unsigned JWT (`alg: none`) claiming to be `claims`. */
function forged(claims: Record<string, unknown>): string {
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`;
}

const HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-06-18",
};

function post(
  endpoint: HttpEndpoint,
  token: string,
  body: unknown,
  sessionId?: string,
): Promise<Response> {
  return fetch(endpoint.url, {
    method: "POST",
    headers: {
      ...HEADERS,
      authorization: `Bearer ${token}`,
      ...(sessionId ? { "mcp-session-id": sessionId } : {}),
    },
    body: JSON.stringify(body),
  });
}

async function connect(
  endpoint: HttpEndpoint,
  token: string,
  capabilities: Record<string, unknown> = {},
): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(endpoint.url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "attack-test", version: "1.0.0" }, { capabilities });
  await client.connect(transport);
  return client;
}

async function refusedWith401(response: Response, why: RegExp): Promise<void> {
  assert.equal(response.status, 401);
  const challenge = response.headers.get("www-authenticate") ?? "";
  assert.match(challenge, /^Bearer realm="squonk2-as-mcp", error="invalid_token"/);
  assert.match((await response.json()).error.message, why);
}

Deno.test("with Keycloak, an unsigned alg-none token claiming to be alice gets 401 and the AS hears nothing", () =>
  withRig(async ({ stub, endpoint }) => {
    const token = forged({
      iss: stub.keycloak.issuer,
      sub: "f:squonk2:alice",
      azp: KEYCLOAK_SEED.clientId,
      typ: "Bearer",
      exp: Math.floor(Date.now() / 1000) + 300,
    });
    await refusedWith401(
      await post(endpoint, token, initializeRequest()),
      /signing algorithm is not accepted/,
    );
    assert.equal(endpoint.sessions, 0);
    assert.deepEqual(stub.requests, []);
  }, { keycloak: true }));

Deno.test("with Keycloak, an expired token signed by the realm gets 401 saying it expired", () =>
  withRig(async ({ stub, endpoint }) => {
    const token = await stub.keycloak.mint("alice", { lifetimeS: -120 });
    await refusedWith401(await post(endpoint, token, initializeRequest()), /token has expired/);
    assert.deepEqual(stub.requests, []);
  }, { keycloak: true }));

Deno.test("with Keycloak, a token from another realm of the same Keycloak gets 401", () =>
  withRig(async ({ stub, endpoint }) => {
    const { access } = await passwordToken(stub, "alice", KEYCLOAK_SEED.foreignRealm);
    assert.ok(access, "the foreign realm issued a token");
    await refusedWith401(await post(endpoint, access, initializeRequest()), /not signed by a key/);
    assert.deepEqual(stub.requests, []);
  }, { keycloak: true }));

Deno.test("with Keycloak, the realm's own key with another issuer, client or token type gets 401", () =>
  withRig(async ({ stub, endpoint }) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ iss: `${stub.keycloak.url}/realms/elsewhere` }, /"iss" claim/],
      [{ azp: "some-other-client", aud: "account" }, /not issued for "account-server-api"/],
      [{ typ: "Refresh" }, /"Refresh" token, not an access token/],
    ];
    for (const [claims, why] of cases) {
      const token = await stub.keycloak.mint("alice", { claims });
      await refusedWith401(await post(endpoint, token, initializeRequest()), why);
    }
    assert.deepEqual(stub.requests, []);
  }, { keycloak: true }));

Deno.test("with Keycloak, a real token works, and a token signed by a newly rotated key too", () =>
  withRig(async ({ stub, endpoint }) => {
    const alice = await connect(endpoint, (await passwordToken(stub, "alice")).access);
    const result = await alice.callTool({ name: "get_account", arguments: {} }) as CallToolResult;
    assert.deepEqual((result.structuredContent as { msg: { user: unknown } }).msg.user, {
      id: "alice",
    });
    assert.equal(stub.keycloak.jwksFetches.get(KEYCLOAK_SEED.realm), 1);
    await stub.keycloak.rotateKeys();
    const bob = await connect(endpoint, (await passwordToken(stub, "bob")).access);
    const bobs = await bob.callTool({ name: "get_account", arguments: {} }) as CallToolResult;
    assert.deepEqual((bobs.structuredContent as { msg: { user: unknown } }).msg.user, {
      id: "bob",
    });
    assert.equal(stub.keycloak.jwksFetches.get(KEYCLOAK_SEED.realm), 2, "unknown kid: refetched");
    await alice.close();
    await bob.close();
  }, { keycloak: true }));

Deno.test("with Keycloak, a token signed by a key removed from the realm is refused once the key set is 10 minutes old", () => {
  // Before: the key set was kept for good, so a removed key verified until the server restarted.
  let clock = Date.now();
  return withRig(async ({ stub, endpoint }) => {
    const status = async (token: string) => {
      const response = await post(endpoint, token, initializeRequest());
      await response.body?.cancel();
      return response.status;
    };
    const old = await stub.keycloak.mint("alice", { lifetimeS: 3600 });
    assert.equal(await status(old), 200);
    await stub.keycloak.rotateKeys({ retire: true });
    assert.equal(await status(old), 200, "the cached key set still holds the removed key");
    clock += 9 * 60 * 1000;
    assert.equal(await status(old), 200, "within 10 minutes the cached set is used");
    assert.equal(stub.keycloak.jwksFetches.get(KEYCLOAK_SEED.realm), 1);
    clock += 60 * 1000;
    await refusedWith401(await post(endpoint, old, initializeRequest()), /not signed by a key/);
    assert.equal(stub.keycloak.jwksFetches.get(KEYCLOAK_SEED.realm), 2, "fetched again");
    const fresh = await stub.keycloak.mint("alice", { lifetimeS: 3600 });
    assert.equal(await status(fresh), 200, "the realm's current key verifies");
    assert.equal(stub.keycloak.jwksFetches.get(KEYCLOAK_SEED.realm), 2);
    // An old set is not used when it cannot be renewed: callers wait for Keycloak instead.
    stub.keycloak.setDown(true);
    clock += 10 * 60 * 1000;
    assert.equal(await status(fresh), 503);
  }, { keycloak: { now: () => clock, refetchAfterS: 10 } });
});

Deno.test("with Keycloak down, a caller gets 503 and the AS hears nothing", () =>
  withRig(async ({ stub, endpoint }) => {
    const token = (await passwordToken(stub, "alice")).access;
    stub.keycloak.setDown(true);
    const response = await post(endpoint, token, initializeRequest());
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "5");
    await response.body?.cancel();
    assert.deepEqual(stub.requests, []);
  }, { keycloak: true }));

Deno.test("without Keycloak, a forged token with alice's sub cannot use alice's session", () =>
  withRig(async ({ stub, endpoint }) => {
    // Alice calls with a real Keycloak JWT; the server has no Keycloak to verify it.
    const { access } = await passwordToken(stub, "alice");
    const alice = await connect(endpoint, access);
    await alice.ping();
    const sessionId = (alice.transport as StreamableHTTPClientTransport).sessionId!;
    const token = forged({ sub: "f:squonk2:alice", preferred_username: "alice" });
    const response = await post(
      endpoint,
      token,
      { jsonrpc: "2.0", id: 7, method: "tools/list" },
      sessionId,
    );
    assert.equal(response.status, 404);
    assert.match((await response.json()).error.message, /^Session not found/);
    await alice.close();
  }));

Deno.test("a delete confirmation answered by someone other than the session's owner is ignored", () =>
  withRig(async ({ stub, endpoint }) => {
    const { access } = await passwordToken(stub, "alice");
    const alice = await connect(endpoint, access, { elicitation: {} });
    const asked = Promise.withResolvers<string | number>();
    const aliceAnswers = Promise.withResolvers<{ action: "decline" }>();
    alice.setRequestHandler(
      ElicitRequestSchema,
      (_request: unknown, extra: { requestId: string | number }) => {
        asked.resolve(extra.requestId);
        return aliceAnswers.promise;
      },
    );
    const sessionId = (alice.transport as StreamableHTTPClientTransport).sessionId!;
    const asset = seedIds(stub).aliceAsset;
    const call = alice.callTool({ name: "delete_asset", arguments: { asset_id: asset } });
    const id = await asked.promise;
    const mallory = forged({ sub: "f:squonk2:alice" });
    const accept = { jsonrpc: "2.0", id, result: { action: "accept", content: { confirm: true } } };
    const response = await post(endpoint, mallory, accept, sessionId);
    assert.equal(response.status, 404);
    await response.body?.cancel();
    aliceAnswers.resolve({ action: "decline" });
    const result = await call as CallToolResult;
    assert.equal(result.isError, true);
    assert.match(JSON.stringify(result.content), /did not confirm; nothing was sent/);
    assert.deepEqual(stub.requests.filter((r) => r.method === "DELETE"), []);
    assert.ok(stub.state.assets.has(asset), "alice's asset is still there");
    await alice.close();
  }));

/** Reads SSE events until a message that `match` accepts, or gives up after `ms`. */
async function nextEvent(
  events: ReadableStreamDefaultReader<string>,
  match: (message: Record<string, unknown>) => boolean,
  ms: number,
): Promise<Record<string, unknown> | "nothing"> {
  const timer = setTimeout(() => events.cancel().catch(() => {}), ms);
  let text = "";
  try {
    while (true) {
      const { done, value } = await events.read();
      if (done) return "nothing";
      text += value;
      const lines = text.split("\n");
      text = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith("data: ")) continue;
        const message = JSON.parse(line.slice(6));
        if (match(message)) return message;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a client that declares elicitation but opens no GET stream is asked on the call's own stream at once", () =>
  withRig(async ({ stub, endpoint }) => {
    const token = stub.tokens.alice;
    const init = initializeRequest();
    (init.params as { capabilities: unknown }).capabilities = { elicitation: {} };
    const opened = await post(endpoint, token, init);
    const sessionId = opened.headers.get("mcp-session-id")!;
    await opened.body?.cancel();
    const initialized = { jsonrpc: "2.0", method: "notifications/initialized" };
    await (await post(endpoint, token, initialized, sessionId)).body?.cancel();
    const call = await post(endpoint, token, {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "delete_asset", arguments: { asset_id: seedIds(stub).aliceAsset } },
    }, sessionId);
    // Before: the question went to a GET stream that was never opened, and the call waited 60 s.
    const events = call.body!.pipeThrough(new TextDecoderStream()).getReader();
    const asked = await nextEvent(events, (m) => m.method === "elicitation/create", 5_000);
    assert.notEqual(asked, "nothing", "the confirmation question arrived on the call's stream");
    assert.match(
      String((asked as { params: { message: string } }).params.message),
      /cannot be undone/,
    );
    const decline = {
      jsonrpc: "2.0",
      id: (asked as { id: number }).id,
      result: { action: "decline" },
    };
    const answered = await post(endpoint, token, decline, sessionId);
    assert.equal(answered.status, 202);
    await answered.body?.cancel();
    const result = await nextEvent(events, (m) => m.id === 2, 5_000);
    assert.match(JSON.stringify(result), /did not confirm; nothing was sent/);
    assert.deepEqual(stub.requests.filter((r) => r.method === "DELETE"), []);
  }));
