/**
 * Attacks on the HTTP endpoint as an OAuth resource server: the Protected Resource Metadata and
 * the `WWW-Authenticate` challenge of its 401s must name only the server's own URL (or the public
 * URL the operator gave), whatever the request's `Host` or request target says, and the
 * challenge must stay well-formed. Raw requests over loopback, so nothing rewrites them.
 */
import assert from "node:assert/strict";
import { InvalidToken } from "../src/auth/verify.ts";
import type { HttpOptions } from "../src/mcp/mod.ts";
import { initializeRequest } from "./_helpers.ts";
import { type Endpoint, openEndpoint, readAll, writeAll } from "../testing/mod.ts";

const REALM_URL = "https://keycloak.example/auth/realms/squonk2";

function rig(options: Partial<HttpOptions> = {}): Promise<Endpoint> {
  return openEndpoint({
    graceMs: undefined,
    resource: { authorizationServer: REALM_URL },
    ...options,
  });
}

/** Sends `head` (and `body`) as is and reads the answer until the server closes. */
async function raw(port: number, head: string, body = ""): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode(`${head}\r\n\r\n${body}`));
  return await readAll(conn, 5000);
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
}

function challengeOf(answer: string): string | undefined {
  return /^www-authenticate: (.*)$/im.exec(answer)?.[1]?.trim();
}

/** A challenge whose every parameter is `name="value"` with no quote inside the value. */
const WELL_FORMED = /^Bearer [a-z_]+="[^"\\]*"(, [a-z_]+="[^"\\]*")*$/;

for (const stateless of [false, true]) {
  const mode = stateless ? "stateless" : "with sessions";

  Deno.test(`metadata asked for with a foreign Host does not name it (${mode})`, async () => {
    await using r = await rig({ stateless });
    for (
      const path of [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
      ]
    ) {
      const answer = await raw(r.port, `GET ${path} HTTP/1.1\r\nHost: evil.example`);
      // Refused as /mcp itself would be (the refusal echoes the Host, naming no resource).
      assert.equal(statusOf(answer), 403, answer);
      assert.doesNotMatch(answer, /"resource"|http:\/\/evil\.example/, answer);
    }
  });

  Deno.test(`an absolute-form request target does not choose the URL a 401 names (${mode})`, async () => {
    await using r = await rig({ stateless });
    const host = `127.0.0.1:${r.port}`;
    const own = `http://${host}/.well-known/oauth-protected-resource/mcp`;
    for (const target of ["http://evil.example/mcp", "https://evil.example:8443/mcp"]) {
      const answer = await raw(
        r.port,
        `POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2`,
        "{}",
      );
      assert.equal(statusOf(answer), 401, answer);
      assert.equal(
        challengeOf(answer),
        `Bearer realm="squonk2-as-mcp", resource_metadata="${own}"`,
      );
    }
    const metadata = await raw(
      r.port,
      `GET http://evil.example/.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: ${host}`,
    );
    assert.doesNotMatch(metadata, /evil\.example/, metadata);
    assert.match(metadata, new RegExp(`"resource":"http://${host}/mcp"`));
  });

  Deno.test(`a quote in the request target cannot break into the 401's challenge (${mode})`, async () => {
    await using r = await rig({ stateless });
    const answer = await raw(
      r.port,
      `POST http://a",error="x/mcp HTTP/1.1\r\nHost: 127.0.0.1:${r.port}\r\nContent-Length: 2`,
      "{}",
    );
    assert.equal(statusOf(answer), 401, answer);
    assert.match(challengeOf(answer) ?? "", WELL_FORMED);
  });
}

Deno.test("a refused token's reason is quoted so that the challenge stays well-formed", async () => {
  await using r = await rig({
    verifier: {
      verify: () =>
        Promise.reject(new InvalidToken('the token was not issued for "account-server-api"')),
    },
  });
  const response = await fetch(r.endpoint.url, {
    method: "POST",
    headers: {
      authorization: "Bearer some.jwt.token",
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify(initializeRequest()),
  });
  await response.body?.cancel();
  assert.equal(response.status, 401);
  const challenge = response.headers.get("www-authenticate") ?? "";
  assert.match(challenge, WELL_FORMED);
  assert.match(challenge, /error="invalid_token"/);
  assert.match(
    challenge,
    /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/,
  );
});

Deno.test("with a public URL, no Host or request target changes what the metadata names", async () => {
  const publicUrl = "https://mcp.example.com/mcp";
  await using r = await rig({ resource: { authorizationServer: REALM_URL, publicUrl } });
  for (
    const head of [
      "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: evil.example",
      `GET http://evil.example/.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: 127.0.0.1:${r.port}`,
    ]
  ) {
    const answer = await raw(r.port, head);
    assert.equal(statusOf(answer), 200, answer);
    assert.match(answer, /"resource":"https:\/\/mcp\.example\.com\/mcp"/);
    assert.doesNotMatch(answer, /evil\.example/);
  }
});

Deno.test("/readyz asked for in a flood reaches the Account Server about once a second", async () => {
  let checks = 0;
  await using http = await openEndpoint({
    ready: async () => {
      checks++;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return true;
    },
  });
  const { endpoint } = http;
  const started = performance.now();
  let asked = 0;
  while (performance.now() - started < 1500) {
    await Promise.all(
      Array.from(
        { length: 10 },
        () => fetch(new URL("/readyz", endpoint.url)).then((r) => r.body?.cancel()),
      ),
    );
    asked += 10;
  }
  assert.ok(asked >= 50, `only ${asked} probes were sent`);
  assert.ok(checks <= 3, `${checks} checks for ${asked} probes`);
});
