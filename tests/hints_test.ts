/**
 * Hints chosen by cause: the client's reason for a failure with no answer (from the errors `fetch`
 * and `node:https` really give), and the hint each reason gets.
 */
import assert from "node:assert/strict";
import { type ApiRv, AsApi } from "../src/api/mod.ts";
import { describeNoResponse, noResponseReason } from "../src/api/_failure.ts";
import { credentialsHint, hintFor } from "../src/mcp/hints.ts";
import { CredentialsError } from "../src/auth/mod.ts";
import { startStub } from "../src/stub/mod.ts";

/** An error shaped as Deno's `fetch` rejects: a TypeError whose cause holds the words. */
function fetchError(words: string): TypeError {
  return new TypeError("fetch failed", { cause: new Error(words) });
}

/** An error shaped as `node:https` gives: a message and a code. */
function nodeError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const REASONS: [string, unknown, string][] = [
  [
    "Deno's DNS failure",
    fetchError(
      "error sending request for url (http://as.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
    ),
    "dns",
  ],
  ["node's DNS failure", nodeError("getaddrinfo ENOTFOUND as.invalid", "ENOTFOUND"), "dns"],
  [
    "Deno's refused connection",
    fetchError(
      "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
    "refused",
  ],
  [
    "node's refused connection",
    nodeError("connect ECONNREFUSED 127.0.0.1:9", "ECONNREFUSED"),
    "refused",
  ],
  [
    "Deno's untrusted certificate",
    fetchError("client error (Connect): invalid peer certificate: UnknownIssuer"),
    "tls",
  ],
  [
    "node's self-signed certificate",
    nodeError("self-signed certificate", "DEPTH_ZERO_SELF_SIGNED_CERT"),
    "tls",
  ],
  ["a reset connection", nodeError("read ECONNRESET", "ECONNRESET"), "dropped"],
  ["anything else", new Error("something odd"), "network"],
];

for (const [what, error, reason] of REASONS) {
  Deno.test(`${what} is classed as "${reason}"`, () => {
    assert.equal(noResponseReason(error, false), reason);
  });
}

Deno.test("a timed-out call is classed as a timeout whatever the error says", () => {
  assert.equal(noResponseReason(new Error("connection closed"), true), "timeout");
});

Deno.test("a DNS failure says the host could not be resolved, and its hint says to check the URL", () => {
  const error = REASONS[0]![1];
  const context = { timeoutS: 4, timedOut: false, host: "as.invalid", verifyTls: true };
  assert.equal(describeNoResponse(error, context), 'host name "as.invalid" could not be resolved');
  const rv: ApiRv = { success: false, msg: { error: "x" }, http_status_code: 0, reason: "dns" };
  assert.equal(
    hintFor(rv),
    "The Account Server's host name does not resolve: the operator must check SQUONK2_ASAPI_URL (or the DNS); waiting will not help",
  );
});

Deno.test("a refused connection's ApiRv carries the reason, and its JSON only the three fields", async () => {
  const stub = await startStub();
  const api = new AsApi({ url: stub.url, env: () => undefined });
  await stub.shutdown();
  const rv = await api.call("ping", {});
  assert.equal(rv.reason, "refused");
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(rv))), [
    "success",
    "msg",
    "http_status_code",
  ]);
});

Deno.test("an argument refused before sending has the reason invalid and a hint that nothing was sent", async () => {
  const api = new AsApi({ url: "http://127.0.0.1:9/x", env: () => undefined });
  const rv = await api.call("create_unit", { unit_name: "u", org_id: "nope", billing_day: 1 });
  assert.equal(rv.reason, "invalid");
  assert.equal(hintFor(rv), "Nothing was sent: fix the argument the error names");
});

Deno.test("with no credentials, the hint names only the offered tools that need no token", () => {
  const none = new CredentialsError("no credentials", "none");
  assert.equal(
    credentialsHint(none),
    "This server has no Account Server credentials, so only tools that need no token work (ping, get_version, get_event_stream_version); the operator must configure them",
  );
  assert.equal(
    credentialsHint(none, { offered: new Set(["get_version", "get_unit"]) }),
    "This server has no Account Server credentials, so only tools that need no token work (get_version); the operator must configure them",
  );
});

Deno.test("a Keycloak that does not answer in time gets a hint that a larger timeout_s may help", () => {
  const slow = new CredentialsError("slow", "unreachable", "timeout");
  assert.equal(
    credentialsHint(slow),
    "Keycloak did not answer in time, so nothing was sent to the Account Server: try again later; a larger timeout_s may help",
  );
});
