/**
 * The settings table read as the server reads it: flags over variables over defaults, one yes/no
 * rule, the Python client's rule for SQUONK2_ASAPI_VERIFY_SSL_CERT with a warning, and errors
 * that name the setting.
 */
import assert from "node:assert/strict";
import { type Config, ConfigError, loadConfig } from "../src/config.ts";

function load(args: string[], vars: Record<string, string> = {}): Config {
  return loadConfig(args, (name) => vars[name]);
}

Deno.test("a flag wins over its variable, which wins over the default", () => {
  assert.equal(load([]).port, 3000);
  assert.equal(load([], { SQUONK2_MCP_PORT: "4000" }).port, 4000);
  assert.equal(load(["--port", "5000"], { SQUONK2_MCP_PORT: "4000" }).port, 5000);
  assert.equal(load(["--port=6000"]).port, 6000);
});

Deno.test("a blank variable counts as unset", () => {
  assert.equal(load([], { SQUONK2_MCP_TRANSPORT: "  " }).transport, "stdio");
});

Deno.test("switches are on with their flag or a yes, off with a no or nothing", () => {
  assert.equal(load([]).readOnly, false);
  assert.equal(load(["--read-only"]).readOnly, true);
  assert.equal(load([], { SQUONK2_MCP_READ_ONLY: " YES " }).readOnly, true);
  assert.equal(load([], { SQUONK2_MCP_READ_ONLY: "no" }).readOnly, false);
  assert.throws(
    () => load([], { SQUONK2_API_DEBUG_REQUESTS: "1" }),
    new ConfigError('SQUONK2_API_DEBUG_REQUESTS must be "yes" or "no", not "1"'),
  );
});

Deno.test("SQUONK2_ASAPI_VERIFY_SSL_CERT keeps the Python rule and warns for a value not yes or no", () => {
  const url = { SQUONK2_ASAPI_URL: "https://as.example/api" };
  assert.deepEqual(load([], url).warnings, []);
  assert.equal(load([], url).verifySslCert, true);
  const off = load([], { ...url, SQUONK2_ASAPI_VERIFY_SSL_CERT: "no" });
  assert.equal(off.verifySslCert, false);
  assert.deepEqual(off.warnings, []);
  const typo = load([], { ...url, SQUONK2_ASAPI_VERIFY_SSL_CERT: "true" });
  assert.equal(typo.verifySslCert, false);
  assert.equal(typo.warnings.length, 1);
  assert.match(typo.warnings[0]!, /^SQUONK2_ASAPI_VERIFY_SSL_CERT is "true", not "yes": TLS/);
  assert.match(typo.warnings[0]!, /will NOT be verified/);
  assert.throws(
    () => load(["--verify-ssl-cert", "true"], url),
    new ConfigError('--verify-ssl-cert must be "yes" or "no", not "true"'),
  );
});

Deno.test("lists are split on commas with spaces and empty items dropped", () => {
  assert.deepEqual(
    load(["--allowed-origins", " http://a.example, ,http://b.example "]).allowedOrigins,
    ["http://a.example", "http://b.example"],
  );
});

Deno.test("numbers and choices name the setting and what is allowed", () => {
  assert.throws(
    () => load([], { SQUONK2_MCP_PORT: "70000" }),
    new ConfigError('SQUONK2_MCP_PORT must be a port number, from 0 to 65535, not "70000"'),
  );
  assert.throws(
    () => load(["--max-result-bytes", "10"]),
    new ConfigError('--max-result-bytes must be a whole number of bytes, at least 1024, not "10"'),
  );
  assert.throws(
    () => load(["--transport", "ws"]),
    new ConfigError('--transport must be "stdio" or "http", not "ws"'),
  );
});

Deno.test("the connection cap can be set to match the file descriptors the system allows", () => {
  assert.equal(load([]).maxConnections, 2048);
  assert.equal(load([], { SQUONK2_MCP_MAX_CONNECTIONS: "300" }).maxConnections, 300);
  assert.equal(load(["--max-connections", "40"]).maxConnections, 40);
  assert.throws(
    () => load(["--max-connections", "0"]),
    new ConfigError(
      '--max-connections must be a whole number of connections, at least 1, not "0"',
    ),
  );
});

Deno.test("a switch takes =no to turn off a yes from the environment, and =yes", () => {
  // Before: "--read-only takes no value", so nothing on the command line could undo a .env's yes.
  const env = { SQUONK2_MCP_READ_ONLY: "yes", SQUONK2_MCP_CODE_MODE: "yes" };
  assert.equal(load([], env).readOnly, true);
  assert.equal(load(["--read-only=no"], env).readOnly, false);
  assert.equal(load(["--read-only=NO"], env).readOnly, false);
  assert.equal(load(["--read-only=yes"]).readOnly, true);
  assert.ok(!load(["--code-mode=no"], env).tools.includes("run_program"));
  assert.ok(load([], env).tools.includes("run_program"));
});

Deno.test("a switch given a value other than yes or no is refused, naming the flag", () => {
  assert.throws(
    () => load(["--read-only=true"]),
    new ConfigError('--read-only must be "yes" or "no", not "true"'),
  );
});

Deno.test("a value flag given none is refused", () => {
  assert.throws(
    () => load(["--url", "--demo"]),
    new ConfigError("--url needs a value: --url URL (see --help)"),
  );
});

Deno.test("a Keycloak client secret alone is not enough", () => {
  assert.throws(
    () =>
      load([], {
        SQUONK2_ASAPI_URL: "https://as.example/api",
        SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "s3cret-value",
      }),
    (error: Error) =>
      error instanceof ConfigError &&
      error.message ===
        "Keycloak is half configured: SQUONK2_KEYCLOAK_URL, SQUONK2_KEYCLOAK_REALM, " +
          "SQUONK2_KEYCLOAK_AS_CLIENT_ID must be set too",
  );
});

Deno.test("--stateless and SQUONK2_MCP_STATELESS turn sessions off; the default keeps them", () => {
  assert.equal(load([]).stateless, false);
  assert.equal(load(["--stateless"]).stateless, true);
  assert.equal(load([], { SQUONK2_MCP_STATELESS: "yes" }).stateless, true);
});

Deno.test("the public URL is kept without a trailing slash, and refused with credentials", () => {
  const config = load(["--public-url", "https://mcp.example.com/mcp/"], {
    SQUONK2_ASAPI_URL: "https://as.example/api",
    SQUONK2_KEYCLOAK_URL: "https://kc.example/auth/",
    SQUONK2_KEYCLOAK_REALM: "squonk2",
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
    SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "s",
  });
  assert.equal(config.publicUrl, "https://mcp.example.com/mcp");
  assert.throws(
    () => load(["--public-url", "https://user:pw@mcp.example.com/mcp"]),
    ConfigError,
  );
});

Deno.test("sign-in scopes are a list for HTTP with Keycloak, and refused where nobody signs in", () => {
  const keycloak = {
    SQUONK2_ASAPI_URL: "https://as.example/api",
    SQUONK2_KEYCLOAK_URL: "https://kc.example/auth",
    SQUONK2_KEYCLOAK_REALM: "squonk2",
    SQUONK2_KEYCLOAK_AS_CLIENT_ID: "account-server-api",
  };
  const config = load(["--transport", "http"], {
    ...keycloak,
    SQUONK2_MCP_OAUTH_SCOPES: "account-server-audience, offline_access",
  });
  assert.deepEqual(config.oauthScopes, ["account-server-audience", "offline_access"]);
  assert.deepEqual(load(["--transport", "http"], keycloak).oauthScopes, []);
  assert.throws(
    () => load(["--transport", "http", "--oauth-scopes", "account-server-audience"]),
    /^Error: SQUONK2_MCP_OAUTH_SCOPES \(or --oauth-scopes\) is set, but callers sign in only over HTTP/,
  );
});

Deno.test("a misspelt tool or toolset is refused with the nearest name, not the whole list", () => {
  // Before: every tool's name, and no hint which one was meant.
  assert.throws(
    () => load(["--exclude-tools", "get_untis"]),
    new ConfigError('Unknown tool "get_untis" (did you mean get_units?)'),
  );
  assert.throws(
    () => load([], { SQUONK2_MCP_TOOLS: "get_unit,delete_unti" }),
    new ConfigError('Unknown tool "delete_unti" (did you mean delete_unit?)'),
  );
  assert.throws(
    () => load(["--toolsets", "unit,products"]),
    new ConfigError('Unknown toolset "unit" (did you mean units?)'),
  );
  // With nothing close, the names to choose from.
  assert.throws(
    () => load(["--toolsets", "orgs"]),
    (error: Error) =>
      error.message.startsWith('Unknown toolset "orgs": choose from ') &&
      error.message.includes("organisations"),
  );
});
