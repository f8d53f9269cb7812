/**
 * The MCP server through the SDK's `Client` over an in-memory linked transport: every tool listed
 * with its schemas and annotations, every tool called once against the stub, failures as
 * `isError`, bad inputs refused with nothing sent, and credentials (static and Keycloak).
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { OPERATIONS } from "../src/api/mod.ts";
import { KeycloakTokens, NoCredentials, StaticToken, type TokenSource } from "../src/auth/mod.ts";
import { KEYCLOAK_SEED, startStub, type StubServer } from "../src/stub/mod.ts";
import { CASES, type Ids, STUB_NOW } from "./_cases.ts";
import { seedIds } from "./_helpers.ts";
import { openSession, type Session } from "../testing/mod.ts";

async function withSession(
  fn: (session: Session) => Promise<void>,
  tokensFor: (stub: StubServer) => TokenSource = (stub) => new StaticToken(stub.tokens.admin),
  stubOptions: Parameters<typeof startStub>[0] = {},
): Promise<void> {
  await using session = await openSession({
    tokens: tokensFor,
    stub: { now: () => STUB_NOW, ...stubOptions },
  });
  await fn(session);
}

/** A listed tool, as far as these tests look at it. */
interface ListedTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: { properties?: Record<string, unknown>; required?: string[] };
  outputSchema?: { properties?: Record<string, unknown> };
  annotations?: {
    title?: string;
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
  };
}

async function listTools(client: Client): Promise<ListedTool[]> {
  return (await client.listTools()).tools as ListedTool[];
}

function hintOf(result: CallToolResult): unknown {
  return (result.structuredContent as { msg: { hint?: unknown } }).msg.hint;
}

function textOf(result: CallToolResult): string {
  const block = result.content[0];
  assert.ok(block && block.type === "text", "the first content block is text");
  return block.text;
}

Deno.test("tools/list has one tool per operation plus get_api_url and read_event_stream, each fully described", () =>
  withSession(async ({ client }) => {
    const tools = await listTools(client);
    assert.deepEqual(
      tools.map((t) => t.name).sort(),
      [...OPERATIONS.map((o) => o.name), "get_api_url", "read_event_stream"].sort(),
    );
    assert.equal(tools.some((t) => t.name === "set_api_url"), false, "no way to redirect tokens");
    for (const tool of tools) {
      const a = tool.annotations;
      assert.ok(a, `${tool.name} has annotations`);
      assert.ok(a.title && tool.description, `${tool.name} has a title and a description`);
      assert.deepEqual(Object.keys(tool.outputSchema?.properties ?? {}).sort(), [
        "http_status_code",
        "msg",
        "success",
      ]);
      assert.ok(!("access_token" in (tool.inputSchema.properties ?? {})), "no token argument");
    }
  }));

Deno.test("annotations say what each kind of tool does, leaving out the specification's defaults", () =>
  withSession(async ({ client }) => {
    const tools = await listTools(client);
    const annotations = (name: string) => tools.find((t) => t.name === name)!.annotations;
    // A hint left out means its default: readOnly false, destructive true, idempotent false,
    // open world true; destructive and idempotent do not apply to read-only tools.
    assert.deepEqual(annotations("get_unit"), { title: "Get unit", readOnlyHint: true });
    assert.deepEqual(annotations("get_api_url"), {
      title: "Get Account Server URL",
      readOnlyHint: true,
      openWorldHint: false,
    });
    assert.deepEqual(annotations("create_unit"), { title: "Create unit", destructiveHint: false });
    assert.deepEqual(annotations("alter_unit"), {
      title: "Alter unit",
      destructiveHint: false,
      idempotentHint: true,
    });
    assert.deepEqual(annotations("add_user_to_unit"), {
      title: "Add user to unit",
      destructiveHint: false,
      idempotentHint: true,
    });
    assert.deepEqual(annotations("delete_unit"), { title: "Delete unit", idempotentHint: true });
  }));

Deno.test("input schemas carry the operation's parameters, their descriptions and timeout_s", () =>
  withSession(async ({ client }) => {
    const instructions = client.getInstructions() ?? "";
    assert.match(instructions, /optional timeout_s: seconds to wait .* from 0.1 to 60/);
    const tools = await listTools(client);
    for (const row of OPERATIONS) {
      const schema = tools.find((t) => t.name === row.name)!.inputSchema;
      const properties = schema.properties as Record<string, { description?: string }>;
      assert.deepEqual(
        Object.keys(properties).sort(),
        [...Object.keys(row.params), "timeout_s"].sort(),
        row.name,
      );
      for (const [name, property] of Object.entries(properties)) {
        if (name === "timeout_s") continue;
        assert.ok(property.description, `${row.name}.${name} is described`);
      }
    }
    const createUnit = tools.find((t) => t.name === "create_unit")!.inputSchema as
      & Record<
        string,
        unknown
      >
      & { properties: Record<string, unknown>; required?: string[] };
    assert.equal(createUnit.additionalProperties, false, "no other argument is accepted");
    assert.deepEqual(createUnit.properties.timeout_s, {
      type: "number",
      minimum: 0.1,
      maximum: 60,
    });
    assert.deepEqual([...(createUnit.required ?? [])].sort(), [
      "billing_day",
      "org_id",
      "unit_name",
    ]);
    assert.deepEqual(
      (createUnit.properties as Record<string, Record<string, unknown>>).billing_day,
      {
        type: "integer",
        minimum: 1,
        maximum: 28,
        description: "Day of the month (1-28) on which the Unit's subscriptions are billed",
      },
    );
  }));

for (const [name, c] of Object.entries(CASES)) {
  Deno.test(`the ${name} tool sends what the operation sends and returns its ApiRv`, async () => {
    let ids: Ids | undefined;
    await withSession(async ({ stub, call }) => {
      const seeded = seedIds(stub);
      ids = { ...seeded, ...(c.setup?.(stub, seeded) ?? {}) };
      const result = await call(name, c.params(ids));
      assert.equal(stub.requests.length, 1, textOf(result));
      const got = stub.requests[0]!;
      const want = c.sent(ids);
      assert.deepEqual(
        { method: got.method, path: got.path, query: got.query, body: got.body },
        { method: want.method, path: want.path, query: want.query ?? {}, body: want.body },
      );
      const token = c.as ? stub.tokens[c.as] : undefined;
      assert.equal(got.authorization, token ? `Bearer ${token}` : null);
      const rv = result.structuredContent as Record<string, unknown>;
      assert.equal(result.isError, false, textOf(result));
      assert.deepEqual(JSON.parse(textOf(result)), rv);
      assert.equal(rv.success, true);
      assert.equal(rv.http_status_code, c.status);
      c.check(rv.msg as Record<string, unknown>, stub, ids);
    }, (stub) => new StaticToken(c.as ? stub.tokens[c.as] : stub.tokens.admin));
  });
}

Deno.test("a 404 comes back as isError with the ApiRv and a hint to list the Units that exist", () =>
  withSession(async ({ call }) => {
    const unit = "unit-00000000-0000-4000-8000-0000000000ff";
    const result = await call("get_unit", { unit_id: unit });
    assert.equal(result.isError, true);
    assert.deepEqual(result.structuredContent, {
      success: false,
      msg: {
        error: `Cannot get_unit: 404 Not Found: Unit "${unit}" does not exist`,
        hint: "Nothing has that id: list what exists first (get_available_units)",
      },
      http_status_code: 404,
    });
    assert.deepEqual(JSON.parse(textOf(result)), result.structuredContent);
  }));

Deno.test("a 403 says the caller is not a member or not an admin", () =>
  withSession(async ({ call }) => {
    const result = await call("get_charges");
    assert.equal(result.isError, true);
    const rv = result.structuredContent as { msg: { hint: string }; http_status_code: number };
    assert.equal(rv.http_status_code, 403);
    assert.match(rv.msg.hint, /not a member .* or not an admin/);
  }, (stub) => new StaticToken(stub.tokens.bob)));

const BAD_TOOL_INPUTS: [string, Record<string, unknown>, RegExp][] = [
  ["create_personal_unit", { billing_day: 40 }, /billing_day/],
  ["get_organisation", { org_id: "unit-00000000-0000-4000-8000-000000000001" }, /org_id/],
  ["get_charges", { from: "yesterday" }, /from/],
  ["get_version", { timeout_s: 600 }, /timeout_s/],
  [
    "create_asset",
    { name: "n", description: "d", scope: "GLOBAL" },
    /content_string, content_file: give exactly one of the two \(0 given\)/,
  ],
];

for (const [tool, args, message] of BAD_TOOL_INPUTS) {
  Deno.test(`${tool} refuses ${JSON.stringify(args)} as isError, naming it, sending nothing`, () =>
    withSession(async ({ call, stub }) => {
      const result = await call(tool, args);
      assert.equal(result.isError, true);
      assert.match(textOf(result), message);
      assert.equal(stub.requests.length, 0);
    }));
}

Deno.test("with no credentials, ping works and other tools say how to configure them", () =>
  withSession(async ({ call, stub }) => {
    const ping = await call("ping");
    assert.equal(ping.isError, false);
    assert.deepEqual((ping.structuredContent as { msg: unknown }).msg, { version: "4.4.0" });
    for (const tool of ["get_version", "get_event_stream_version"]) {
      assert.equal((await call(tool)).isError, false, tool);
    }
    const account = await call("get_account");
    assert.equal(account.isError, true);
    assert.match(
      textOf(account),
      /Cannot get_account: no Account Server credentials are configured: .*SQUONK2_ASAPI_TOKEN/,
    );
    assert.equal(
      hintOf(account),
      "This server has no Account Server credentials, so only tools that need no token work (ping, get_version, get_event_stream_version); the operator must configure them",
    );
    assert.equal(stub.requests.length, 3, "nothing is sent without credentials");
  }, () => new NoCredentials()));

Deno.test("get_api_url says where requests go and how, and never shows a token", () =>
  withSession(async ({ call, stub }) => {
    const result = await call("get_api_url");
    assert.deepEqual(result.structuredContent, {
      success: true,
      msg: { url: stub.url, verify_ssl_cert: true, credentials: "static token" },
      http_status_code: 0,
    });
    assert.equal(textOf(result).includes(stub.tokens.admin), false);
    assert.equal(stub.requests.length, 0);
  }));

function keycloakFor(stub: StubServer, user = "alice"): KeycloakTokens {
  return new KeycloakTokens({
    url: stub.keycloak.url,
    realm: stub.keycloak.realm,
    clientId: stub.keycloak.clientId,
    username: user,
    password: KEYCLOAK_SEED.passwords[user],
  });
}

Deno.test("Keycloak: the server signs in with the password grant and renews after expiry", () =>
  withSession(
    async ({ call, stub }) => {
      const first = await call("get_account");
      assert.deepEqual((first.structuredContent as { msg: { user: unknown } }).msg.user, {
        id: "alice",
      });
      const again = await call("get_account");
      assert.equal(again.isError, false);
      assert.equal(stub.keycloak.requests.length, 1, "a live token is reused");

      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const renewed = await call("get_account");
      assert.equal(renewed.isError, false, textOf(renewed));
      assert.deepEqual(stub.keycloak.requests.map((r) => [r.grant_type, r.status]), [
        ["password", 200],
        ["refresh_token", 200],
      ]);
      const [a, b, c] = stub.requests.map((r) => r.authorization);
      assert.equal(a, b);
      assert.notEqual(b, c, "the request after expiry carries a new token");
    },
    keycloakFor,
    { tokenLifetimeS: 1 },
  ));

Deno.test("Keycloak: concurrent calls share one token request", () =>
  withSession(async ({ call, stub }) => {
    const results: CallToolResult[] = await Promise.all(
      Array.from({ length: 6 }, () => call("get_account")),
    );
    assert.ok(results.every((r) => !r.isError));
    assert.equal(stub.keycloak.requests.length, 1);
    assert.equal(new Set(stub.requests.map((r) => r.authorization)).size, 1);
  }, keycloakFor));

Deno.test("Keycloak: the client-credentials grant acts as the service account", () =>
  withSession(async ({ call, stub }) => {
    const result = await call("get_account");
    const msg = (result.structuredContent as { msg: { user: unknown } }).msg;
    assert.deepEqual(msg.user, { id: KEYCLOAK_SEED.serviceAccount });
    assert.equal(stub.keycloak.requests[0]!.grant_type, "client_credentials");
  }, (stub) =>
    new KeycloakTokens({
      url: stub.keycloak.url,
      realm: stub.keycloak.realm,
      clientId: stub.keycloak.clientId,
      clientSecret: stub.keycloak.clientSecret,
    })));

Deno.test("Keycloak: an outage fails clearly, sends nothing, and the next call recovers", () =>
  withSession(async ({ call, stub }) => {
    stub.keycloak.setDown(true);
    const down = await call("get_account");
    assert.equal(down.isError, true);
    assert.match(
      textOf(down),
      /Cannot get_account: Keycloak refused to issue an access token: 503 Service Unavailable: temporarily_unavailable/,
    );
    assert.equal(
      hintOf(down),
      "Keycloak answered without a usable token, so nothing was sent to the Account Server: try again later; if it persists, the operator must check Keycloak",
    );
    assert.equal(stub.requests.length, 0);
    stub.keycloak.setDown(false);
    const up = await call("get_account");
    assert.equal(up.isError, false, textOf(up));
  }, keycloakFor));

const REJECTED_HINT =
  "Keycloak refused this server's credentials (wrong user, password or client secret): the operator must fix the SQUONK2_KEYCLOAK_* settings; calling again will not help";

Deno.test("Keycloak: a wrong password is reported without the password, with a hint to fix it", () =>
  withSession(async ({ call }) => {
    const result = await call("get_units");
    assert.match(textOf(result), /invalid_grant \(Invalid user credentials\)/);
    assert.equal(textOf(result).includes("wrong-Passw0rd"), false);
    assert.equal(hintOf(result), REJECTED_HINT);
  }, (stub) =>
    new KeycloakTokens({
      url: stub.keycloak.url,
      realm: stub.keycloak.realm,
      clientId: stub.keycloak.clientId,
      username: "alice",
      password: "wrong-Passw0rd",
    })));

Deno.test("Keycloak: a wrong client secret gets the wrong-credentials hint, without the secret", () =>
  withSession(async ({ call }) => {
    const result = await call("get_units");
    assert.match(textOf(result), /401 Unauthorized: invalid_client/);
    assert.equal(textOf(result).includes("wrong-s3cret-value"), false);
    assert.equal(hintOf(result), REJECTED_HINT);
  }, (stub) =>
    new KeycloakTokens({
      url: stub.keycloak.url,
      realm: stub.keycloak.realm,
      clientId: stub.keycloak.clientId,
      clientSecret: "wrong-s3cret-value",
    })));

Deno.test("Keycloak: a wrong realm names the token URL tried, never the password, and says to fix URL or realm", () =>
  withSession(async ({ call, stub }) => {
    const result = await call("get_account");
    const tried = `${stub.keycloak.url}/realms/no-such-realm/protocol/openid-connect/token`;
    assert.equal(
      (result.structuredContent as { msg: { error: string } }).msg.error,
      `Cannot get_account: Keycloak's token URL "${tried}" was not found (404 Not Found)`,
    );
    assert.equal(
      hintOf(result),
      "Keycloak has no token URL there (wrong URL or realm): the operator must fix SQUONK2_KEYCLOAK_URL or SQUONK2_KEYCLOAK_REALM; calling again will not help",
    );
    assert.equal(textOf(result).includes(KEYCLOAK_SEED.passwords.alice!), false);
    assert.equal(stub.requests.length, 0);
  }, (stub) =>
    new KeycloakTokens({
      url: stub.keycloak.url,
      realm: "no-such-realm",
      clientId: stub.keycloak.clientId,
      username: "alice",
      password: KEYCLOAK_SEED.passwords.alice,
    })));

/** Client-credentials sign-in at a Keycloak URL a test serves itself. */
function clientCredentialsAt(url: string): KeycloakTokens {
  return new KeycloakTokens({
    url,
    realm: "squonk2",
    clientId: "account-server-api",
    clientSecret: "s3cr3t-value",
  });
}

Deno.test("Keycloak: a token URL that redirects (http for https) says where to, and that calling again will not help", async () => {
  // Before: "Keycloak refused to issue an access token: 301 Moved Permanently", "try again later".
  const asked: string[] = [];
  await using keycloak = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    asked.push(new URL(req.url).pathname);
    const https = req.url.replace("http://", "https://");
    return new Response(null, { status: 301, headers: { location: https } });
  });
  const url = `http://127.0.0.1:${keycloak.addr.port}/auth`;
  const tried = `${url}/realms/squonk2/protocol/openid-connect/token`;
  await withSession(async ({ call, stub }) => {
    const result = await call("get_account");
    assert.equal(
      (result.structuredContent as { msg: { error: string } }).msg.error,
      `Cannot get_account: Keycloak's token URL "${tried}" redirects to ` +
        `"${tried.replace("http://", "https://")}" (301 Moved Permanently), which is not ` +
        "followed (a redirect could carry the credentials elsewhere); if that address is right, " +
        `the operator should set SQUONK2_KEYCLOAK_URL to "${url.replace("http://", "https://")}"`,
    );
    assert.equal(
      hintOf(result),
      "Keycloak's token URL answers with a redirect, which is not followed (http:// for https:// is a common cause): the operator must fix SQUONK2_KEYCLOAK_URL; calling again will not help",
    );
    assert.deepEqual(asked, ["/auth/realms/squonk2/protocol/openid-connect/token"], "not followed");
    assert.equal(textOf(result).includes("s3cr3t-value"), false);
    assert.equal(stub.requests.length, 0);
  }, () => clientCredentialsAt(url));
});

Deno.test("Keycloak: a redirect that says nowhere is still a redirect to fix, not one to wait out", async () => {
  // Before: "Keycloak refused to issue an access token: 302 Found", "try again later".
  await using keycloak = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(null, { status: 302 }),
  );
  const url = `http://127.0.0.1:${keycloak.addr.port}/auth`;
  const tried = `${url}/realms/squonk2/protocol/openid-connect/token`;
  await withSession(async ({ call, stub }) => {
    const result = await call("get_account");
    assert.equal(
      (result.structuredContent as { msg: { error: string } }).msg.error,
      `Cannot get_account: Keycloak's token URL "${tried}" answers a redirect (302 Found) ` +
        "without saying where to; the operator should check SQUONK2_KEYCLOAK_URL",
    );
    assert.match(String(hintOf(result)), /calling again will not help$/);
    assert.equal(stub.requests.length, 0);
  }, () => clientCredentialsAt(url));
});

Deno.test("Keycloak: nothing listening at its URL gets a hint that waiting will not help", async () => {
  const gone = await startStub();
  const keycloakUrl = gone.keycloak.url;
  await gone.shutdown();
  await withSession(async ({ call }) => {
    const result = await call("get_account");
    assert.match(
      textOf(result),
      /could not get an access token from Keycloak: connection to .* refused/,
    );
    assert.equal(
      hintOf(result),
      "Nothing is listening at the Keycloak URL (connection refused): Keycloak is not running there or SQUONK2_KEYCLOAK_URL is wrong; waiting will not help",
    );
  }, (stub) =>
    new KeycloakTokens({
      url: keycloakUrl,
      realm: stub.keycloak.realm,
      clientId: stub.keycloak.clientId,
      username: "alice",
      password: KEYCLOAK_SEED.passwords.alice,
    }));
});
