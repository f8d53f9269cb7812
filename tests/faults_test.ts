/**
 * Faults, through the MCP server in memory and over HTTP and stdio: every kind of bad answer from
 * the Account Server gives a clean failure and a live server; nothing is applied twice; very large
 * answers are cut; malformed MCP input never brings the server down.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { AsApi } from "../src/api/mod.ts";
import { KeycloakTokens, StaticToken } from "../src/auth/mod.ts";
import { type Fault, KEYCLOAK_SEED, startStub, type StubServer } from "../src/stub/mod.ts";
import { initializeRequest, seedIds, selfSignedCertificate } from "./_helpers.ts";
import { openEndpoint, openSession, type Session, type SessionOptions } from "../testing/mod.ts";

type Rv = { success: boolean; msg: Record<string, unknown>; http_status_code: number };

interface Rig {
  stub: StubServer;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
}

async function withRig(
  fn: (rig: Session) => Promise<void>,
  options: SessionOptions = {},
): Promise<void> {
  await using session = await openSession(options);
  await fn(session);
}

const rvOf = (result: CallToolResult) => result.structuredContent as Rv;

Deno.test("a stall past timeout_s returns within timeout_s plus a small margin, as a failure", () =>
  withRig(async ({ stub, call }) => {
    stub.inject("get_available_units", { delayMs: 20_000 });
    const started = performance.now();
    const result = await call("get_units", { timeout_s: 0.5 });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 0.5 + 1.5, `returned after ${seconds.toFixed(2)} s`);
    assert.equal(result.isError, true);
    assert.deepEqual(rvOf(result), {
      success: false,
      msg: {
        error: "Cannot get_units: no response within 0.5 s (timed out)",
        hint:
          "The Account Server did not answer within timeout_s: it may be slow or busy; a larger timeout_s may help",
      },
      http_status_code: 0,
    });
    stub.clearFaults();
    assert.equal((await call("get_units")).isError, false, "the next call works");
  }));

const BAD_ANSWERS: [string, Fault, number, RegExp][] = [
  [
    "a 500 with an HTML page",
    {
      status: 500,
      contentType: "text/html",
      body: "<html><title>Server Error</title><body>stack trace</body></html>",
    },
    500,
    /^Cannot get_units: 500 Internal Server Error: Server Error$/,
  ],
  ["a 502 with no body", { status: 502 }, 502, /^Cannot get_units: 502 Bad Gateway$/],
  [
    "a 503 with an empty HTML body",
    { status: 503, contentType: "text/html", body: "" },
    503,
    /^Cannot get_units: 503 Service Unavailable$/,
  ],
  [
    "malformed JSON on a 200",
    { status: 200, contentType: "application/json", body: '{"units": [,]}' },
    200,
    /200 OK: the response is not valid JSON/,
  ],
  [
    "truncated JSON on a 200",
    { status: 200, contentType: "application/json", body: '{"units": [{"id": "unit-' },
    200,
    /200 OK: the response is not valid JSON/,
  ],
  [
    "a 200 with a body that is not JSON",
    { status: 200, contentType: "text/plain", body: "OK" },
    200,
    /not valid JSON: "OK"/,
  ],
  [
    "a connection dropped mid-body",
    { drop: true },
    0,
    /the connection closed before the response was complete/,
  ],
];

for (const [what, fault, status, error] of BAD_ANSWERS) {
  Deno.test(`${what} gives a clean failure and the server goes on working`, () =>
    withRig(async ({ stub, call }) => {
      stub.inject("get_available_units", { ...fault, times: 1 });
      const result = await call("get_units");
      assert.equal(result.isError, true);
      const rv = rvOf(result);
      assert.equal(rv.success, false);
      assert.equal(rv.http_status_code, status);
      assert.match(String(rv.msg.error), error);
      assert.deepEqual(JSON.parse((result.content[0] as { text: string }).text), rv);
      const next = await call("get_units");
      assert.equal(next.isError, false, "the next call works");
    }));
}

Deno.test("a refused connection names the host, and its hint says waiting will not help", async () => {
  await using session = await openSession({
    stubStopped: true,
    tokens: () => new StaticToken("t0k3n-for-nothing"),
  });
  const result = await session.call("get_account");
  assert.equal(result.isError, true);
  assert.match(String(rvOf(result).msg.error), /connection to "127\.0\.0\.1:\d+" refused/);
  assert.equal(
    rvOf(result).msg.hint,
    "Nothing is listening at the Account Server URL (connection refused): the Account Server is not running there or the URL is wrong; waiting will not help: the operator must start it or fix SQUONK2_ASAPI_URL",
  );
});

function keycloak(stub: StubServer): KeycloakTokens {
  return new KeycloakTokens({
    url: stub.keycloak.url,
    realm: stub.keycloak.realm,
    clientId: stub.keycloak.clientId,
    username: "alice",
    password: KEYCLOAK_SEED.passwords.alice!,
  });
}

Deno.test("a token that stops being accepted mid-session: reads recover at once, writes once", () =>
  withRig(async ({ stub, call }) => {
    assert.equal((await call("get_account")).isError, false);
    stub.keycloak.revokeAll();
    const read = await call("get_account");
    assert.equal(read.isError, false, "a read is retried once with a new token");
    assert.deepEqual(stub.requests.map((r) => r.path), [
      "/user/account",
      "/user/account",
      "/user/account",
    ]);

    stub.keycloak.revokeAll();
    const org = seedIds(stub).org;
    const write = await call("create_unit", { unit_name: "Once", org_id: org, billing_day: 2 });
    assert.equal(write.isError, true);
    assert.equal(rvOf(write).http_status_code, 401);
    assert.equal(
      rvOf(write).msg.hint,
      "The Account Server refused this server's access token, so nothing was applied: the next call gets a new token from Keycloak, so calling again is safe",
    );
    assert.equal(stub.requests.filter((r) => r.method === "POST").length, 1, "sent once");
    const again = await call("create_unit", { unit_name: "Once", org_id: org, billing_day: 2 });
    assert.equal(again.isError, false, "the next call uses a new token");
    const units = [...stub.state.units.values()].filter((u) => u.name === "Once");
    assert.equal(units.length, 1);
  }, { tokens: keycloak }));

/** A Keycloak on 127.0.0.1 that takes token requests and never answers them. */
function stallingKeycloak() {
  const stopping = new AbortController();
  const abandoned: number[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: stopping.signal, onListen: () => {} },
    (request) =>
      new Promise<Response>((resolve) => {
        const end = () => resolve(new Response(null, { status: 503 }));
        request.signal.addEventListener("abort", () => {
          abandoned.push(performance.now());
          end();
        });
        stopping.signal.addEventListener("abort", end);
      }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    /** When each token request was given up by the client (performance.now()). */
    abandoned,
    /** Whether a token request has been given up, waiting up to 5 s for it. */
    async wasAbandoned() {
      for (let i = 0; i < 500 && !abandoned.length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return abandoned.length > 0;
    },
    tokens: () => aliceAt(server.addr.port),
    async [Symbol.asyncDispose]() {
      stopping.abort();
      await server.finished;
    },
  };
}

Deno.test("a Keycloak that stalls is bounded by the call's timeout_s, and says so", async () => {
  await using keycloak = stallingKeycloak();
  await withRig(async ({ stub, call }) => {
    const started = performance.now();
    const result = await call("get_account", { timeout_s: 1 });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 3, `answered after ${seconds.toFixed(1)} s`);
    assert.deepEqual(rvOf(result), {
      success: false,
      msg: {
        error: "Cannot get_account: could not get an access token from Keycloak: " +
          "no response within 1 s (timed out)",
        hint: "Keycloak did not answer in time, so nothing was sent to the Account Server: " +
          "try again later; a larger timeout_s may help",
      },
      http_status_code: 0,
    });
    assert.deepEqual(stub.requests, [], "nothing reached the Account Server");
    assert.ok(await keycloak.wasAbandoned(), "the token request was given up");
  }, { tokens: keycloak.tokens });
});

/** Alice's password sign-in at a Keycloak a test serves on `port`. */
function aliceAt(port: number): KeycloakTokens {
  return new KeycloakTokens({
    url: `http://127.0.0.1:${port}`,
    realm: "squonk2",
    clientId: "account-server-api",
    username: "alice",
    password: "alice-password",
  });
}

/** A Keycloak on 127.0.0.1 that issues `token` after `delayMs`. */
function slowKeycloak(token: string, delayMs: number) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async () => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return Response.json({ access_token: token, expires_in: 300 });
    },
  );
  return {
    tokens: () => aliceAt(server.addr.port),
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

Deno.test("a slow Keycloak and a slow Account Server share one timeout_s between them", async () => {
  let keycloak: ReturnType<typeof slowKeycloak> | undefined;
  try {
    await withRig(async ({ stub, call }) => {
      stub.inject("get_account", { delayMs: 20_000 });
      const started = performance.now();
      const result = await call("get_account", { timeout_s: 2 });
      const seconds = (performance.now() - started) / 1000;
      // Before, each wait had the whole timeout_s: 1.5 s for the token, then 2 s more.
      assert.ok(seconds < 3, `answered after ${seconds.toFixed(1)} s`);
      assert.equal(result.isError, true);
      assert.match(
        String(rvOf(result).msg.error),
        /^Cannot get_account: no response within 0\.\d+ s/,
      );
    }, {
      tokens: (stub) => {
        keycloak = slowKeycloak(stub.tokens.alice, 1_500);
        return keycloak.tokens();
      },
    });
  } finally {
    await keycloak?.[Symbol.asyncDispose]();
  }
});

Deno.test("a call cancelled while Keycloak stalls abandons the token request", async () => {
  await using keycloak = stallingKeycloak();
  await using session = await openSession({ tokens: () => keycloak.tokens() });
  const cancel = new AbortController();
  const call = session.client.callTool(
    { name: "get_account", arguments: { timeout_s: 60 } },
    undefined,
    { signal: cancel.signal },
  );
  await new Promise((r) => setTimeout(r, 200));
  const cancelled = performance.now();
  cancel.abort();
  await assert.rejects(call);
  assert.ok(await keycloak.wasAbandoned(), "the token request was given up");
  const seconds = (keycloak.abandoned[0]! - cancelled) / 1000;
  assert.ok(seconds < 5, `abandoned ${seconds.toFixed(1)} s after the cancel`);
});

const APPLIED_ONCE: [
  string,
  (stub: StubServer) => Record<string, unknown>,
  (s: StubServer) => number,
  string,
][] = [
  [
    "create_unit",
    (stub) => ({ unit_name: "Dropped", org_id: seedIds(stub).org, billing_day: 5 }),
    (stub) => [...stub.state.units.values()].filter((u) => u.name === "Dropped").length,
    "get_organisation_units",
  ],
  [
    "alter_product",
    (stub) => ({ product_id: seedIds(stub).storageProduct, allowance: 700 }),
    (stub) => stub.state.actions.filter((a) => a.action === "alter_product").length,
    "get_product",
  ],
  [
    "delete_asset",
    (stub) => ({ asset_id: seedIds(stub).aliceAsset }),
    (stub) => stub.state.actions.filter((a) => a.action === "delete_asset").length,
    "get_available_assets",
  ],
];

for (const [tool, args, applied, check] of APPLIED_ONCE) {
  Deno.test(`${tool} reaches the Account Server once when the connection drops after it, and its hint says check with ${check}`, () =>
    withRig(async ({ stub, call }) => {
      stub.inject(tool, { dropAfterApplying: true });
      const result = await call(tool, args(stub));
      assert.equal(result.isError, true);
      assert.equal(rvOf(result).http_status_code, 0);
      assert.match(String(rvOf(result).msg.error), /connection closed before the response/);
      assert.equal(stub.requests.length, 1, "no automatic retry of a change");
      assert.equal(applied(stub), 1, "applied exactly once");
      assert.equal(
        rvOf(result).msg.hint,
        `${tool} may have been applied although the answer was lost: before calling it again, check with ${check} whether it was`,
      );
    }));
}

/** Waits (at most `ms`) until `test` holds; true if it did. */
async function eventually(test: () => boolean, ms = 5_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!test() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return test();
}

Deno.test("a timed-out create_unit says it may have been applied and to check get_organisation_units, not to try again", () =>
  withRig(async ({ stub, call }) => {
    stub.inject("create_unit", { delayMs: 500, times: 1 });
    const org = seedIds(stub).org;
    const result = await call("create_unit", {
      unit_name: "Slow",
      org_id: org,
      billing_day: 3,
      timeout_s: 0.1,
    });
    assert.equal(rvOf(result).http_status_code, 0);
    const hint = String(rvOf(result).msg.hint);
    assert.equal(
      hint,
      "create_unit may have been applied although no answer came in time: before calling it again, check with get_organisation_units whether it was; a larger timeout_s may help",
    );
    assert.doesNotMatch(hint, /try again/i);
    const slow = () => [...stub.state.units.values()].filter((u) => u.name === "Slow").length;
    assert.ok(await eventually(() => slow() === 1), "the Account Server applied it after all");
  }));

Deno.test("with get_organisation_units not offered, a timed-out create_unit's hint names no tool to check with", () =>
  withRig(async ({ stub, call }) => {
    stub.inject("create_unit", { delayMs: 300, times: 1 });
    const args = { unit_name: "Slow", org_id: seedIds(stub).org, billing_day: 3, timeout_s: 0.1 };
    const result = await call("create_unit", args);
    assert.equal(
      rvOf(result).msg.hint,
      "create_unit may have been applied although no answer came in time: before calling it again, check whether it was; a larger timeout_s may help",
    );
  }, { selection: { excludeTools: ["get_organisation_units"] } }));

Deno.test("a 502 on a create says it may have been applied; on a read it has no such hint", () =>
  withRig(async ({ stub, call }) => {
    stub.inject("create_unit", { status: 502, times: 1 });
    stub.inject("get_organisations", { status: 502, times: 1 });
    const args = { unit_name: "Gateway", org_id: seedIds(stub).org, billing_day: 3 };
    const created = await call("create_unit", args);
    assert.match(
      String(rvOf(created).msg.hint),
      /^create_unit may have been applied .* get_organisation_units/,
    );
    const read = await call("get_organisations");
    assert.equal(rvOf(read).http_status_code, 502);
    assert.equal("hint" in rvOf(read).msg, false);
  }));

Deno.test("a 404 hint lists what exists of the kind of id the call named", () =>
  withRig(async ({ call }) => {
    // Before: get_units (which finds Units by name) and three lists unrelated to the call.
    const unit = "unit-00000000-0000-4000-8000-0000000000ff";
    const product = "product-00000000-0000-4000-8000-0000000000ff";
    const hintOf = async (tool: string, args: Record<string, unknown>) => {
      const result = await call(tool, args);
      assert.equal(rvOf(result).http_status_code, 404, tool);
      return rvOf(result).msg.hint;
    };
    assert.equal(
      await hintOf("get_unit", { unit_id: unit }),
      "Nothing has that id: list what exists first (get_available_units)",
    );
    assert.equal(
      await hintOf("get_products_for_unit", { unit_id: unit }),
      "Nothing has that id: list what exists first (get_available_units)",
    );
    assert.equal(
      await hintOf("get_product_charges", { product_id: product }),
      "Nothing has that id: list what exists first (get_available_products)",
    );
  }));

Deno.test("with get_available_units not offered, a 404 on a Unit names no tool", () =>
  withRig(async ({ call }) => {
    const result = await call("get_unit", { unit_id: "unit-00000000-0000-4000-8000-0000000000ff" });
    assert.equal(rvOf(result).http_status_code, 404);
    assert.equal(rvOf(result).msg.hint, "Nothing has that id: check it");
  }, { selection: { excludeTools: ["get_available_units"] } }));

Deno.test("a timed-out delete_unit says to check with get_unit whether it was applied", () =>
  withRig(async ({ stub, call }) => {
    // Before: get_units, which finds Units by name, not by the id the delete was given.
    stub.inject("delete_unit", { delayMs: 500, times: 1 });
    const unit = seedIds(stub).unit;
    const result = await call("delete_unit", { unit_id: unit, timeout_s: 0.1 });
    assert.equal(rvOf(result).http_status_code, 0);
    assert.equal(
      rvOf(result).msg.hint,
      "delete_unit may have been applied although no answer came in time: before calling it again, check with get_unit whether it was; a larger timeout_s may help",
    );
  }));

Deno.test("a 403 hint points to get_account only where get_account is offered", () =>
  withRig(async ({ call }) => {
    const result = await call("get_charges");
    assert.equal(rvOf(result).http_status_code, 403);
    assert.equal(
      rvOf(result).msg.hint,
      "The caller is not a member of that Organisation or Unit, or not an admin",
    );
  }, { selection: { toolsets: ["charges"] } }));

Deno.test("an untrusted TLS certificate's hint says how to trust it and that waiting will not help", async () => {
  await using session = await openSession({ stub: await selfSignedCertificate() });
  const result = await session.call("get_account");
  assert.equal(
    rvOf(result).msg.hint,
    "The Account Server's TLS certificate is not trusted: the operator must make it trusted, or set SQUONK2_ASAPI_VERIFY_SSL_CERT=no if they trust this server; waiting will not help",
  );
});

Deno.test("20,000 assets are cut to a valid result that says so and how to narrow it", () =>
  withRig(async ({ stub, call }) => {
    for (let i = 0; i < 20_000; i++) {
      stub.state.addAsset({
        name: `bulk-${i}`,
        creator: "alice",
        scope: "USER",
        scope_id: "alice",
        secret: false,
        content: `value ${i}`,
      });
    }
    const result = await call("get_available_assets", { scope_id: "alice", timeout_s: 30 });
    assert.equal(result.isError, false);
    const msg = rvOf(result).msg as {
      count: number;
      assets: { name: string }[];
      truncated: { total_bytes: number; limit_bytes: number; kept: Record<string, string> };
    };
    const text = (result.content[0] as { text: string }).text;
    assert.ok(new TextEncoder().encode(text).length <= 32_768, `${text.length} bytes`);
    assert.equal(msg.count, 20_001);
    assert.ok(msg.assets.length > 10 && msg.assets.length < 20_001);
    assert.equal(msg.assets[0]!.name, "api-key", "the first items are kept, in order");
    assert.ok(msg.truncated.total_bytes > 4_000_000, String(msg.truncated.total_bytes));
    assert.equal(msg.truncated.limit_bytes, 32_768);
    assert.deepEqual(msg.truncated.kept, { assets: `${msg.assets.length} of 20001` });
  }, { maxResultBytes: 32_768 }));

Deno.test("the client refuses a response body over its limit without holding it", async () => {
  const stub = await startStub();
  try {
    const api = new AsApi({ url: stub.url, env: () => undefined, maxResponseBytes: 1_000 });
    const rv = await api.call("get_units", {}, { token: stub.tokens.alice });
    assert.deepEqual(rv, {
      success: false,
      msg: {
        error: "Cannot get_units: 200 OK: the response is larger than 1000 bytes; ask for less",
      },
      http_status_code: 200,
    });
  } finally {
    await stub.shutdown();
  }
});

Deno.test("a burst of malformed MCP input over HTTP gets proper errors; the next request works", async () => {
  await using http = await openEndpoint();
  const { stub, endpoint } = http;
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${stub.tokens.alice}`,
  };
  const init = await fetch(endpoint.url, {
    method: "POST",
    headers,
    body: JSON.stringify(initializeRequest()),
  });
  const session = init.headers.get("mcp-session-id")!;
  await init.body?.cancel();
  const inSession = {
    ...headers,
    "mcp-session-id": session,
    "mcp-protocol-version": "2025-06-18",
  };
  const send = async (body: string) => {
    const response = await fetch(endpoint.url, { method: "POST", headers: inSession, body });
    const text = await response.text();
    const data = text.split("\n").find((l) => l.startsWith("data: "))?.slice(6) ?? text;
    return { status: response.status, reply: data ? JSON.parse(data) : undefined };
  };
  await send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));

  const huge = "x".repeat(2_000_000);
  const burst = [
    "{not json",
    JSON.stringify({ jsonrpc: "2.0", id: 2, method: "no/such/method" }),
    JSON.stringify({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "get_unit", arguments: { unit_id: 42 } },
    }),
    JSON.stringify({
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "get_organisations", arguments: { org_name: huge } },
    }),
    JSON.stringify({
      jsonrpc: "2.0",
      id: 5,
      method: "tools/call",
      params: { name: "no_such_tool", arguments: {} },
    }),
    JSON.stringify({ jsonrpc: "2.0", id: 6, method: "tools/call", params: "wrong" }),
  ];
  const replies = await Promise.all(burst.map(send));
  assert.equal(replies[0]!.status, 400);
  assert.equal(replies[0]!.reply.error.code, -32700);
  assert.equal(replies[1]!.reply.error.code, -32601);
  assert.equal(replies[2]!.reply.result.isError, true);
  assert.match(JSON.stringify(replies[2]!.reply.result), /unit_id/);
  assert.ok(
    replies[3]!.status === 413 || replies[3]!.reply.result?.isError === true,
    "a huge argument is refused",
  );
  assert.ok(replies[4]!.reply.error || replies[4]!.reply.result.isError);
  assert.ok(replies[5]!.reply.error, "params of the wrong type get an error");
  assert.equal(stub.requests.length, 0, "nothing malformed reached the Account Server");

  const good = await send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "get_account", arguments: {} },
    }),
  );
  assert.equal(good.reply.result.isError, false);
});

Deno.test("over HTTP, a 401 hint says the caller's own token was refused, not the operator's", async () => {
  await using http = await openEndpoint({
    fromStub: (stub) => ({ serverToken: stub.tokens.admin }),
  });
  const { stub } = http;
  const client = await http.connect(stub.tokens.alice);
  stub.inject("get_account", { status: 401, body: '{"error":"Token expired"}', times: 1 });
  const result = await client.callTool({ name: "get_account", arguments: {} }) as CallToolResult;
  assert.equal(rvOf(result).http_status_code, 401);
  assert.equal(
    rvOf(result).msg.hint,
    "The Account Server refused your access token (the bearer token of this HTTP request): it is missing, invalid or expired; get a new one. This server's own credentials were not used",
  );
  assert.equal(stub.requests[0]!.authorization, `Bearer ${stub.tokens.alice}`);
});

Deno.test("with a static token, a 401 hint says the operator must fix the server's credentials", () =>
  withRig(async ({ stub, call }) => {
    stub.inject("get_account", { status: 401, body: '{"error":"Token expired"}', times: 1 });
    const result = await call("get_account");
    assert.equal(
      rvOf(result).msg.hint,
      "The Account Server refused this server's access token (missing, invalid or expired): the operator must fix the server's credentials",
    );
  }));
