/**
 * Installing it like any MCP server: the MCP Bundle unpacked and started as Claude Desktop starts
 * it, the set-up step after which `deno task start` needs no network, the Claude Desktop entry of
 * `deno task desktop-config`, and the variable that carries a proxy's CA certificate.
 */
import assert from "node:assert/strict";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb/node";
import { SETTINGS } from "../src/config.ts";
import type { Setting } from "../src/settings.ts";
import { selectTools } from "../src/mcp/mod.ts";
import { startStub, type StubServer } from "../src/stub/mod.ts";
import { placeholder } from "../scripts/desktop_config.ts";
import { askedSettings, bundleManifest } from "../scripts/bundle.ts";
import { noRegistry, StdioProcess } from "./_process.ts";
import { selfSignedCertificate } from "./_helpers.ts";
import { checkoutCopy } from "./_spawn.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

/** Runs deno with `args` in the project (or `cwd`); returns the exit code and stderr. */
async function deno(
  args: string[],
  env: Record<string, string> = {},
  cwd = ROOT,
): Promise<[number, string]> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return [code, new TextDecoder().decode(stderr)];
}

/** Initializes, lists the tools and calls get_version and get_account; returns the tool names. */
async function converse(server: StdioProcess, stub: StubServer): Promise<string[]> {
  const init = await server.request("initialize", {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "install-test", version: "1.0.0" },
  });
  assert.equal((init.result?.serverInfo as { name: string }).name, "squonk2-as-mcp");
  await server.notify("notifications/initialized");
  const list = await server.request("tools/list");
  const names = (list.result?.tools as { name: string }[]).map((t) => t.name);
  const version = await server.request("tools/call", { name: "get_version", arguments: {} });
  assert.deepEqual(version.result?.structuredContent, {
    success: true,
    msg: { version: "4.4.0" },
    http_status_code: 200,
  });
  const account = await server.request("tools/call", { name: "get_account", arguments: {} });
  assert.deepEqual((account.result?.structuredContent as { msg: unknown }).msg, {
    user: { id: "alice" },
    caller_has_admin_privilege: false,
    account_server_roles: ["as-user"],
  });
  assert.deepEqual(stub.requests.map((r) => `${r.method} ${r.path}`), [
    "GET /version",
    "GET /user/account",
  ]);
  return names;
}

/** Builds the bundle into a temporary folder, unpacks it with the mcpb CLI; returns the folder. */
async function buildAndUnpack(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mcpb-" });
  const file = `${dir}/squonk2-as-mcp.mcpb`;
  const [built, buildLog] = await deno(["task", "-q", "bundle", "--out", file]);
  assert.equal(built, 0, buildLog);
  assert.match(buildLog, /Manifest schema validation passes!/);
  const [unpacked, log] = await deno(["run", "-A", "npm:@anthropic-ai/mcpb", "unpack", file, dir]);
  assert.equal(unpacked, 0, log);
  return dir;
}

/** The app's command, arguments and environment for `userConfig`, for the unpacked bundle. */
type ConfigFor = (
  userConfig: Record<string, string | boolean>,
) => Promise<{ command: string; args?: string[]; env?: Record<string, string> } | undefined>;

/** Starts the unpacked bundle as the app would, from /, with only PATH, its settings, no registry. */
async function startBundled(
  configFor: ConfigFor,
  userConfig: Record<string, string | boolean>,
): Promise<StdioProcess> {
  const config = await configFor({ deno_path: Deno.execPath(), ...userConfig });
  assert.ok(config, "every required setting is given");
  const env = { PATH, ...config.env, ...noRegistry() };
  return new StdioProcess(config.command, config.args ?? [], { env, cwd: "/" });
}

/** Initializes and lists the tools; returns their names. */
async function toolNames(server: StdioProcess): Promise<string[]> {
  await server.request("initialize", {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "install-test", version: "1.0.0" },
  });
  await server.notify("notifications/initialized");
  const list = await server.request("tools/list");
  return (list.result?.tools as { name: string }[]).map((t) => t.name);
}

Deno.test("the MCP Bundle, installed and started as Claude Desktop would, needs no network", async (t) => {
  const dir = await buildAndUnpack();
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  const configFor: ConfigFor = (userConfig) =>
    getMcpConfigForManifest({
      manifest,
      extensionPath: dir,
      systemDirs: {},
      userConfig,
      pathSeparator: "/",
    });

  await t.step("it lists every tool and asks for settings of the right kinds", () => {
    assert.deepEqual(manifest.tools.map((t: { name: string }) => t.name), selectTools());
    const options: Record<string, { type: string; default?: unknown; sensitive?: boolean }> =
      manifest.user_config;
    const kinds = Object.entries(options).map(([key, o]) => `${key}: ${o.type} ${o.default}`);
    assert.deepEqual(kinds, [
      "deno_path: file undefined",
      "url: string ",
      "verify_ssl_cert: boolean true",
      "token: string ",
      "keycloak_url: string ",
      "keycloak_realm: string ",
      "keycloak_client_id: string ",
      "keycloak_client_secret: string ",
      "keycloak_user: string ",
      "keycloak_password: string ",
      "read_only: boolean false",
      "toolsets: string ",
      "file_root: directory ",
    ]);
    const sensitive = Object.keys(options).filter((key) => options[key]!.sensitive);
    assert.deepEqual(sensitive, ["token", "keycloak_client_secret", "keycloak_password"]);
  });

  await t.step(
    "it asks for the Deno executable, and names no path of the machine that built it",
    async () => {
      assert.equal(manifest.user_config.deno_path.required, true);
      assert.ok(!JSON.stringify(manifest).includes(Deno.execPath()));
      assert.equal(await configFor({}), undefined, "the app does not start it without one");
    },
  );

  await t.step(
    "it starts from /, with only PATH and its settings, and serves the stub",
    async () => {
      const stub = await startStub();
      const emptyCache = await Deno.makeTempDir({ prefix: "deno-dir-" });
      const configWithCache: ConfigFor = async (userConfig) => {
        const config = await configFor(userConfig);
        return config && { ...config, env: { ...config.env, DENO_DIR: emptyCache } };
      };
      await using server = await startBundled(configWithCache, {
        url: stub.url,
        token: stub.tokens.alice,
      });
      try {
        assert.deepEqual(await converse(server, stub), selectTools());
        assert.equal(await server.close(), 0);
        const stderr = await server.stderr;
        assert.ok(!stderr.includes("Download"), stderr);
        assert.ok(!stderr.includes(stub.tokens.alice), "the token is never logged");
        assert.ok(!stderr.includes("waits for an MCP client"), "no terminal, no terminal advice");
      } finally {
        await stub.shutdown();
        await Deno.remove(emptyCache, { recursive: true });
      }
    },
  );

  await t.step("its Read-only checkbox, ticked, leaves only the tools that read", async () => {
    const stub = await startStub();
    await using server = await startBundled(configFor, {
      url: stub.url,
      token: stub.tokens.alice,
      read_only: true,
    });
    try {
      const names = await toolNames(server);
      assert.deepEqual(names, selectTools({ readOnly: true }));
      assert.ok(names.length < selectTools().length);
      assert.equal(await server.close(), 0);
    } finally {
      await stub.shutdown();
    }
  });

  await t.step(
    "its TLS checkbox verifies certificates when ticked, and not when cleared",
    async () => {
      const { cert, key } = await selfSignedCertificate();
      const stub = await startStub({ cert, key });
      /** get_version's ApiRv from the bundled server with `verify_ssl_cert` set so. */
      const versionWith = async (verify: boolean) => {
        await using server = await startBundled(configFor, {
          url: stub.url,
          token: stub.tokens.alice,
          verify_ssl_cert: verify,
        });
        await toolNames(server);
        const call = await server.request("tools/call", { name: "get_version", arguments: {} });
        assert.equal(await server.close(), 0);
        const stderr = await server.stderr;
        assert.ok(!stderr.includes('not "yes"'), `no warning of a misread value: ${stderr}`);
        return call.result?.structuredContent as { success: boolean; msg: unknown };
      };
      try {
        const verified = await versionWith(true);
        assert.equal(verified.success, false);
        assert.match(JSON.stringify(verified.msg), /certificate/i);
        assert.deepEqual(await versionWith(false), {
          success: true,
          msg: { version: "4.4.0" },
          http_status_code: 200,
        });
        assert.deepEqual(stub.requests.map((r) => `${r.method} ${r.path}`), ["GET /version"]);
      } finally {
        await stub.shutdown();
      }
    },
  );

  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task bundle --deno PATH fills in the Deno executable, which is then optional", () => {
  const manifest = bundleManifest([], { deno: "/opt/deno/bin/deno" });
  const option = (manifest.user_config as Record<string, Record<string, unknown>>).deno_path;
  assert.deepEqual([option?.required, option?.default], [false, "/opt/deno/bin/deno"]);
});

Deno.test("the bundle's fields take their descriptions and secrets from the settings table", () => {
  const rows = Object.values(SETTINGS as Record<string, Setting>);
  for (const { variable, option } of askedSettings()) {
    const row = rows.find((r) => r.env === variable)!;
    assert.ok(option.description.startsWith(row.help.split(": ")[0]!), variable);
    assert.equal(option.sensitive ?? false, row.secret ?? false, variable);
  }
});

Deno.test("deno task desktop-config prints an entry that starts with no deno on PATH", async () => {
  // In a copy of the checkout: the entry runs the start task, which reads the checkout's .env.
  await using copy = await checkoutCopy();
  const stub = await startStub();
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "desktop-config"],
    cwd: copy.path,
    clearEnv: true,
    env: { PATH, SQUONK2_ASAPI_URL: stub.url, SQUONK2_ASAPI_TOKEN: stub.tokens.alice },
    stdout: "piped",
    stderr: "piped",
  }).output();
  try {
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const text = new TextDecoder().decode(stdout);
    assert.ok(!text.includes(stub.tokens.alice), "the secret is not printed");
    const entry = JSON.parse(text).mcpServers["squonk2-account-server"];
    assert.equal(entry.command, Deno.execPath());
    assert.deepEqual(entry.args, ["task", "-q", "--config", `${copy.path}deno.json`, "start"]);
    assert.deepEqual(entry.env, {
      SQUONK2_ASAPI_URL: stub.url,
      SQUONK2_ASAPI_TOKEN: placeholder("SQUONK2_ASAPI_TOKEN"),
    });
    assert.match(new TextDecoder().decode(stderr), /claude_desktop_config\.json/);

    // The user fills in the placeholder; the app starts the entry with a PATH that has no deno.
    const env = { ...entry.env, SQUONK2_ASAPI_TOKEN: stub.tokens.alice, PATH: "/nonexistent" };
    await using server = new StdioProcess(entry.command, entry.args, { env, cwd: "/" });
    await converse(server, stub);
    assert.equal(await server.close(), 0);
  } finally {
    await stub.shutdown();
  }
});

/**
 * A DENO_DIR filled by the README's set-up step (`deno install`) from an empty one: `.ci/run`
 * makes it, since that step is the one time the npm registry is needed and the tests themselves
 * reach only loopback.
 */
const INSTALLED_DENO_DIR = Deno.env.get("SQUONK2_TEST_INSTALLED_DENO_DIR");
if (!INSTALLED_DENO_DIR && Deno.env.get("CI") === "true") {
  throw new Error("CI must set SQUONK2_TEST_INSTALLED_DENO_DIR (see .ci/run)");
}

Deno.test({
  name: "after deno install into a fresh DENO_DIR, deno task start needs no network",
  // Outside CI, run `.ci/run`, or set the variable to a DENO_DIR that `deno install` filled.
  ignore: !INSTALLED_DENO_DIR,
  async fn() {
    const denoDir = INSTALLED_DENO_DIR!;
    const emptyDir = await Deno.makeTempDir({ prefix: "deno-dir-" });
    // In a copy of the checkout, which has no .env for the task to read.
    await using copy = await checkoutCopy();
    const stub = await startStub();
    try {
      const env = {
        PATH,
        DENO_DIR: denoDir,
        ...noRegistry(),
        SQUONK2_ASAPI_URL: stub.url,
        SQUONK2_ASAPI_TOKEN: stub.tokens.alice,
      };
      const empty = await deno(
        ["task", "-q", "start", "--version"],
        { ...env, DENO_DIR: emptyDir },
        copy.path,
      );
      assert.match(empty[1], /Failed caching npm package/, "with an empty cache it cannot start");
      await using server = new StdioProcess(Deno.execPath(), ["task", "-q", "start"], {
        env,
        cwd: copy.path,
      });
      assert.deepEqual(await converse(server, stub), selectTools());
      assert.equal(await server.close(), 0);
      const stderr = await server.stderr;
      assert.ok(!stderr.includes("Download"), stderr);
    } finally {
      await stub.shutdown();
      await Deno.remove(emptyDir, { recursive: true });
    }
  },
});

Deno.test("DENO_CERT and NODE_EXTRA_CA_CERTS carry a proxy's CA to Deno's npm downloads", async () => {
  const { cert, key } = await selfSignedCertificate();
  const dir = await Deno.makeTempDir({ prefix: "proxy-ca-" });
  await Deno.writeTextFile(`${dir}/ca.pem`, cert);
  let asked = 0;
  // A registry behind TLS signed by a CA of its own, as a TLS-inspecting proxy presents it.
  const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen() {} }, () => {
    asked++;
    return new Response("{}", { status: 404 });
  });
  const install = async (extra: Record<string, string>) => {
    const denoDir = `${dir}/deno-dir-${Object.keys(extra).join("") || "none"}`;
    const registryUrl = `https://localhost:${registry.addr.port}/`;
    const before = asked;
    const [, log] = await deno(["install"], {
      DENO_DIR: denoDir,
      NPM_CONFIG_REGISTRY: registryUrl,
      NODE_EXTRA_CA_CERTS: "",
      ...extra,
    });
    return { reached: asked > before, log };
  };
  try {
    const without = await install({});
    assert.equal(without.reached, false);
    assert.match(without.log, /invalid peer certificate: UnknownIssuer/);
    assert.equal((await install({ DENO_CERT: `${dir}/ca.pem` })).reached, true);
    assert.equal((await install({ NODE_EXTRA_CA_CERTS: `${dir}/ca.pem` })).reached, true);
  } finally {
    await registry.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
