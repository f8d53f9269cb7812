/**
 * `deno task bundle`: builds `dist/squonk2-as-mcp.mcpb`, an MCP Bundle that Claude Desktop installs
 * with one click. The server and every npm package it uses become one JavaScript file
 * (`deno bundle`), so the installed server starts with no network and no Deno cache; the manifest
 * declares the tools and the settings the app asks for; the official `@anthropic-ai/mcpb` CLI
 * validates and packs it.
 *
 * The bundle still needs Deno to run that file. Desktop apps start servers with a minimal PATH, so
 * the manifest does not say `"command": "deno"`: its command is the `deno_path` setting, a file the
 * app asks for at install (no default, since the bundle is for any machine; `--deno PATH` builds
 * one whose setting defaults to PATH).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import denoJson from "../deno.json" with { type: "json" };
import { AsApi } from "../src/api/mod.ts";
import { SETTINGS } from "../src/config.ts";
import { createServer } from "../src/mcp/mod.ts";
import { NoCredentials } from "../src/auth/mod.ts";
import { type Setting as ServerSetting, yesNo } from "../src/settings.ts";

/** Where the server's single file sits inside the bundle. */
export const ENTRY_POINT = "server/squonk2-as-mcp.js";

/** Where the script that turns checkboxes into yes/no sits; deno runs it before the server. */
export const PRELOAD = "server/checkboxes.js";

/**
 * The server's settings the app asks for, by row of the settings table, with the title it shows.
 * The row gives the rest: its variable, help, default and whether it is a secret.
 */
const ASKED = {
  url: "Account Server URL",
  verifySslCert: "Verify TLS certificates",
  token: "Access token",
  keycloakUrl: "Keycloak URL",
  keycloakRealm: "Keycloak realm",
  keycloakClientId: "Keycloak client id",
  keycloakClientSecret: "Keycloak client secret",
  keycloakUser: "Keycloak username",
  keycloakPassword: "Keycloak password",
  readOnly: "Read-only",
  toolsets: "Toolsets",
  fileRoot: "Upload folder",
} as const satisfies Partial<Record<keyof typeof SETTINGS, string>>;

/** One setting the app asks the user for (an MCPB `user_config` entry). */
export interface UserOption {
  type: "string" | "boolean" | "directory" | "file";
  title: string;
  description: string;
  required: boolean;
  default?: string | boolean;
  sensitive?: boolean;
}

/** A yes/no setting: read by the one yes/no rule, or (TLS verification) shown as "yes|no". */
function isCheckbox(setting: ServerSetting): boolean {
  return setting.parse === yesNo || setting.arg === "yes|no";
}

/**
 * The app's field for a row. A checkbox's description is the help up to its first colon, since
 * what follows tells which words to type; every other field has a default (the row's, or empty),
 * because the app leaves `${user_config.x}` as it is for a field that has no value.
 */
function userOption(setting: ServerSetting, title: string): UserOption {
  if (isCheckbox(setting)) {
    const on = yesNo(setting.default ?? "no", setting.env ?? "");
    const description = setting.help.split(": ")[0]!;
    return { type: "boolean", title, description, required: false, default: on };
  }
  const example = setting.example && !setting.help.includes("e.g.")
    ? `, e.g. ${setting.example}`
    : "";
  return {
    type: setting.arg === "DIR" ? "directory" : "string",
    title,
    description: `${setting.help}${example}`,
    required: false,
    default: setting.default ?? "",
    ...(setting.secret ? { sensitive: true } : {}),
  };
}

/** The fields the app asks for, keyed by the row's name in snake_case, each with its variable. */
export function askedSettings(): { key: string; variable: string; option: UserOption }[] {
  return Object.entries(ASKED).map(([name, title]) => {
    const setting: ServerSetting = SETTINGS[name as keyof typeof ASKED];
    if (!setting.env) throw new Error(`The setting ${name} has no environment variable`);
    const key = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    return { key, variable: setting.env, option: userOption(setting, title) };
  });
}

/**
 * The preloaded script. The app substitutes a checkbox as "true" or "false", which the server's
 * one yes/no rule refuses (and `SQUONK2_ASAPI_VERIFY_SSL_CERT`, following the Python client,
 * would read as "no"), so before the server starts these variables are turned into "yes" or "no".
 */
export function checkboxScript(variables: readonly string[]): string {
  return [
    '// The app passes a checkbox as "true" or "false"; the server reads "yes" or "no".',
    `for (const name of ${JSON.stringify(variables)}) {`,
    "  const value = Deno.env.get(name);",
    '  if (value === "true") Deno.env.set(name, "yes");',
    '  if (value === "false") Deno.env.set(name, "no");',
    "}",
    "",
  ].join("\n");
}

/** The deno flags of the bundled server: no config, lock, download or prompt; start's permissions. */
export function runFlags(): string[] {
  const permissions = denoJson.tasks.start.split(" ").filter((word) => word.startsWith("--allow-"));
  return ["run", "--no-config", "--no-lock", "--cached-only", "--no-prompt", ...permissions];
}

/** The Deno executable field: asked for at install, unless the bundle is built with a default. */
function denoOption(deno: string | undefined): UserOption {
  return {
    type: "file",
    title: "Deno executable",
    description: "The deno that runs the server (Deno 2.4 or later), by its full path: desktop " +
      'apps do not search PATH. deno eval "console.log(Deno.execPath())" prints it; often ' +
      "~/.deno/bin/deno, /opt/homebrew/bin/deno or %USERPROFILE%\\.deno\\bin\\deno.exe",
    ...(deno ? { required: false, default: deno } : { required: true }),
  };
}

/**
 * The manifest of the bundle, for the given tools. With `deno`, the Deno executable setting
 * defaults to that path (a bundle for machines that have Deno there); without, the app asks.
 */
export function bundleManifest(
  tools: readonly { name: string; description?: string }[],
  options: { deno?: string } = {},
): Record<string, unknown> {
  const userConfig: Record<string, UserOption> = { deno_path: denoOption(options.deno) };
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1" };
  const checkboxes: string[] = [];
  for (const { key, variable, option } of askedSettings()) {
    userConfig[key] = option;
    env[variable] = `\${user_config.${key}}`;
    if (option.type === "boolean") checkboxes.push(variable);
  }
  const args = [
    ...runFlags(),
    ...(checkboxes.length ? [`--preload=\${__dirname}/${PRELOAD}`] : []),
    `\${__dirname}/${ENTRY_POINT}`,
  ];
  return {
    manifest_version: "0.2",
    name: "squonk2-as-mcp",
    display_name: "Squonk2 Account Server",
    version: denoJson.version,
    description: "Manage a Squonk2 Account Server: Organisations, Units, Products, users, Assets",
    long_description: "One tool per Account Server operation (Organisations, Units, Products, " +
      "users, Assets, Merchants, charges, event streams). Leave the URL empty to try it on a " +
      "built-in demo server with sample data. Needs Deno 2.4 or later (the Deno executable " +
      "setting).",
    author: { name: "The squonk2-as-mcp authors" },
    license: denoJson.license,
    keywords: ["squonk2", "account-server", "informatics-matters"],
    server: {
      type: "binary",
      entry_point: ENTRY_POINT,
      mcp_config: { command: "${user_config.deno_path}", args, env },
    },
    tools: tools.map(({ name, description }) => ({ name, description })),
    tools_generated: false,
    compatibility: { platforms: ["darwin", "win32", "linux"] },
    user_config: userConfig,
  };
}

/** Every tool the server can offer, as its own `tools/list` answers. */
export async function listTools(): Promise<{ name: string; description?: string }[]> {
  const api = new AsApi({ env: () => undefined });
  const server = createServer({ api, tokens: new NoCredentials(), version: denoJson.version });
  const client = new Client({ name: "bundle", version: denoJson.version });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  try {
    return (await client.listTools()).tools;
  } finally {
    await client.close();
    await server.close();
  }
}

/** Runs a deno subcommand, its output going to stderr; throws when it fails. */
async function run(what: string, args: string[], cwd: string): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  await Deno.stderr.write(stdout);
  await Deno.stderr.write(stderr);
  if (code !== 0) throw new Error(`${what} failed (exit code ${code})`);
}

/** Builds the bundle at `target`; returns its path. `deno`: the Deno executable's default. */
export async function buildBundle(target: string, deno?: string): Promise<string> {
  const out = resolve(target);
  const root = fileURLToPath(new URL("..", import.meta.url));
  const stage = await Deno.makeTempDir({ prefix: "squonk2-as-mcp-bundle-" });
  try {
    await run("deno bundle", [
      "bundle",
      "--quiet",
      "--platform=deno",
      `--output=${stage}/${ENTRY_POINT}`,
      `${root}src/main.ts`,
    ], root);
    const manifest = bundleManifest(await listTools(), { deno });
    await Deno.writeTextFile(`${stage}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    const checkboxes = askedSettings().filter((s) => s.option.type === "boolean");
    await Deno.writeTextFile(
      `${stage}/${PRELOAD}`,
      checkboxScript(checkboxes.map((s) => s.variable)),
    );
    await Deno.copyFile(`${root}LICENSE`, `${stage}/LICENSE`);
    await Deno.copyFile(`${root}README.md`, `${stage}/README.md`);
    const mcpb = ["run", "-A", "--quiet", "npm:@anthropic-ai/mcpb"];
    await run("mcpb validate", [...mcpb, "validate", `${stage}/manifest.json`], root);
    await Deno.mkdir(dirname(out), { recursive: true });
    await run("mcpb pack", [...mcpb, "pack", stage, out], root);
    return out;
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "dist/squonk2-as-mcp.mcpb" },
      deno: { type: "string" },
    },
  });
  const out = await buildBundle(values.out!, values.deno);
  const deno = values.deno
    ? `its Deno executable defaults to ${values.deno}`
    : "it asks for the Deno executable (--deno PATH to fill it in)";
  console.error(`Built ${out}: open it with Claude Desktop to install; ${deno}`);
}
