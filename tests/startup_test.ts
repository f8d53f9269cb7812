/**
 * Start-up checks, on the real entry point: a name that only looks like loopback is not, and
 * configuration errors never print a URL's query or credentials. (A port in use: welcome_test.)
 */
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function start(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", ...args],
    cwd: ROOT,
    // Only what deno itself needs, so the caller's SQUONK2_* variables do not leak in.
    env: {
      NO_COLOR: "1",
      HOME: Deno.env.get("HOME") ?? "/",
      PATH: Deno.env.get("PATH") ?? "",
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
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
    verifyTls: true,
  });
  assert.throws(() => loadConfig([], (name) => env[name]), /client-credentials grant needs/);
});
