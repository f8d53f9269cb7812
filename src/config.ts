/**
 * The MCP server's configuration, from command-line flags and environment variables, checked
 * once at start: anything malformed, unknown or half-given is refused with one clear sentence.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkApiUrl } from "./api/mod.ts";
import type { KeycloakOptions } from "./mcp/credentials.ts";

/** Every environment variable the server reads, with what it means (for --help and the docs). */
export const ENVIRONMENT: Readonly<Record<string, string>> = {
  SQUONK2_ASAPI_URL: "Account Server API URL, e.g. https://example.com/account-server-api",
  SQUONK2_ASAPI_VERIFY_SSL_CERT: 'Verify the server\'s TLS certificate: "yes" (default) or "no"',
  SQUONK2_API_DEBUG_REQUESTS: '"yes" logs each request (method, URL, status, time) to stderr',
  SQUONK2_ASAPI_TOKEN: "A static Account Server access token",
  SQUONK2_KEYCLOAK_URL: "Keycloak base URL, e.g. https://example.com/auth",
  SQUONK2_KEYCLOAK_REALM: "Keycloak realm",
  SQUONK2_KEYCLOAK_AS_CLIENT_ID: "Keycloak client id of the Account Server",
  SQUONK2_KEYCLOAK_AS_CLIENT_SECRET: "Keycloak client secret (needed without a user)",
  SQUONK2_KEYCLOAK_USER: "Keycloak username (password grant)",
  SQUONK2_KEYCLOAK_USER_PASSWORD: "Keycloak password of that user",
};

/** The command-line options, with what they mean. */
export const OPTIONS: Readonly<Record<string, string>> = {
  "--url URL": "Account Server API URL (overrides SQUONK2_ASAPI_URL)",
  "--verify-ssl-cert yes|no": "Verify TLS certificates (overrides SQUONK2_ASAPI_VERIFY_SSL_CERT)",
  "--demo": "Serve an embedded stub Account Server with sample data and a demo token",
  "--version": "Print the version and exit",
  "--help": "Print this help and exit",
};

/** How tokens are obtained. */
export type CredentialsConfig =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | ({ kind: "keycloak" } & KeycloakOptions);

/** The checked configuration. */
export interface Config {
  /** Serve the embedded stub instead of a real Account Server. */
  demo: boolean;
  /** Why demo mode is on, when the operator did not ask for it. */
  demoReason?: string;
  url?: string;
  verifySslCert: boolean;
  debugRequests: boolean;
  credentials: CredentialsConfig;
  help: boolean;
  version: boolean;
}

/** A configuration mistake; its message is the one line printed. */
export class ConfigError extends Error {}

const KEYCLOAK_REQUIRED = [
  "SQUONK2_KEYCLOAK_URL",
  "SQUONK2_KEYCLOAK_REALM",
  "SQUONK2_KEYCLOAK_AS_CLIENT_ID",
] as const;

function yesNo(name: string, value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim().toLowerCase();
  if (v === "yes") return true;
  if (v === "no") return false;
  throw new ConfigError(`${name} must be "yes" or "no", not "${value}"`);
}

/** Reads and checks flags and environment; throws ConfigError. */
export function loadConfig(
  args: string[],
  env: (name: string) => string | undefined,
): Config {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string" },
        "verify-ssl-cert": { type: "string" },
        demo: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (see --help)`);
  }
  const get = (name: string) => {
    const value = env(name)?.trim();
    return value ? value : undefined;
  };

  const rawUrl = (values.url as string | undefined) ?? get("SQUONK2_ASAPI_URL");
  let url: string | undefined;
  if (rawUrl !== undefined) {
    const checked = checkApiUrl(rawUrl);
    if ("error" in checked) throw new ConfigError(`Invalid Account Server URL: ${checked.error}`);
    url = checked.url;
  }
  const verifyFlag = values["verify-ssl-cert"] as string | undefined;
  const verifySslCert = verifyFlag !== undefined
    ? yesNo("--verify-ssl-cert", verifyFlag)
    // The Python client's rule: anything but "yes" turns verification off.
    : (get("SQUONK2_ASAPI_VERIFY_SSL_CERT") ?? "yes").toLowerCase() === "yes";
  const debugRequests = get("SQUONK2_API_DEBUG_REQUESTS")?.toLowerCase() === "yes";

  const credentials = loadCredentials(get, verifySslCert);
  const demo = Boolean(values.demo) || url === undefined;
  if (!values.demo && url === undefined && credentials.kind !== "none") {
    throw new ConfigError(
      "Account Server credentials are set but SQUONK2_ASAPI_URL (or --url) is not",
    );
  }
  return {
    demo,
    demoReason: !values.demo && demo ? "no SQUONK2_ASAPI_URL or --url is set" : undefined,
    url,
    verifySslCert,
    debugRequests,
    credentials,
    help: Boolean(values.help),
    version: Boolean(values.version),
  };
}

function loadCredentials(
  get: (name: string) => string | undefined,
  verifyTls: boolean,
): CredentialsConfig {
  const token = get("SQUONK2_ASAPI_TOKEN");
  const keycloakNames = Object.keys(ENVIRONMENT).filter((n) => n.startsWith("SQUONK2_KEYCLOAK_"));
  const keycloakSet = keycloakNames.filter((n) => get(n) !== undefined);
  if (token && keycloakSet.length) {
    throw new ConfigError(
      `Set SQUONK2_ASAPI_TOKEN or the Keycloak variables, not both (${keycloakSet.join(", ")})`,
    );
  }
  if (token) return { kind: "token", token };
  if (!keycloakSet.length) return { kind: "none" };

  const missing = KEYCLOAK_REQUIRED.filter((n) => get(n) === undefined);
  if (missing.length) {
    throw new ConfigError(`Keycloak is half configured: ${missing.join(", ")} must be set too`);
  }
  const keycloakUrl = get("SQUONK2_KEYCLOAK_URL")!;
  const checked = checkApiUrl(keycloakUrl);
  if ("error" in checked) throw new ConfigError(`Invalid SQUONK2_KEYCLOAK_URL: ${checked.error}`);
  const username = get("SQUONK2_KEYCLOAK_USER");
  const password = get("SQUONK2_KEYCLOAK_USER_PASSWORD");
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(
      "Set both SQUONK2_KEYCLOAK_USER and SQUONK2_KEYCLOAK_USER_PASSWORD, or neither",
    );
  }
  const clientSecret = get("SQUONK2_KEYCLOAK_AS_CLIENT_SECRET");
  if (!username && !clientSecret) {
    throw new ConfigError(
      "Without SQUONK2_KEYCLOAK_USER, the client-credentials grant needs " +
        "SQUONK2_KEYCLOAK_AS_CLIENT_SECRET",
    );
  }
  return {
    kind: "keycloak",
    url: checked.url,
    realm: get("SQUONK2_KEYCLOAK_REALM")!,
    clientId: get("SQUONK2_KEYCLOAK_AS_CLIENT_ID")!,
    clientSecret,
    username,
    password,
    verifyTls,
  };
}

/** The text of --help. */
export function helpText(version: string): string {
  const rows = (table: Readonly<Record<string, string>>) =>
    Object.entries(table).map(([k, v]) => `  ${k.padEnd(36)} ${v}`).join("\n");
  return `squonk2-as-mcp ${version}: an MCP server for the Squonk2 Account Server

Usage: deno task start [options]     (MCP over stdio)
       deno task demo                (with an embedded stub Account Server)

Options:
${rows(OPTIONS)}

Environment:
${rows(ENVIRONMENT)}

With no URL set, the server runs against an embedded stub Account Server with sample data.`;
}
