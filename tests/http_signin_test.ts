/**
 * Signing in from an MCP client, as the MCP specification's authorization section has it: the
 * SDK's own client and OAuth support, against the HTTP endpoint and the stub Keycloak. The
 * client finds the metadata from a 401, registers itself, signs the user in (the provider below
 * follows the authorization redirect itself, as a browser would), gets a token, calls tools, and
 * refreshes the token when it expires.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  type OAuthClientProvider,
  UnauthorizedError,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { TokenVerifier } from "../src/auth/mod.ts";
import type { HttpOptions } from "../src/mcp/mod.ts";
import type { StubServer } from "../src/stub/mod.ts";
import { type Endpoint, openEndpoint } from "../testing/mod.ts";
import { servingWith } from "./_spawn.ts";

const REDIRECT = "http://127.0.0.1:33418/oauth/callback";

/** A client's OAuth state kept in memory; it follows the authorization redirect itself. */
class FollowingProvider implements OAuthClientProvider {
  client?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = "";
  /** The code the authorization endpoint redirected back with. */
  code?: string;
  /** Every authorization URL the client was sent to. */
  readonly visited: URL[] = [];
  #state = crypto.randomUUID();

  get redirectUrl(): string {
    return REDIRECT;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "sign-in test",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  state(): string {
    return this.#state;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(client: OAuthClientInformationMixed): void {
    this.client = client;
  }

  tokens(): OAuthTokens | undefined {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  /** Opens the page as a browser would and reads the redirect back, with its code and state. */
  async redirectToAuthorization(url: URL): Promise<void> {
    this.visited.push(url);
    const response = await fetch(url, { redirect: "manual" });
    await response.body?.cancel();
    const back = new URL(response.headers.get("location") ?? "", url);
    if (`${back.origin}${back.pathname}` !== REDIRECT) throw new Error("not sent back to us");
    if (back.searchParams.get("state") !== this.#state) throw new Error("state does not match");
    this.code = back.searchParams.get("code") ?? undefined;
  }
}

/** The HTTP endpoint of a fresh stub, sending clients to sign in at the stub's Keycloak realm. */
function rig(
  options: { tokenLifetimeS?: number; http?: (stub: StubServer) => Partial<HttpOptions> } = {},
): Promise<Endpoint> {
  return openEndpoint({
    stub: { tokenLifetimeS: options.tokenLifetimeS },
    fromStub: (stub) => ({
      resource: { authorizationServer: `${stub.keycloak.url}/realms/${stub.keycloak.realm}` },
      ...options.http?.(stub),
    }),
  });
}

/** Connects as a client that has never signed in: a 401, sign-in, then the session. */
async function signIn(url: string, provider: FollowingProvider): Promise<Client> {
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await assert.rejects(
    new Client({ name: "sign-in test", version: "1.0.0" }).connect(first),
    UnauthorizedError,
  );
  assert.ok(provider.code, "the authorization endpoint sent a code back");
  await first.finishAuth(provider.code);
  const client = new Client({ name: "sign-in test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return client;
}

async function whoAmI(client: Client): Promise<unknown> {
  const result = await client.callTool({ name: "get_account", arguments: {} }) as CallToolResult;
  return (result.structuredContent as { msg: { user?: { id?: string } } }).msg.user?.id;
}

Deno.test("an MCP client finds Keycloak from a 401, registers, signs in and calls tools", async () => {
  await using r = await rig();
  const provider = new FollowingProvider();
  const client = await signIn(r.endpoint.url, provider);
  assert.equal(await whoAmI(client), "alice");
  await client.close();

  const registered = [...r.stub.keycloak.clients.values()];
  assert.deepEqual(registered.map((c) => c.redirect_uris), [[REDIRECT]]);
  assert.equal(provider.client?.client_id, registered[0]?.client_id);
  const authorize = provider.visited[0]!;
  assert.equal(
    `${authorize.origin}${authorize.pathname}`,
    `${r.stub.keycloak.url}/realms/squonk2/protocol/openid-connect/auth`,
  );
  assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
  assert.equal(authorize.searchParams.get("resource"), r.endpoint.url);
  const grants = r.stub.keycloak.requests.map((q) => `${q.grant_type} ${q.status}`);
  assert.deepEqual(grants, ["authorization_code 200"]);
  // The Account Server received the signed-in user's token, and nothing else.
  const sent = r.stub.requests.filter((q) => q.operation === "get_account");
  assert.deepEqual(sent.map((q) => q.authorization), [`Bearer ${provider.saved?.access_token}`]);
});

Deno.test("with sign-in scopes set, the metadata names them and the client asks Keycloak for them", async () => {
  const scopes = ["account-server-audience"];
  await using r = await rig({
    http: (stub) => ({
      ...verifying(stub),
      resource: { authorizationServer: `${stub.keycloak.url}/realms/squonk2`, scopes },
    }),
  });
  const metadata = await fetch(
    new URL("/.well-known/oauth-protected-resource/mcp", r.endpoint.url),
  );
  assert.deepEqual((await metadata.json()).scopes_supported, ["account-server-audience"]);
  const provider = new FollowingProvider();
  const client = await signIn(r.endpoint.url, provider);
  assert.equal(await whoAmI(client), "alice");
  await client.close();
  assert.equal(provider.visited[0]?.searchParams.get("scope"), "account-server-audience");
});

Deno.test("a static bearer token still works beside sign-in", async () => {
  await using r = await rig();
  const client = await r.connect(r.stub.tokens.bob);
  assert.equal(await whoAmI(client), "bob");
  await client.close();
  assert.equal(r.stub.keycloak.clients.size, 0);
});

/** The HTTP endpoint verifying callers' tokens against the stub's realm, as configured in main. */
function verifying(stub: StubServer): Partial<HttpOptions> {
  return {
    verifier: new TokenVerifier({
      url: stub.keycloak.url,
      realm: stub.keycloak.realm,
      clientId: stub.keycloak.clientId,
    }),
  };
}

Deno.test("a signed-in token passes verification: its audience names the Account Server", async () => {
  await using r = await rig({ http: verifying });
  const client = await signIn(r.endpoint.url, new FollowingProvider());
  assert.equal(await whoAmI(client), "alice");
  await client.close();
});

Deno.test("when the token expires, the client refreshes it and goes on in the same session", async () => {
  const lifetimeS = 2;
  await using r = await rig({ tokenLifetimeS: lifetimeS, http: verifying });
  const provider = new FollowingProvider();
  const client = await signIn(r.endpoint.url, provider);
  assert.equal(await whoAmI(client), "alice");
  const first = provider.saved?.access_token;
  // Past the token's expiry (rounded up to the second), so the verifier refuses it with a 401.
  await new Promise((resolve) => setTimeout(resolve, (lifetimeS + 1.2) * 1000));
  assert.equal(await whoAmI(client), "alice");
  assert.equal(r.endpoint.sessions, 1);
  await client.close();
  assert.notEqual(provider.saved?.access_token, first);
  const grants = r.stub.keycloak.requests.map((q) => `${q.grant_type} ${q.status}`);
  assert.deepEqual(grants, ["authorization_code 200", "refresh_token 200"]);
  // The expired token never reached the Account Server: the two calls carried the two tokens.
  const sent = r.stub.requests.filter((q) => q.operation === "get_account");
  assert.deepEqual(sent.map((q) => q.authorization), [
    `Bearer ${first}`,
    `Bearer ${provider.saved?.access_token}`,
  ]);
});

Deno.test("deno task start --stateless with Keycloak set sends clients to sign in there", async () => {
  await using r = await rig();
  await using server = await servingWith({
    env: {
      SQUONK2_ASAPI_URL: r.stub.url,
      SQUONK2_KEYCLOAK_URL: r.stub.keycloak.url,
      SQUONK2_KEYCLOAK_REALM: r.stub.keycloak.realm,
      SQUONK2_KEYCLOAK_AS_CLIENT_ID: r.stub.keycloak.clientId,
      SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: r.stub.keycloak.clientSecret,
    },
    args: ["--stateless"],
  });
  const metadata = await fetch(new URL("/.well-known/oauth-protected-resource/mcp", server.url));
  assert.deepEqual((await metadata.json()).authorization_servers, [
    `${r.stub.keycloak.url}/realms/${r.stub.keycloak.realm}`,
  ]);
  const client = await signIn(server.url, new FollowingProvider());
  assert.equal(await whoAmI(client), "alice");
  await client.close();
});
