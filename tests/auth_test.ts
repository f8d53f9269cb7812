/**
 * The credentials module as a library user drives it, without MCP: `KeycloakTokens`,
 * `StaticToken` and `NoCredentials` give tokens that `AsApi` sends, against the stub's Keycloak;
 * `TokenVerifier` checks tokens the stub's realm signed.
 */
import assert from "node:assert/strict";
import { AsApi } from "../src/api/mod.ts";
import {
  CredentialsError,
  InvalidToken,
  type KeycloakOptions,
  KeycloakTokens,
  NoCredentials,
  StaticToken,
  type TokenSource,
  TokenVerifier,
  VerifierUnavailable,
} from "../src/auth/mod.ts";
import { redact } from "../src/log.ts";
import { KEYCLOAK_SEED, startStub, type StubOptions, type StubServer } from "../src/stub/mod.ts";

/** A stub, a client for it, and a clock the token sources read (milliseconds). */
async function rig(options: StubOptions = {}) {
  const stub = await startStub(options);
  const clock = { ms: 1_700_000_000_000 };
  return {
    stub,
    clock,
    api: new AsApi({ url: stub.url, env: () => undefined }),
    /** A Keycloak source for the stub's realm, on the rig's clock. */
    tokens(options: Partial<KeycloakOptions> = {}): KeycloakTokens {
      return new KeycloakTokens({
        url: stub.keycloak.url,
        realm: stub.keycloak.realm,
        clientId: stub.keycloak.clientId,
        ...options,
      }, () => clock.ms);
    },
    /** `tokens` with alice's password. */
    alice(): KeycloakTokens {
      return this.tokens({ username: "alice", password: KEYCLOAK_SEED.passwords.alice });
    },
    /** The grants and statuses the stub's Keycloak received, oldest first. */
    grants(): [string, number][] {
      return stub.keycloak.requests.map((r) => [r.grant_type, r.status]);
    },
    async [Symbol.asyncDispose]() {
      await stub.shutdown();
    },
  };
}

/** What `get_account` answers `token`'s user, and the Authorization header the stub received. */
async function whoAmI(
  r: { api: AsApi; stub: StubServer },
  token: string,
): Promise<{ user: unknown; authorization: string | null | undefined }> {
  const { api, stub } = r;
  const before = stub.requests.length;
  const rv = await api.call("get_account", {}, { token });
  assert.equal(rv.success, true, JSON.stringify(rv.msg));
  assert.equal(stub.requests.length, before + 1);
  return { user: rv.msg.user, authorization: stub.requests.at(-1)?.authorization };
}

/** The error `promise` rejects with, which must be a CredentialsError. */
async function credentialsError(promise: Promise<unknown>): Promise<CredentialsError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof CredentialsError, `not a CredentialsError: ${error}`);
  return error;
}

Deno.test("the password grant gets a token the Account Server accepts as the user", async () => {
  await using r = await rig();
  const tokens = r.alice();
  assert.equal(tokens.kind, "Keycloak password grant");
  assert.equal(tokens.renewable, true);
  const token = await tokens.getToken();
  assert.deepEqual(await whoAmI(r, token), {
    user: { id: "alice" },
    authorization: `Bearer ${token}`,
  });
  assert.deepEqual(r.stub.keycloak.requests, [
    {
      grant_type: "password",
      client_id: KEYCLOAK_SEED.clientId,
      username: "alice",
      realm: KEYCLOAK_SEED.realm,
      status: 200,
    },
  ]);
});

Deno.test("the client-credentials grant gets a token for the service account", async () => {
  await using r = await rig();
  const tokens = r.tokens({ clientSecret: r.stub.keycloak.clientSecret });
  assert.equal(tokens.kind, "Keycloak client credentials");
  const token = await tokens.getToken();
  assert.deepEqual(await whoAmI(r, token), {
    user: { id: KEYCLOAK_SEED.serviceAccount },
    authorization: `Bearer ${token}`,
  });
  assert.deepEqual(r.grants(), [["client_credentials", 200]]);
});

Deno.test("a token is cached: several getToken calls make one token request", async () => {
  await using r = await rig();
  const tokens = r.alice();
  const first = await tokens.getToken();
  r.clock.ms += 60_000;
  assert.equal(await tokens.getToken(), first);
  assert.equal(await tokens.getToken({ timeoutS: 1 }), first);
  assert.deepEqual(r.grants(), [["password", 200]]);
});

Deno.test("a 300 s token is renewed 30 s before it expires, with the refresh token", async () => {
  await using r = await rig({ tokenLifetimeS: 300 });
  const tokens = r.alice();
  const start = r.clock.ms;
  const first = await tokens.getToken();
  r.clock.ms = start + 269_999;
  assert.equal(await tokens.getToken(), first);
  r.clock.ms = start + 270_000;
  const renewed = await tokens.getToken();
  assert.notEqual(renewed, first);
  assert.deepEqual(r.grants(), [["password", 200], ["refresh_token", 200]]);
  assert.deepEqual(await whoAmI(r, renewed), {
    user: { id: "alice" },
    authorization: `Bearer ${renewed}`,
  });
});

Deno.test("a 10 s token is renewed a fifth of its lifetime early, at 8 s", async () => {
  await using r = await rig({ tokenLifetimeS: 10 });
  const tokens = r.alice();
  const start = r.clock.ms;
  const first = await tokens.getToken();
  r.clock.ms = start + 7_999;
  assert.equal(await tokens.getToken(), first);
  r.clock.ms = start + 8_000;
  assert.notEqual(await tokens.getToken(), first);
  assert.deepEqual(r.grants(), [["password", 200], ["refresh_token", 200]]);
});

Deno.test("once the refresh token has expired too, the password grant is used again", async () => {
  await using r = await rig({ tokenLifetimeS: 10 });
  const tokens = r.alice();
  const start = r.clock.ms;
  await tokens.getToken();
  // The refresh token lives 100 s, renewed as early as the access token (2 s).
  r.clock.ms = start + 98_000;
  await tokens.getToken();
  assert.deepEqual(r.grants(), [["password", 200], ["password", 200]]);
});

Deno.test("a refused refresh token falls back to the password grant", async () => {
  await using r = await rig();
  const tokens = r.alice();
  const first = await tokens.getToken();
  r.stub.keycloak.revokeAll();
  r.clock.ms += 300_000;
  const renewed = await tokens.getToken();
  assert.notEqual(renewed, first);
  assert.deepEqual(r.grants(), [["password", 200], ["refresh_token", 400], ["password", 200]]);
  assert.deepEqual((await whoAmI(r, renewed)).user, { id: "alice" });
});

Deno.test("concurrent getToken calls share one token request and get the same token", async () => {
  await using r = await rig();
  const tokens = r.alice();
  const got = await Promise.all(Array.from({ length: 5 }, () => tokens.getToken()));
  assert.equal(new Set(got).size, 1);
  assert.deepEqual(r.grants(), [["password", 200]]);
  r.clock.ms += 300_000;
  const renewed = await Promise.all(Array.from({ length: 5 }, () => tokens.getToken()));
  assert.equal(new Set(renewed).size, 1);
  assert.notEqual(renewed[0], got[0]);
  assert.deepEqual(r.grants(), [["password", 200], ["refresh_token", 200]]);
});

Deno.test("invalidate drops the refused token only, and the next call makes a new grant", async () => {
  await using r = await rig();
  const tokens = r.alice();
  const first = await tokens.getToken();
  tokens.invalidate("some-other-token");
  assert.equal(await tokens.getToken(), first);
  tokens.invalidate(first);
  const second = await tokens.getToken();
  assert.notEqual(second, first);
  assert.deepEqual(r.grants(), [["password", 200], ["password", 200]]);
});

Deno.test("a wrong password is rejected, and the message does not hold the password", async () => {
  await using r = await rig();
  const password = "wrong-Passw0rd-for-auth-test";
  const error = await credentialsError(r.tokens({ username: "alice", password }).getToken());
  assert.equal(error.kind, "rejected");
  assert.equal(
    error.message,
    "Keycloak refused to issue an access token: 401 Unauthorized: " +
      "invalid_grant (Invalid user credentials)",
  );
  assert.equal(error.message.includes(password), false);
  assert.equal(redact(`password=${password}`), "password=[redacted]", "registered as a secret");
  assert.deepEqual(r.grants(), [["password", 401]]);
  assert.deepEqual(r.stub.requests, [], "nothing reached the Account Server");
});

Deno.test("a wrong client secret is rejected, without the secret in the message", async () => {
  await using r = await rig();
  const secret = "wrong-client-s3cret-auth-test";
  const error = await credentialsError(r.tokens({ clientSecret: secret }).getToken());
  assert.equal(error.kind, "rejected");
  assert.equal(
    error.message,
    "Keycloak refused to issue an access token: 401 Unauthorized: " +
      "invalid_client (Invalid client credentials)",
  );
  assert.equal(redact(`secret=${secret}`), "secret=[redacted]");
});

Deno.test("a Keycloak that is down fails, and the next call after it is back succeeds", async () => {
  await using r = await rig();
  const tokens = r.alice();
  r.stub.keycloak.setDown(true);
  const error = await credentialsError(tokens.getToken());
  assert.equal(error.kind, "failed");
  assert.equal(
    error.message,
    "Keycloak refused to issue an access token: 503 Service Unavailable: " +
      "temporarily_unavailable (Keycloak is down)",
  );
  r.stub.keycloak.setDown(false);
  const token = await tokens.getToken();
  assert.deepEqual((await whoAmI(r, token)).user, { id: "alice" });
  assert.deepEqual(r.grants(), [["", 503], ["password", 200]]);
});

Deno.test("a Keycloak where nothing listens is unreachable: connection refused", async () => {
  const gone = await startStub();
  const url = gone.keycloak.url;
  await gone.shutdown();
  const tokens = new KeycloakTokens({
    url,
    realm: KEYCLOAK_SEED.realm,
    clientId: KEYCLOAK_SEED.clientId,
    username: "alice",
    password: KEYCLOAK_SEED.passwords.alice,
  });
  const error = await credentialsError(tokens.getToken());
  assert.equal(error.kind, "unreachable");
  assert.equal(error.network, "refused");
  assert.match(error.message, /^could not get an access token from Keycloak: /);
});

Deno.test("a wrong realm is not_found, naming the token URL tried", async () => {
  await using r = await rig();
  const tokens = r.tokens({ realm: "no-such-realm", clientSecret: r.stub.keycloak.clientSecret });
  const error = await credentialsError(tokens.getToken());
  assert.equal(error.kind, "not_found");
  assert.equal(
    error.message,
    `Keycloak's token URL "${r.stub.keycloak.url}/realms/no-such-realm/protocol/openid-connect/` +
      'token" was not found (404 Not Found)',
  );
});

Deno.test("a wait cancelled before it starts fails as cancelled, and the source still works", async () => {
  await using r = await rig();
  const tokens = r.alice();
  const error = await credentialsError(tokens.getToken({ signal: AbortSignal.abort() }));
  assert.equal(error.kind, "unreachable");
  assert.equal(error.message, "cancelled while waiting for an access token from Keycloak");
  assert.equal(error.network, "network");
  const token = await tokens.getToken();
  assert.deepEqual((await whoAmI(r, token)).user, { id: "alice" });
});

Deno.test("StaticToken returns its token, which the Account Server receives as the bearer", async () => {
  await using r = await rig();
  const tokens: TokenSource = new StaticToken(r.stub.tokens.bob);
  assert.equal(tokens.kind, "static token");
  assert.equal(tokens.renewable, false);
  assert.equal(await tokens.getToken(), r.stub.tokens.bob);
  tokens.invalidate(r.stub.tokens.bob);
  assert.equal(await tokens.getToken(), r.stub.tokens.bob, "a static token cannot be replaced");
  assert.deepEqual(await whoAmI(r, await tokens.getToken()), {
    user: { id: "bob" },
    authorization: `Bearer ${r.stub.tokens.bob}`,
  });
  assert.equal(redact(`token ${r.stub.tokens.bob}`), "token [redacted]");
});

Deno.test("NoCredentials fails with kind none, saying which settings to make", async () => {
  const tokens = new NoCredentials();
  assert.equal(tokens.kind, "none");
  assert.equal(tokens.renewable, false);
  const error = await credentialsError(tokens.getToken());
  assert.equal(error.kind, "none");
  assert.equal(
    error.message,
    "no Account Server credentials are configured: the operator must set " +
      "SQUONK2_ASAPI_TOKEN or the SQUONK2_KEYCLOAK_* variables",
  );
});

/** A verifier for the stub's realm and the Account Server's client, on a clock if given. */
function verifierFor(stub: StubServer, now?: () => number): TokenVerifier {
  return new TokenVerifier({
    url: stub.keycloak.url,
    realm: stub.keycloak.realm,
    clientId: stub.keycloak.clientId,
    now,
  });
}

/** A JWT's payload, decoded without checking anything. */
function claimsOf(token: string): Record<string, unknown> {
  const part = token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("resolved"), (e: unknown) => e);
}

Deno.test("a token the realm signed verifies as its issuer and subject, with its expiry", async () => {
  await using r = await rig();
  const token = await r.stub.keycloak.mint("alice");
  const caller = await verifierFor(r.stub).verify(token);
  assert.deepEqual(caller, {
    id: `${r.stub.keycloak.issuer}|f:squonk2:alice`,
    expiresAt: Number(claimsOf(token).exp) * 1000,
  });
  assert.equal(caller.id, `${r.stub.keycloak.url}/realms/squonk2|f:squonk2:alice`);
});

Deno.test("a token from KeycloakTokens passes TokenVerifier: the two halves agree", async () => {
  await using r = await rig();
  const token = await r.alice().getToken();
  const caller = await verifierFor(r.stub).verify(token);
  assert.equal(caller.id, `${r.stub.keycloak.issuer}|f:squonk2:alice`);
});

const REFUSED: [string, (stub: StubServer) => Promise<string>, string][] = [
  [
    "an expired token",
    (stub) => stub.keycloak.mint("alice", { lifetimeS: -60 }),
    "the token has expired",
  ],
  [
    "a token for another client",
    (stub) => stub.keycloak.mint("alice", { claims: { aud: "other-api", azp: "other-client" } }),
    'the token was not issued for "account-server-api"',
  ],
  [
    "a token whose payload was changed after signing",
    async (stub) => {
      const [header, , signature] = (await stub.keycloak.mint("bob")).split(".");
      const alice = (await stub.keycloak.mint("alice")).split(".")[1];
      return `${header}.${alice}.${signature}`;
    },
    "the token's signature does not verify",
  ],
  [
    "a token of another realm",
    (stub) => stub.keycloak.mint("alice", { realm: KEYCLOAK_SEED.foreignRealm }),
    "the token is not signed by a key of this realm",
  ],
  [
    "a token the realm signed that names another issuer",
    (stub) => stub.keycloak.mint("alice", { claims: { iss: "https://evil.example/realms/x" } }),
    `the token's "iss" claim is not acceptable`,
  ],
  [
    "a refresh token",
    (stub) => stub.keycloak.mint("alice", { claims: { typ: "Refresh" } }),
    'the token is a "Refresh" token, not an access token',
  ],
  [
    "an unsigned token (alg none)",
    (stub) => stub.keycloak.mint("alice").then((t) => unsigned(t)),
    "the token's signing algorithm is not accepted",
  ],
  [
    "text that is not a JWT",
    () => Promise.resolve("not-a-jwt"),
    "the token is not a valid signed JWT",
  ],
];

/** `token` with its header saying alg "none" and no signature. */
function unsigned(token: string): string {
  const header = btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "");
  return `${header}.${token.split(".")[1]}.`;
}

for (const [what, make, message] of REFUSED) {
  Deno.test(`TokenVerifier refuses ${what}: "${message}"`, async () => {
    await using r = await rig();
    const error = await rejection(verifierFor(r.stub).verify(await make(r.stub)));
    assert.ok(error instanceof InvalidToken, `not an InvalidToken: ${error}`);
    assert.equal(error.message, message);
  });
}

Deno.test("a valid token is refused once the verifier's clock is past its expiry", async () => {
  await using r = await rig();
  const token = await r.stub.keycloak.mint("alice", { lifetimeS: 60 });
  const exp = Number(claimsOf(token).exp) * 1000;
  let now = exp - 1_000;
  const verifier = verifierFor(r.stub, () => now);
  assert.equal((await verifier.verify(token)).expiresAt, exp);
  now = exp + 1_000;
  const error = await rejection(verifier.verify(token));
  assert.ok(error instanceof InvalidToken);
  assert.equal(error.message, "the token has expired");
});

Deno.test("a Keycloak that is down makes the verifier unavailable, not the token invalid", async () => {
  await using r = await rig();
  const token = await r.stub.keycloak.mint("alice");
  r.stub.keycloak.setDown(true);
  const error = await rejection(verifierFor(r.stub).verify(token));
  assert.ok(error instanceof VerifierUnavailable, `not VerifierUnavailable: ${error}`);
  assert.equal(
    error.message,
    "Keycloak answered 503 Service Unavailable for /realms/squonk2/.well-known/openid-configuration",
  );
});
