/**
 * The MCP server's configuration, from command-line flags and environment variables, checked
 * once at start: anything malformed, unknown or half-given is refused with one clear sentence.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkApiUrl, debugRequestsFrom, verifySslCertFrom } from "./api/mod.ts";
import type { KeycloakOptions } from "./mcp/credentials.ts";
import { checkFileRoot } from "./mcp/files.ts";
import { isLoopback } from "./mcp/http.ts";
import { SelectionError, selectTools, type ToolSelection } from "./mcp/selection.ts";

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
  SQUONK2_MCP_TRANSPORT: '"stdio" (default) or "http"',
  SQUONK2_MCP_HOST: "HTTP: address to listen on (default 127.0.0.1)",
  SQUONK2_MCP_PORT: "HTTP: port to listen on (default 3000)",
  SQUONK2_MCP_ALLOWED_ORIGINS: "HTTP: comma-separated Origin values allowed to call (default none)",
  SQUONK2_MCP_ALLOWED_HOSTS:
    "HTTP: comma-separated Host values accepted (default the loopback names)",
  SQUONK2_MCP_ALLOW_SERVER_CREDENTIALS:
    '"yes" serves HTTP requests without a bearer token with the server\'s own credentials',
  SQUONK2_MCP_TOOLSETS: 'Comma-separated toolsets to offer, or "all" (default all)',
  SQUONK2_MCP_TOOLS: "Comma-separated single tools to offer as well",
  SQUONK2_MCP_EXCLUDE_TOOLS: "Comma-separated tools not to offer",
  SQUONK2_MCP_READ_ONLY: '"yes" offers only tools that read (wins over everything else)',
  SQUONK2_MCP_FILE_ROOT:
    "The only folder content_file uploads may read from (default: none, refused)",
  SQUONK2_MCP_MAX_RESULT_BYTES:
    "Tool results larger than this many bytes are cut, saying so (default 65536)",
};

/** The command-line options, with what they mean. */
export const OPTIONS: Readonly<Record<string, string>> = {
  "--url URL": "Account Server API URL (overrides SQUONK2_ASAPI_URL)",
  "--verify-ssl-cert yes|no": "Verify TLS certificates (overrides SQUONK2_ASAPI_VERIFY_SSL_CERT)",
  "--demo": "Serve an embedded stub Account Server with sample data and a demo token",
  "--transport stdio|http": "How MCP is served (overrides SQUONK2_MCP_TRANSPORT)",
  "--host H, --port N": "HTTP: where to listen (SQUONK2_MCP_HOST, SQUONK2_MCP_PORT)",
  "--allowed-origins A,B": "HTTP: Origin values allowed (SQUONK2_MCP_ALLOWED_ORIGINS)",
  "--allowed-hosts A,B": "HTTP: Host values accepted (SQUONK2_MCP_ALLOWED_HOSTS)",
  "--allow-server-credentials": "HTTP: requests without a token use the server's credentials",
  "--toolsets A,B": "Toolsets to offer, or all (SQUONK2_MCP_TOOLSETS)",
  "--tools A,B": "Single tools to offer as well (SQUONK2_MCP_TOOLS)",
  "--exclude-tools A,B": "Tools not to offer (SQUONK2_MCP_EXCLUDE_TOOLS)",
  "--read-only": "Offer only tools that read (SQUONK2_MCP_READ_ONLY=yes)",
  "--file-root DIR": "The only folder content_file may read from (SQUONK2_MCP_FILE_ROOT)",
  "--max-result-bytes N": "Cut tool results above N bytes (SQUONK2_MCP_MAX_RESULT_BYTES)",
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
  transport: "stdio" | "http";
  host: string;
  port: number;
  allowedOrigins: string[];
  allowedHosts?: string[];
  allowServerCredentials: boolean;
  /** The names of the tools to offer, checked. */
  tools: string[];
  readOnly: boolean;
  /** The real path of the upload folder. */
  fileRoot?: string;
  maxResultBytes: number;
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
        transport: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        "allowed-origins": { type: "string" },
        "allowed-hosts": { type: "string" },
        "allow-server-credentials": { type: "boolean" },
        toolsets: { type: "string" },
        tools: { type: "string" },
        "exclude-tools": { type: "string" },
        "read-only": { type: "boolean" },
        "file-root": { type: "string" },
        "max-result-bytes": { type: "string" },
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
    : verifySslCertFrom(get("SQUONK2_ASAPI_VERIFY_SSL_CERT"));
  const debugRequests = debugRequestsFrom(get("SQUONK2_API_DEBUG_REQUESTS"));

  const credentials = loadCredentials(get, verifySslCert);
  const demo = Boolean(values.demo) || url === undefined;
  if (!values.demo && url === undefined && credentials.kind !== "none") {
    throw new ConfigError(
      "Account Server credentials are set but SQUONK2_ASAPI_URL (or --url) is not",
    );
  }
  const flag = (name: string) => values[name] as string | undefined;
  const list = (name: string, variable: string) => {
    const raw = flag(name) ?? get(variable);
    return raw === undefined ? undefined : raw.split(",").map((v) => v.trim()).filter(Boolean);
  };
  const switchOn = (name: string, variable: string) =>
    values[name] === true || yesNoOff(variable, get(variable));

  const transport = flag("transport") ?? get("SQUONK2_MCP_TRANSPORT") ?? "stdio";
  if (transport !== "stdio" && transport !== "http") {
    throw new ConfigError(`The transport must be "stdio" or "http", not "${transport}"`);
  }
  const host = flag("host") ?? get("SQUONK2_MCP_HOST") ?? "127.0.0.1";
  const rawPort = flag("port") ?? get("SQUONK2_MCP_PORT") ?? "3000";
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65535) {
    throw new ConfigError(`The port must be an integer from 0 to 65535, not "${rawPort}"`);
  }
  const allowedHosts = list("allowed-hosts", "SQUONK2_MCP_ALLOWED_HOSTS");
  if (transport === "http" && !isLoopback(host) && !allowedHosts?.length) {
    throw new ConfigError(
      `Listening on "${host}" needs --allowed-hosts (or SQUONK2_MCP_ALLOWED_HOSTS): the ` +
        "Host names clients use, so DNS rebinding cannot reach the server",
    );
  }

  const selection: ToolSelection = {
    toolsets: list("toolsets", "SQUONK2_MCP_TOOLSETS"),
    tools: list("tools", "SQUONK2_MCP_TOOLS"),
    excludeTools: list("exclude-tools", "SQUONK2_MCP_EXCLUDE_TOOLS"),
    readOnly: switchOn("read-only", "SQUONK2_MCP_READ_ONLY"),
  };
  let tools: string[];
  try {
    tools = selectTools(selection);
  } catch (error) {
    if (error instanceof SelectionError) throw new ConfigError(error.message);
    throw error;
  }
  if (!tools.length) throw new ConfigError("The tool selection leaves no tool to offer");

  const rawRoot = flag("file-root") ?? get("SQUONK2_MCP_FILE_ROOT");
  let fileRoot: string | undefined;
  if (rawRoot !== undefined) {
    try {
      fileRoot = checkFileRoot(rawRoot);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
  }

  const rawMax = flag("max-result-bytes") ?? get("SQUONK2_MCP_MAX_RESULT_BYTES") ?? "65536";
  const maxResultBytes = Number(rawMax);
  if (!/^\d+$/.test(rawMax) || maxResultBytes < 1024) {
    throw new ConfigError(
      `The result limit must be a whole number of bytes, at least 1024, not "${rawMax}"`,
    );
  }

  return {
    demo,
    demoReason: !values.demo && demo ? "no SQUONK2_ASAPI_URL or --url is set" : undefined,
    url,
    verifySslCert,
    debugRequests,
    credentials,
    transport,
    host,
    port,
    allowedOrigins: list("allowed-origins", "SQUONK2_MCP_ALLOWED_ORIGINS") ?? [],
    allowedHosts,
    allowServerCredentials: switchOn(
      "allow-server-credentials",
      "SQUONK2_MCP_ALLOW_SERVER_CREDENTIALS",
    ),
    tools,
    readOnly: Boolean(selection.readOnly),
    fileRoot,
    maxResultBytes,
    help: Boolean(values.help),
    version: Boolean(values.version),
  };
}

/** A yes/no variable that is off when unset. */
function yesNoOff(name: string, value: string | undefined): boolean {
  return value === undefined ? false : yesNo(name, value);
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
    Object.entries(table).map(([k, v]) => `  ${k.padEnd(38)} ${v}`).join("\n");
  return `squonk2-as-mcp ${version}: an MCP server for the Squonk2 Account Server

Usage: deno task start [options]     (MCP over stdio, or HTTP with --transport http)
       deno task demo [options]      (with an embedded stub Account Server)

Options:
${rows(OPTIONS)}

Environment:
${rows(ENVIRONMENT)}

With no URL set, the server runs against an embedded stub Account Server with sample data.`;
}
