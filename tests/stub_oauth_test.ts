/**
 * The stub Keycloak's sign-in side, seen with raw `fetch` as an OAuth client would use it:
 * discovery, dynamic client registration, the authorization endpoint with PKCE, and the code and
 * refresh grants.
 */
import assert from "node:assert/strict";
import { startStub, type StubServer } from "../src/stub/mod.ts";

const REDIRECT = "http://127.0.0.1:33418/callback";

/** A verifier and its S256 challenge, as RFC 7636's appendix B computes them. */
const PKCE = {
  verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
  challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
};

interface Fixture extends AsyncDisposable {
  stub: StubServer;
  realm: string;
}

async function fixture(options: { signInAs?: string } = {}): Promise<Fixture> {
  const stub = await startStub(options);
  return {
    stub,
    realm: `${stub.keycloak.url}/realms/${stub.keycloak.realm}`,
    [Symbol.asyncDispose]: () => stub.shutdown(),
  };
}

async function register(realm: string, metadata: Record<string, unknown>): Promise<Response> {
  return await fetch(`${realm}/clients-registrations/openid-connect`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(metadata),
  });
}

async function registerPublic(realm: string): Promise<string> {
  const response = await register(realm, {
    client_name: "test client",
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: "none",
  });
  assert.equal(response.status, 201);
  return (await response.json()).client_id;
}

function authorizeUrl(realm: string, query: Record<string, string>): string {
  const url = new URL(`${realm}/protocol/openid-connect/auth`);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.href;
}

/**
 * Asks the authorization endpoint to sign `clientId` in, the way a proper client does (a code,
 * PKCE S256, the registered redirect URI), with `changes` to that request.
 */
async function authorize(
  realm: string,
  clientId: string,
  changes: Record<string, string> = {},
): Promise<Response> {
  const query = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: PKCE.challenge,
    code_challenge_method: "S256",
    ...changes,
  };
  const response = await fetch(authorizeUrl(realm, query), { redirect: "manual" });
  await response.body?.cancel();
  return response;
}

/** Signs in through the authorization endpoint and returns the code it redirected with. */
async function codeFor(realm: string, clientId: string): Promise<string> {
  const response = await authorize(realm, clientId, {
    state: "s-1",
  });
  assert.equal(response.status, 302);
  return new URL(response.headers.get("location")!).searchParams.get("code")!;
}

async function token(
  realm: string,
  form: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${realm}/protocol/openid-connect/token`, {
    method: "POST",
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}

async function exchange(realm: string, clientId: string, code: string, verifier = PKCE.verifier) {
  return await token(realm, {
    grant_type: "authorization_code",
    client_id: clientId,
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
  });
}

async function whoIs(stub: StubServer, accessToken: unknown): Promise<string> {
  const response = await fetch(`${stub.url}/user/account`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return response.ok ? (await response.json()).user.id : `${response.status}`;
}

Deno.test("the realm publishes where to sign in, register and get tokens, and S256 only", async () => {
  await using f = await fixture();
  for (
    const document of [".well-known/openid-configuration", ".well-known/oauth-authorization-server"]
  ) {
    const response = await fetch(`${f.realm}/${document}`);
    const metadata = await response.json();
    assert.equal(metadata.issuer, f.realm);
    assert.equal(metadata.authorization_endpoint, `${f.realm}/protocol/openid-connect/auth`);
    assert.equal(metadata.token_endpoint, `${f.realm}/protocol/openid-connect/token`);
    assert.equal(
      metadata.registration_endpoint,
      `${f.realm}/clients-registrations/openid-connect`,
    );
    assert.deepEqual(metadata.code_challenge_methods_supported, ["S256"]);
    assert.deepEqual(metadata.response_types_supported, ["code"]);
  }
});

Deno.test("registration gives a public client an id and no secret", async () => {
  await using f = await fixture();
  const response = await register(f.realm, {
    client_name: "Claude",
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: "none",
  });
  assert.equal(response.status, 201);
  const client = await response.json();
  assert.equal(client.client_secret, undefined);
  assert.deepEqual(client.redirect_uris, [REDIRECT]);
  assert.equal(client.token_endpoint_auth_method, "none");
  assert.deepEqual([...f.stub.keycloak.clients.keys()], [client.client_id]);
});

Deno.test("registration refuses no redirect URI, plain http off loopback, and fragments", async () => {
  await using f = await fixture();
  const refused = async (metadata: Record<string, unknown>) => {
    const response = await register(f.realm, metadata);
    return { status: response.status, error: (await response.json()).error };
  };
  const invalid = { status: 400, error: "invalid_redirect_uri" };
  assert.deepEqual(await refused({ client_name: "x" }), invalid);
  assert.deepEqual(await refused({ redirect_uris: ["http://evil.example/cb"] }), invalid);
  assert.deepEqual(await refused({ redirect_uris: ["https://ok.example/cb#frag"] }), invalid);
  assert.equal(f.stub.keycloak.clients.size, 0);
});

Deno.test("sign-in redirects with a code and the state, and the code buys alice's token", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const response = await authorize(f.realm, clientId, {
    state: "xyz",
  });
  const location = new URL(response.headers.get("location")!);
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
  assert.equal(location.searchParams.get("state"), "xyz");
  assert.equal(location.searchParams.get("iss"), f.realm);
  const granted = await exchange(f.realm, clientId, location.searchParams.get("code")!);
  assert.equal(granted.status, 200);
  assert.equal(granted.body.token_type, "Bearer");
  assert.equal(await whoIs(f.stub, granted.body.access_token), "alice");
  assert.deepEqual(f.stub.keycloak.requests.at(-1), {
    grant_type: "authorization_code",
    client_id: clientId,
    username: "alice",
    status: 200,
  });
});

Deno.test("the signed-in user is the one the stub is told to sign in", async () => {
  await using f = await fixture({ signInAs: "bob" });
  const clientId = await registerPublic(f.realm);
  const granted = await exchange(f.realm, clientId, await codeFor(f.realm, clientId));
  assert.equal(await whoIs(f.stub, granted.body.access_token), "bob");
});

Deno.test("a code is refused with the wrong verifier, and is good for one exchange only", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const code = await codeFor(f.realm, clientId);
  const wrong = await exchange(f.realm, clientId, code, "x".repeat(43));
  assert.deepEqual(wrong, {
    status: 400,
    body: { error: "invalid_grant", error_description: "PKCE verification failed: Code mismatch" },
  });
  const again = await exchange(f.realm, clientId, code);
  assert.deepEqual(again.body, { error: "invalid_grant", error_description: "Code not valid" });
  const fresh = await codeFor(f.realm, clientId);
  assert.equal((await exchange(f.realm, clientId, fresh)).status, 200);
  assert.equal((await exchange(f.realm, clientId, fresh)).status, 400);
});

Deno.test("an unregistered redirect URI gets an error page, never a redirect with a code", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const response = await authorize(f.realm, clientId, {
    redirect_uri: "http://127.0.0.1:9/steal",
  });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("location"), null);
});

Deno.test("sign-in without PKCE S256 redirects back with invalid_request and no code", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const response = await authorize(f.realm, clientId, {
    code_challenge: PKCE.verifier,
    code_challenge_method: "plain",
    state: "s-2",
  });
  const location = new URL(response.headers.get("location")!);
  assert.equal(location.searchParams.get("error"), "invalid_request");
  assert.equal(location.searchParams.get("state"), "s-2");
  assert.equal(location.searchParams.get("code"), null);
});

Deno.test("a refresh token buys a new access token, for the client it was issued to only", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const granted = await exchange(f.realm, clientId, await codeFor(f.realm, clientId));
  const refresh = String(granted.body.refresh_token);
  const renewed = await token(f.realm, {
    grant_type: "refresh_token",
    client_id: clientId,
    refresh_token: refresh,
  });
  assert.equal(renewed.status, 200);
  assert.notEqual(renewed.body.access_token, granted.body.access_token);
  assert.equal(await whoIs(f.stub, renewed.body.access_token), "alice");
  const other = await registerPublic(f.realm);
  const stolen = await token(f.realm, {
    grant_type: "refresh_token",
    client_id: other,
    refresh_token: refresh,
  });
  assert.equal(stolen.status, 400);
  assert.equal(stolen.body.error, "invalid_grant");
});

Deno.test("a registered client's refresh token is refused to the API's own client", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const granted = await exchange(f.realm, clientId, await codeFor(f.realm, clientId));
  const stolen = await token(f.realm, {
    grant_type: "refresh_token",
    client_id: f.stub.keycloak.clientId,
    refresh_token: String(granted.body.refresh_token),
  });
  assert.equal(stolen.status, 400);
  assert.equal(stolen.body.error, "invalid_grant");
  assert.equal(stolen.body.access_token, undefined);
});

Deno.test("a code is refused without a verifier, even one whose challenge is the empty string's", async () => {
  await using f = await fixture();
  const clientId = await registerPublic(f.realm);
  const response = await authorize(f.realm, clientId, {
    // S256 of "": a client that sends no verifier at all would match it.
    code_challenge: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
  });
  const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
  const granted = await token(f.realm, {
    grant_type: "authorization_code",
    client_id: clientId,
    code,
    redirect_uri: REDIRECT,
  });
  assert.equal(granted.status, 400);
  assert.equal(granted.body.error, "invalid_grant");
});

Deno.test("a confidential client's code is refused without its secret and accepted with it", async () => {
  await using f = await fixture();
  const registered = await (await register(f.realm, { redirect_uris: [REDIRECT] })).json();
  assert.equal(registered.token_endpoint_auth_method, "client_secret_basic");
  const code = await codeFor(f.realm, registered.client_id);
  const form = {
    grant_type: "authorization_code",
    code,
    code_verifier: PKCE.verifier,
    redirect_uri: REDIRECT,
  };
  const anonymous = await token(f.realm, { ...form, client_id: registered.client_id });
  assert.equal(anonymous.status, 401);
  const basic = btoa(`${registered.client_id}:${registered.client_secret}`);
  const response = await fetch(`${f.realm}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}` },
    body: new URLSearchParams(form),
  });
  assert.equal(response.status, 200);
  assert.equal(await whoIs(f.stub, (await response.json()).access_token), "alice");
});

Deno.test("the password grant of the API's own client still works beside sign-in", async () => {
  await using f = await fixture();
  const granted = await token(f.realm, {
    grant_type: "password",
    client_id: f.stub.keycloak.clientId,
    username: "bob",
    password: "bob-password",
  });
  assert.equal(granted.status, 200);
  assert.equal(await whoIs(f.stub, granted.body.access_token), "bob");
});
