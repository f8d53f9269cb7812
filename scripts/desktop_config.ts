/**
 * `deno task desktop-config`: prints the Claude Desktop entry that runs this checkout, for this
 * machine: the absolute path of deno (desktop apps start servers with a minimal PATH, so plain
 * `deno` is not found when it lives in a user prefix), the absolute path of the project, and the
 * server's variables set in this shell, with secrets left as placeholders. The JSON goes to
 * stdout; where to put it goes to stderr.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { ENV_NAMES, SETTINGS } from "../src/config.ts";
import type { Setting } from "../src/settings.ts";

/** The server's variables whose values are never printed: the table's secrets. */
export const SECRET_VARIABLES: readonly string[] = Object.values(
  SETTINGS as Record<string, Setting>,
).flatMap((s) => s.secret && s.env ? [s.env] : []);

/** Deno's own variables worth carrying over: its cache, CA certificates and proxy. */
const DENO_VARIABLES = [
  "DENO_DIR",
  "DENO_CERT",
  "NODE_EXTRA_CA_CERTS",
  "DENO_TLS_CA_STORE",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
];

/** The placeholder printed instead of a secret's value. */
export function placeholder(name: string): string {
  return `<your ${name}>`;
}

/** A Claude Desktop `mcpServers` entry. */
export interface DesktopEntry {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The entry that runs `deno task start` of the project configured by `denoJson`. */
export function desktopEntry(
  deno: string,
  denoJson: string,
  env: (name: string) => string | undefined,
): DesktopEntry {
  const chosen: Record<string, string> = {};
  for (const name of [...ENV_NAMES, ...DENO_VARIABLES]) {
    const value = env(name);
    if (!value) continue;
    // A secret, or a proxy URL with a password in it, is left for the user to fill in.
    const secret = SECRET_VARIABLES.includes(name) || /:\/\/[^/@\s]+@/.test(value);
    chosen[name] = secret ? placeholder(name) : value;
  }
  return { command: deno, args: ["task", "-q", "--config", denoJson, "start"], env: chosen };
}

const WHERE = `Add the entry above to "mcpServers" in claude_desktop_config.json:
  macOS:   ~/Library/Application Support/Claude/claude_desktop_config.json
  Windows: %APPDATA%\\Claude\\claude_desktop_config.json
Replace any <your ...> placeholder with its value, or delete that line and keep the secret in
the project's .env file, which deno task start reads. Run "deno install" in the project once, so
the first start needs no network. Then restart Claude Desktop.`;

if (import.meta.main) {
  const denoJson = fileURLToPath(new URL("../deno.json", import.meta.url));
  const entry = desktopEntry(Deno.execPath(), denoJson, (name) => Deno.env.get(name));
  console.log(JSON.stringify({ mcpServers: { "squonk2-account-server": entry } }, null, 2));
  console.error(`\n${WHERE}`);
  if (!entry.env.SQUONK2_ASAPI_URL) {
    console.error("No SQUONK2_ASAPI_URL in this shell: without one in .env, it serves the demo.");
  }
}
