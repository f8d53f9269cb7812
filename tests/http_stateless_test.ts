/**
 * The HTTP endpoint for a team: stateless mode (any instance answers any request), the OAuth
 * Protected Resource Metadata and the challenge of its 401s, and the health probes, over real
 * HTTP on loopback.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  type CallToolResult,
  ElicitRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { AsApi } from "../src/api/mod.ts";
import { accountServerAnswers, type HttpEndpoint } from "../src/mcp/mod.ts";
import { initializeRequest, seedIds } from "./_helpers.ts";
import { openEndpoint } from "../testing/mod.ts";

const REALM_URL = "https://keycloak.example/auth/realms/squonk2";

/** A fetch that sends each request to the next endpoint in turn, as a round-robin balancer. */
function roundRobin(endpoints: HttpEndpoint[], served: number[]): typeof fetch {
  let next = 0;
  return (input, init) => {
    const index = next++ % endpoints.length;
    served[index] = (served[index] ?? 0) + 1;
    const target = new URL(endpoints[index]!.url);
    const url = new URL(input instanceof Request ? input.url : String(input));
    url.host = target.host;
    return fetch(url, init);
  };
}

/** Prepares a client to declare elicitation, decline every request and note its message. */
function declining(asked: string[]): (client: Client) => void {
  return (client) => {
    client.registerCapabilities({ elicitation: {} });
    client.setRequestHandler(ElicitRequestSchema, (request: { params: { message: string } }) => {
      asked.push(request.params.message);
      return { action: "decline" };
    });
  };
}

function userOf(result: CallToolResult): unknown {
  return (result.structuredContent as { msg: { user?: { id?: string } } }).msg.user?.id;
}

Deno.test("a stateless client's calls are answered by whichever instance gets them", async () => {
  await using r = await openEndpoint({ instances: 3, stateless: true });
  const served: number[] = [];
  const client = await r.connect(r.stub.tokens.alice, { fetch: roundRobin(r.endpoints, served) });
  const users = [];
  for (let i = 0; i < 6; i++) {
    users.push(
      userOf(await client.callTool({ name: "get_account", arguments: {} }) as CallToolResult),
    );
  }
  await client.close();
  assert.deepEqual(users, ["alice", "alice", "alice", "alice", "alice", "alice"]);
  assert.ok(served.every((n) => n >= 2), `requests per instance: ${served.join(", ")}`);
  assert.deepEqual(r.endpoints.map((e) => e.sessions), [0, 0, 0]);
});

Deno.test("a stateless server answers without a session id and keeps no session", async () => {
  await using r = await openEndpoint({ stateless: true });
  const response = await fetch(r.endpoint.url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${r.stub.tokens.alice}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify(initializeRequest()),
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("mcp-session-id"), null);
  assert.equal((await response.json()).result.serverInfo.name, "squonk2-as-mcp");
  assert.equal(r.endpoint.sessions, 0);
});

Deno.test("a stateless server refuses GET and DELETE with 405: there is no stream or session", async () => {
  await using r = await openEndpoint({ stateless: true });
  for (const method of ["GET", "DELETE"]) {
    const response = await fetch(r.endpoint.url, {
      method,
      headers: { authorization: `Bearer ${r.stub.tokens.alice}`, accept: "text/event-stream" },
    });
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get("allow"), "POST");
    await response.body?.cancel();
  }
});

Deno.test("in stateless mode a delete is not confirmed by elicitation, as for a client without it", async () => {
  await using r = await openEndpoint({ stateless: true });
  const asset = seedIds(r.stub).aliceAsset;
  const asked: string[] = [];
  const client = await r.connect(r.stub.tokens.alice, { prepare: declining(asked) });
  const listed = ((await client.listTools()).tools as Tool[]).find((t) =>
    t.name === "delete_asset"
  );
  const result = await client.callTool({ name: "delete_asset", arguments: { asset_id: asset } });
  await client.close();
  // Neither hint is given: by the specification's defaults, the tool changes and destroys.
  assert.equal(listed?.annotations?.destructiveHint, undefined);
  assert.equal(listed?.annotations?.readOnlyHint, undefined);
  assert.deepEqual(asked, []);
  assert.equal((result as CallToolResult).isError, false);
  assert.equal(r.stub.state.assets.has(asset), false);
  assert.deepEqual(r.stub.requests.at(-1)?.method, "DELETE");
});

Deno.test("with sessions, the same client declaring elicitation is asked before a delete", async () => {
  await using r = await openEndpoint();
  const asset = seedIds(r.stub).aliceAsset;
  const asked: string[] = [];
  const client = await r.connect(r.stub.tokens.alice, { prepare: declining(asked) });
  await client.callTool({ name: "delete_asset", arguments: { asset_id: asset } });
  await client.close();
  assert.equal(asked.length, 1);
  assert.equal(r.stub.state.assets.has(asset), true);
});

Deno.test("the resource metadata names the Keycloak realm, at both well-known paths", async () => {
  await using r = await openEndpoint({ resource: { authorizationServer: REALM_URL } });
  const url = r.endpoint.url;
  const origin = new URL(url).origin;
  for (
    const path of [
      "/.well-known/oauth-protected-resource/mcp",
      "/.well-known/oauth-protected-resource",
    ]
  ) {
    const response = await fetch(`${origin}${path}`);
    assert.equal(response.status, 200, path);
    assert.deepEqual(await response.json(), {
      resource: url,
      authorization_servers: [REALM_URL],
      bearer_methods_supported: ["header"],
      resource_name: "Squonk2 Account Server",
    });
  }
});

Deno.test("the resource metadata names the public URL given for a proxy", async () => {
  const publicUrl = "https://mcp.example.com/team/mcp";
  await using r = await openEndpoint({ resource: { authorizationServer: REALM_URL, publicUrl } });
  const origin = new URL(r.endpoint.url).origin;
  const response = await fetch(`${origin}/.well-known/oauth-protected-resource/team/mcp`);
  assert.equal((await response.json()).resource, publicUrl);
  const unauthorized = await fetch(r.endpoint.url, { method: "POST", body: "{}" });
  await unauthorized.body?.cancel();
  assert.match(
    unauthorized.headers.get("www-authenticate") ?? "",
    /resource_metadata="https:\/\/mcp\.example\.com\/\.well-known\/oauth-protected-resource\/team\/mcp"/,
  );
});

Deno.test("a 401 points to the resource metadata in WWW-Authenticate", async () => {
  await using r = await openEndpoint({ resource: { authorizationServer: REALM_URL } });
  const url = r.endpoint.url;
  const response = await fetch(url, { method: "POST", body: JSON.stringify(initializeRequest()) });
  await response.body?.cancel();
  assert.equal(response.status, 401);
  const origin = new URL(url).origin;
  assert.equal(
    response.headers.get("www-authenticate"),
    `Bearer realm="squonk2-as-mcp", resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
  );
});

Deno.test("without Keycloak there is no resource metadata, and 401s name none", async () => {
  await using r = await openEndpoint();
  const origin = new URL(r.endpoint.url).origin;
  const metadata = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`);
  await metadata.body?.cancel();
  assert.equal(metadata.status, 404);
  const response = await fetch(r.endpoint.url, { method: "POST", body: "{}" });
  await response.body?.cancel();
  assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="squonk2-as-mcp"');
});

Deno.test("/healthz answers without a token and says nothing but ok", async () => {
  await using r = await openEndpoint();
  const response = await fetch(new URL("/healthz", r.endpoint.url));
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: "ok" });
});

Deno.test("/readyz is 200 while the Account Server answers get_version, and 503 when not", async () => {
  await using r = await openEndpoint({
    instances: 2,
    fromStub: (stub) => ({
      ready: accountServerAnswers(new AsApi({ url: stub.url, env: () => undefined })),
    }),
  });
  const readyz = (endpoint: HttpEndpoint) => fetch(new URL("/readyz", endpoint.url));
  const up = await readyz(r.endpoints[0]!);
  assert.deepEqual({ status: up.status, body: await up.json() }, {
    status: 200,
    body: { status: "ok" },
  });
  r.stub.inject("get_version", { status: 500, body: "{}" });
  const down = await readyz(r.endpoints[1]!);
  assert.deepEqual({ status: down.status, body: await down.json() }, {
    status: 503,
    body: { status: "not ready" },
  });
  assert.equal(r.stub.requests.at(-1)?.operation, "get_version");
  assert.equal(r.stub.requests.at(-1)?.authorization, null);
});
