/**
 * Start-up checks, on the real entry point: a name that only looks like loopback is not,
 * configuration errors never print a URL's query or credentials, callers are verified only
 * against a Keycloak whose certificate is trusted, and settings that expose callers are named at
 * start. (A port in use: welcome_test.)
 */
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { startStub } from "../src/stub/mod.ts";
import { initializeRequest, selfSignedCertificate } from "./_helpers.ts";
import { type HttpServing, runDeno, serverArgs, servingWith } from "./_spawn.ts";

/** `deno task start` with `args` and `env`, hermetic, to the end. */
function start(args: string[], env: Record<string, string> = {}) {
  return runDeno(serverArgs("start", ...args), env);
}

Deno.test("--host 127.evil.example is not loopback: it needs --allowed-hosts, exit 2", async () => {
  // Before: any name starting "127." passed as loopback, so DNS rebinding had no guard.
  const { code, stderr } = await start(["--transport", "http", "--host", "127.evil.example"]);
  assert.equal(code, 2);
  assert.equal(
    stderr.trim().split("\n").at(-1),
    'squonk2-as-mcp: Listening on "127.evil.example" needs --allowed-hosts (or ' +
      "SQUONK2_MCP_ALLOWED_HOSTS): the Host names clients use, so DNS rebinding cannot reach the " +
      "server",
  );
});

Deno.test("a URL with a query or credentials is refused without printing them", async () => {
  const cases = [
    "https://as.example/api?token=SECRET-QUERY",
    "https://alice:SECRET-PASSWORD@as.example/api",
    "ftp://alice:SECRET-PASSWORD@as.example/api?token=SECRET-QUERY",
    "as.example/api?token=SECRET-QUERY#SECRET-FRAGMENT",
  ];
  for (const url of cases) {
    for (
      const [args, env] of [
        [["--url", url], {}],
        [[], { SQUONK2_ASAPI_URL: url }],
        [[], {
          SQUONK2_ASAPI_URL: "https://as.example/api",
          SQUONK2_KEYCLOAK_URL: url,
          SQUONK2_KEYCLOAK_REALM: "r",
          SQUONK2_KEYCLOAK_AS_CLIENT_ID: "c",
          SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "s3cr3t",
        }],
      ] as [string[], Record<string, string>][]
    ) {
      const { code, stderr } = await start(args, env);
      assert.equal(code, 2, url);
      assert.match(stderr, /Invalid (Account Server|Keycloak) URL/, url);
      assert.equal(/SECRET/.test(stderr), false, `${url} leaked: ${stderr}`);
    }
  }
});

Deno.test("over HTTP, Keycloak's URL, realm and client id alone verify callers, with no server credentials", () => {
  const env: Record<string, string> = {
    SQUONK2_ASAPI_URL: "https://as.example/api",
    SQUONK2_KEYCLOAK_URL: "https://kc.example/auth/",
    SQUONK2_KEYCLOAK_REALM: "squonk2",
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
  };
  const config = loadConfig(["--transport", "http"], (name) => env[name]);
  assert.deepEqual(config.credentials, { kind: "none" });
  assert.deepEqual(config.verifyCallers, {
    url: "https://kc.example/auth",
    realm: "squonk2",
    clientId: "account-server-api",
  });
  assert.throws(() => loadConfig([], (name) => env[name]), /client-credentials grant needs/);
});

/** `deno task start` over HTTP on a free port with `env`, until disposed; its stderr so far. */
function serving(env: Record<string, string>, ...args: string[]): Promise<HttpServing> {
  return servingWith({ env, args });
}

Deno.test("with SQUONK2_ASAPI_VERIFY_SSL_CERT=no, a Keycloak with an untrusted certificate still verifies nobody", async () => {
  // Before: the Account Server's "no" also turned off TLS checks of Keycloak's keys, so whoever
  // sat on the way to Keycloak could serve a key set of their own and be let in.
  const stub = await startStub(await selfSignedCertificate());
  try {
    assert.match(stub.keycloak.url, /^https:/);
    await using server = await serving({
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_ASAPI_VERIFY_SSL_CERT: "no",
      SQUONK2_KEYCLOAK_URL: stub.keycloak.url,
      SQUONK2_KEYCLOAK_REALM: stub.keycloak.realm,
      SQUONK2_KEYCLOAK_AS_CLIENT_ID: stub.keycloak.clientId,
    });
    assert.ok(
      await server.says(
        `callers' tokens are verified against Keycloak realm "${stub.keycloak.realm}" ` +
          "(its TLS certificate verified all the same)",
      ),
      server.stderr(),
    );
    const token = await stub.keycloak.mint("alice");
    const response = await fetch(server.url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify(initializeRequest()),
    });
    assert.equal(response.status, 503);
    await response.body?.cancel();
    assert.equal(stub.keycloak.jwksFetches.size, 0, "no key set was taken from it");
    assert.deepEqual(stub.requests, [], "the Account Server heard nothing");
    assert.ok(
      await server.says(
        `cannot verify a token: the TLS certificate of Keycloak ("${
          new URL(stub.keycloak.url).host
        }") is not trusted, and callers' tokens are verified only against a trusted Keycloak: ` +
          "give its CA to Deno with DENO_CERT",
      ),
      server.stderr(),
    );
  } finally {
    await stub.shutdown();
  }
});

Deno.test("a Keycloak over plain http on another machine, and no public URL behind allowed hosts, are each named in one line at start", async () => {
  await using server = await serving(
    {
      SQUONK2_ASAPI_URL: "https://as.example/api",
      SQUONK2_KEYCLOAK_URL: "http://kc.example/auth",
      SQUONK2_KEYCLOAK_REALM: "squonk2",
      SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
    },
    "--allowed-hosts",
    "mcp.example.com",
  );
  assert.ok(
    await server.says(
      'callers\' tokens are verified with keys fetched from Keycloak over plain http ("kc.example"): ' +
        "anyone on the way can hand out their own keys and be let in; use https",
    ),
    server.stderr(),
  );
  assert.ok(
    await server.says(
      "SQUONK2_MCP_PUBLIC_URL (or --public-url) is not set: the sign-in metadata names this " +
        'endpoint "http://<Host>/mcp", so behind an https proxy clients are sent to plain http; ' +
        "set it to the URL clients use",
    ),
    server.stderr(),
  );
});

Deno.test("no exposure warning for a loopback Keycloak, a public URL, stdio, or no Keycloak at all", () => {
  const keycloak = {
    SQUONK2_ASAPI_URL: "https://as.example/api",
    SQUONK2_KEYCLOAK_URL: "http://127.0.0.1:8080/auth",
    SQUONK2_KEYCLOAK_REALM: "squonk2",
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
    SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "s",
  };
  const warnings = (args: string[], env: Record<string, string>) =>
    loadConfig(args, (name) => env[name]).warnings;
  assert.deepEqual(warnings(["--transport", "http"], keycloak), []);
  const proxied = ["--transport", "http", "--allowed-hosts", "mcp.example.com"];
  assert.deepEqual(
    warnings([...proxied, "--public-url", "https://mcp.example.com/mcp"], keycloak),
    [],
  );
  assert.deepEqual(warnings(proxied, { SQUONK2_ASAPI_URL: "https://as.example/api" }), []);
  const remote = { ...keycloak, SQUONK2_KEYCLOAK_URL: "http://kc.example/auth" };
  assert.deepEqual(warnings([], remote), []);
  assert.equal(warnings(["--transport", "http"], remote).length, 1);
  assert.equal(warnings(proxied, keycloak).length, 1);
});

Deno.test("running out of file descriptors sheds slow connections instead of ending the server", async () => {
  // Before: under `ulimit -n 4096`, 1,400 connections that never sent their body made the
  // internal server's accept fail (EMFILE), which ended the process.
  const stub = await startStub();
  try {
    await shedsUnderLimit(stub.url);
  } finally {
    await stub.shutdown();
  }
});

async function shedsUnderLimit(url: string): Promise<void> {
  await using server = await servingWith({
    env: { SQUONK2_ASAPI_URL: url },
    args: [],
    maxFiles: 256,
  });
  let exited = false;
  server.status.then(() => exited = true);
  const { port, host } = new URL(server.url);
  const head = `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1000\r\n\r\n`;
  const held: Deno.Conn[] = [];
  for (let i = 0; i < 200; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
      await conn.write(new TextEncoder().encode(head));
      held.push(conn);
    } catch {
      break;
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  let status = 0;
  for (let tries = 0; tries < 20 && status !== 200; tries++) {
    status = await fetch(new URL("/healthz", server.url)).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    }, () => 0);
    if (status !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  for (const conn of held) conn.close();
  assert.equal(exited, false, `the server ended: ${server.stderr()}`);
  assert.equal(status, 200, "an honest request is served again");
}
