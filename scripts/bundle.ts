/**
 * `deno task bundle`: builds `dist/squonk2-as-mcp.mcpb`, an MCP Bundle that Claude Desktop installs
 * with one click. The server and every npm package it uses become one JavaScript file
 * (`deno bundle`), so the installed server starts with no network and no Deno cache; the manifest
 * declares the tools and the settings the app asks for; the official `@anthropic-ai/mcpb` CLI
 * validates and packs it.
 *
 * The bundle still needs Deno to run that file. Desktop apps start servers with a minimal PATH, so
 * the manifest does not say `"command": "deno"`: its command is the `deno_path` setting, whose
 * default is the absolute path of the Deno that built the bundle (`--deno PATH` to choose another).
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
import type { Setting as ServerSetting } from "../src/settings.ts";

/** Where the server's single file sits inside the bundle. */
export const ENTRY_POINT = "server/squonk2-as-mcp.js";

/** One setting the app asks the user for, and how it reaches the server. */
interface Setting {
  key: string;
  type: "string" | "directory" | "file";
  title: string;
  description: string;
  /** Every setting has a default, so an unset one is substituted by "" rather than left as is. */
  default: string;
  sensitive?: boolean;
  required?: boolean;
  /** The environment variable that carries it... */
  variable?: string;
  /** ...or the flag. */
  flag?: string;
}

/** The help of the server's setting read from `variable`. */
function helpOf(variable: string): string {
  const row = Object.values(SETTINGS as Record<string, ServerSetting>).find((s) =>
    s.env === variable
  );
  if (!row) throw new Error(`No setting reads ${variable}`);
  return row.help;
}

/**
 * What the app asks for. Yes/no settings are text: the app would pass a checkbox as "true" or
 * "false", which the server's one yes/no rule refuses.
 */
const USER_SETTINGS: readonly Setting[] = [
  {
    key: "api_url",
    variable: "SQUONK2_ASAPI_URL",
    type: "string",
    title: "Account Server URL",
    description: `${helpOf("SQUONK2_ASAPI_URL")}. Empty: a built-in demo server with sample data`,
    default: "",
  },
  {
    // The flag, not the variable: the flag refuses a typo where the variable, following the
    // Python client, would turn verification off.
    key: "verify_ssl_cert",
    flag: "--verify-ssl-cert",
    type: "string",
    title: "Verify TLS certificates",
    description: 'Verify the Account Server\'s and Keycloak\'s TLS certificates: "yes" or "no"',
    default: "yes",
  },
  secret("token", "SQUONK2_ASAPI_TOKEN", "Access token"),
  plain("keycloak_url", "SQUONK2_KEYCLOAK_URL", "Keycloak URL"),
  plain("keycloak_realm", "SQUONK2_KEYCLOAK_REALM", "Keycloak realm"),
  plain("keycloak_client_id", "SQUONK2_KEYCLOAK_AS_CLIENT_ID", "Keycloak client id"),
  secret("keycloak_client_secret", "SQUONK2_KEYCLOAK_AS_CLIENT_SECRET", "Keycloak client secret"),
  plain("keycloak_user", "SQUONK2_KEYCLOAK_USER", "Keycloak username"),
  secret("keycloak_password", "SQUONK2_KEYCLOAK_USER_PASSWORD", "Keycloak password"),
  {
    key: "read_only",
    variable: "SQUONK2_MCP_READ_ONLY",
    type: "string",
    title: "Read-only",
    description: '"yes" offers only the tools that read, so nothing can be changed; or "no"',
    default: "no",
  },
  {
    ...plain("toolsets", "SQUONK2_MCP_TOOLSETS", "Toolsets"),
    description: `${helpOf("SQUONK2_MCP_TOOLSETS")}, e.g. organisations,units,products,server`,
    default: "all",
  },
  {
    ...plain("file_root", "SQUONK2_MCP_FILE_ROOT", "Upload folder"),
    type: "directory",
  },
];

function plain(key: string, variable: string, title: string): Setting {
  return { key, variable, type: "string", title, description: helpOf(variable), default: "" };
}

function secret(key: string, variable: string, title: string): Setting {
  return { ...plain(key, variable, title), sensitive: true };
}

/** The deno flags of the bundled server: no config, lock, download or prompt; start's permissions. */
export function runFlags(): string[] {
  const permissions = denoJson.tasks.start.split(" ").filter((word) => word.startsWith("--allow-"));
  return ["run", "--no-config", "--no-lock", "--cached-only", "--no-prompt", ...permissions];
}

/** The manifest of the bundle, for the given deno and tools. */
export function bundleManifest(
  denoPath: string,
  tools: readonly { name: string; description?: string }[],
): Record<string, unknown> {
  const userConfig: Record<string, unknown> = {
    deno_path: {
      type: "file",
      title: "Deno executable",
      description: "The deno that runs the server (default: the one that built this bundle)",
      required: false,
      default: denoPath,
    },
  };
  const args = [...runFlags(), `\${__dirname}/${ENTRY_POINT}`];
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1" };
  for (const { key, variable, flag, ...option } of USER_SETTINGS) {
    userConfig[key] = { ...option, required: option.required ?? false };
    if (flag) args.push(flag, `\${user_config.${key}}`);
    if (variable) env[variable] = `\${user_config.${key}}`;
  }
  return {
    manifest_version: "0.2",
    name: "squonk2-as-mcp",
    display_name: "Squonk2 Account Server",
    version: denoJson.version,
    description: "Manage a Squonk2 Account Server: Organisations, Units, Products, users, Assets",
    long_description: "One tool per Account Server operation (Organisations, Units, Products, " +
      "users, Assets, Merchants, charges, event streams). Leave the URL empty to try it on a " +
      "built-in demo server with sample data. Needs Deno 2 (the Deno executable setting).",
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

/** Builds the bundle at `out`; returns its path. */
export async function buildBundle(target: string, denoPath: string): Promise<string> {
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
    const manifest = bundleManifest(denoPath, await listTools());
    await Deno.writeTextFile(`${stage}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
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
      deno: { type: "string", default: Deno.execPath() },
    },
  });
  const out = await buildBundle(values.out!, values.deno!);
  console.error(`Built ${out}: open it with Claude Desktop to install (runs ${values.deno})`);
}
