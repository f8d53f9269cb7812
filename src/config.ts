/**
 * The MCP server's configuration: the table of settings (see `settings.ts`) read from flags and
 * environment, then checked as a whole. Anything malformed, unknown or half-given is refused
 * with one clear sentence, and never shows a credential or a URL's query.
 *
 * @module
 */
import { checkApiUrl } from "./api/mod.ts";
import type { KeycloakOptions } from "./auth/mod.ts";
import { checkFileRoot } from "./mcp/files.ts";
import { isLoopback } from "./mcp/http.ts";
import { SelectionError, selectTools } from "./mcp/selection.ts";
import {
  choice,
  ConfigError,
  helpLines,
  list,
  type Parse,
  permittedEnv,
  pythonYes,
  readSettings,
  type Setting,
  text,
  wholeNumber,
  yesNo,
} from "./settings.ts";

export { ConfigError };

/** An http(s) URL without credentials, query or fragment, trailing slashes dropped. */
function httpUrl(what: string): Parse<string> {
  return (value, source) => {
    const checked = checkApiUrl(value.trim());
    if ("error" in checked) throw new ConfigError(`Invalid ${what} (${source}): ${checked.error}`);
    return checked.url;
  };
}

const folder: Parse<string> = (value, source) => {
  try {
    return checkFileRoot(value.trim(), source);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
};

const on: Parse<boolean> = yesNo;

/** Every setting the server reads. The order is the order of `--help` and the README. */
export const SETTINGS = {
  url: {
    flag: "url",
    env: "SQUONK2_ASAPI_URL",
    arg: "URL",
    parse: httpUrl("Account Server URL"),
    help: "Account Server API URL, e.g. https://example.com/account-server-api",
    example: "https://example.com/account-server-api",
  },
  verifySslCert: {
    flag: "verify-ssl-cert",
    env: "SQUONK2_ASAPI_VERIFY_SSL_CERT",
    arg: "yes|no",
    parse: pythonYes,
    default: "yes",
    help: 'Verify the Account Server\'s TLS certificate: "yes"; "no" or any other value ' +
      "(with a warning) turns it off",
  },
  debugRequests: {
    env: "SQUONK2_API_DEBUG_REQUESTS",
    parse: yesNo,
    default: "no",
    help: "Log each request (method, URL, status, time) to stderr",
  },
  token: {
    env: "SQUONK2_ASAPI_TOKEN",
    parse: text,
    secret: true,
    help: "A static Account Server access token",
  },
  keycloakUrl: {
    env: "SQUONK2_KEYCLOAK_URL",
    parse: httpUrl("Keycloak URL"),
    help: "Keycloak base URL, e.g. https://example.com/auth",
    example: "https://example.com/auth",
  },
  keycloakRealm: {
    env: "SQUONK2_KEYCLOAK_REALM",
    parse: text,
    help: "Keycloak realm",
    example: "squonk2",
  },
  keycloakClientId: {
    env: "SQUONK2_KEYCLOAK_AS_CLIENT_ID",
    parse: text,
    help: "Keycloak client id of the Account Server",
    example: "account-server-api",
  },
  keycloakClientSecret: {
    env: "SQUONK2_KEYCLOAK_AS_CLIENT_SECRET",
    parse: text,
    secret: true,
    help: "Keycloak client secret (needed without a user)",
  },
  keycloakUser: {
    env: "SQUONK2_KEYCLOAK_USER",
    parse: text,
    help: "Keycloak username (password grant)",
  },
  keycloakPassword: {
    env: "SQUONK2_KEYCLOAK_USER_PASSWORD",
    parse: text,
    secret: true,
    help: "Keycloak password of that user",
  },
  demo: {
    flag: "demo",
    parse: on,
    help: "Serve an embedded stub Account Server with sample data and a demo token",
  },
  transport: {
    flag: "transport",
    env: "SQUONK2_MCP_TRANSPORT",
    arg: "stdio|http",
    parse: choice(["stdio", "http"]),
    default: "stdio",
    help: 'How MCP is served: "stdio" or "http" (Streamable HTTP at /mcp)',
  },
  host: {
    flag: "host",
    env: "SQUONK2_MCP_HOST",
    arg: "HOST",
    parse: text,
    default: "127.0.0.1",
    help: "HTTP: address to listen on",
  },
  port: {
    flag: "port",
    env: "SQUONK2_MCP_PORT",
    arg: "N",
    parse: wholeNumber("a port number", 0, 65535),
    default: "3000",
    help: "HTTP: port to listen on",
  },
  allowedOrigins: {
    flag: "allowed-origins",
    env: "SQUONK2_MCP_ALLOWED_ORIGINS",
    arg: "A,B",
    parse: list,
    help: "HTTP: comma-separated Origin values allowed to call (default none)",
  },
  allowedHosts: {
    flag: "allowed-hosts",
    env: "SQUONK2_MCP_ALLOWED_HOSTS",
    arg: "A,B",
    parse: list,
    help: "HTTP: comma-separated Host values accepted (default the loopback names)",
  },
  allowServerCredentials: {
    flag: "allow-server-credentials",
    env: "SQUONK2_MCP_ALLOW_SERVER_CREDENTIALS",
    parse: on,
    default: "no",
    help: "HTTP: requests without a bearer token use the server's own credentials and share " +
      "sessions (see the README)",
  },
  stateless: {
    flag: "stateless",
    env: "SQUONK2_MCP_STATELESS",
    parse: on,
    default: "no",
    help: "HTTP: keep nothing between requests, for many instances behind a load balancer " +
      "(no delete confirmations: see the README)",
  },
  publicUrl: {
    flag: "public-url",
    env: "SQUONK2_MCP_PUBLIC_URL",
    arg: "URL",
    parse: httpUrl("public URL"),
    help: "HTTP: the URL clients use for /mcp, behind a proxy (default: as requested)",
    example: "https://mcp.example.com/mcp",
  },
  oauthScopes: {
    flag: "oauth-scopes",
    env: "SQUONK2_MCP_OAUTH_SCOPES",
    arg: "A,B",
    parse: list,
    help: "HTTP with Keycloak: scopes clients ask for when they sign in (see the README)",
    example: "account-server-audience",
  },
  toolsets: {
    flag: "toolsets",
    env: "SQUONK2_MCP_TOOLSETS",
    arg: "A,B",
    parse: list,
    help:
      'Comma-separated toolsets to offer, or "all" (default all, or none when --tools is given)',
    example: "organisations,units,products,users,server",
  },
  tools: {
    flag: "tools",
    env: "SQUONK2_MCP_TOOLS",
    arg: "A,B",
    parse: list,
    help: "Comma-separated single tools to offer: only these, or these as well as --toolsets",
  },
  excludeTools: {
    flag: "exclude-tools",
    env: "SQUONK2_MCP_EXCLUDE_TOOLS",
    arg: "A,B",
    parse: list,
    help: "Comma-separated tools not to offer",
  },
  readOnly: {
    flag: "read-only",
    env: "SQUONK2_MCP_READ_ONLY",
    parse: on,
    default: "no",
    help: "Offer only tools that read (wins over everything else)",
    example: "yes",
  },
  codeMode: {
    flag: "code-mode",
    env: "SQUONK2_MCP_CODE_MODE",
    parse: on,
    default: "no",
    help: "Offer run_program: a short program calls the offered tools in a sandbox",
    example: "yes",
  },
  fileRoot: {
    flag: "file-root",
    env: "SQUONK2_MCP_FILE_ROOT",
    arg: "DIR",
    parse: folder,
    help: "The only folder content_file uploads may read from (default: none, refused)",
    example: "/srv/squonk2-uploads",
  },
  maxResultBytes: {
    flag: "max-result-bytes",
    env: "SQUONK2_MCP_MAX_RESULT_BYTES",
    arg: "N",
    parse: wholeNumber("a whole number of bytes", 1024, Number.MAX_SAFE_INTEGER),
    default: "65536",
    help: "Tool results larger than this many bytes are cut, saying so",
  },
  maxUploadBytes: {
    flag: "max-upload-bytes",
    env: "SQUONK2_MCP_MAX_UPLOAD_BYTES",
    arg: "N",
    parse: wholeNumber("a whole number of bytes", 1, Number.MAX_SAFE_INTEGER),
    default: "1048576",
    help: "Largest file content_file may upload, in bytes (like content_string's limit)",
  },
  maxBodyBytes: {
    flag: "max-body-bytes",
    env: "SQUONK2_MCP_MAX_BODY_BYTES",
    arg: "N",
    parse: wholeNumber("a whole number of bytes", 1024, Number.MAX_SAFE_INTEGER),
    default: "4194304",
    help: "HTTP: request bodies larger than this get 413, before they are read",
  },
  maxSessions: {
    flag: "max-sessions",
    env: "SQUONK2_MCP_MAX_SESSIONS",
    arg: "N",
    parse: wholeNumber("a whole number of sessions", 1, Number.MAX_SAFE_INTEGER),
    default: "1000",
    help: "HTTP: most sessions open at once (at the cap the least recently used idle one closes)",
  },
  maxConnections: {
    flag: "max-connections",
    env: "SQUONK2_MCP_MAX_CONNECTIONS",
    arg: "N",
    parse: wholeNumber("a whole number of connections", 1, Number.MAX_SAFE_INTEGER),
    default: "2048",
    help: "HTTP: most client connections at once (each takes 3 file descriptors: keep it " +
      "under a third of ulimit -n); past it the slowest sender gives way",
  },
  sessionIdleS: {
    flag: "session-idle-s",
    env: "SQUONK2_MCP_SESSION_IDLE_S",
    arg: "N",
    parse: wholeNumber("a whole number of seconds", 1, Number.MAX_SAFE_INTEGER),
    default: "1800",
    help: "HTTP: a session unused for this many seconds is closed and its memory released",
  },
  version: { flag: "version", short: "V", parse: on, help: "Print the version and exit" },
  help: { flag: "help", short: "h", parse: on, help: "Print this help and exit" },
} as const satisfies Record<string, Setting>;

/** The environment variables the settings read, in table order. */
export const ENV_NAMES: readonly string[] = Object.values(SETTINGS as Record<string, Setting>)
  .flatMap((s) => s.env ? [s.env] : []);

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
  /** HTTP without sessions: a server and transport per request. */
  stateless: boolean;
  /** The URL clients use for `/mcp`, named by the OAuth metadata. */
  publicUrl?: string;
  /** Scopes clients ask for when they sign in, named by the OAuth metadata. */
  oauthScopes: string[];
  /** The names of the tools to offer, checked. */
  tools: string[];
  readOnly: boolean;
  /** The real path of the upload folder. */
  fileRoot?: string;
  maxResultBytes: number;
  maxUploadBytes: number;
  /**
   * HTTP: the largest request body, the session cap, the connection cap and how long an unused
   * session lives.
   */
  maxBodyBytes: number;
  maxSessions: number;
  maxConnections: number;
  sessionIdleS: number;
  /**
   * HTTP with Keycloak configured: callers' tokens are verified against this realm, always with
   * TLS verified (`verifySslCert` is the Account Server's alone).
   */
  verifyCallers?: { url: string; realm: string; clientId: string };
  help: boolean;
  version: boolean;
  /** Lines to print at start: settings that work but probably do not mean what they say. */
  warnings: string[];
}

/** The values read from the table, each typed by its row's parser. */
type Values = {
  -readonly [K in keyof typeof SETTINGS]?: ReturnType<(typeof SETTINGS)[K]["parse"]>;
};

/** Reads and checks flags and environment; throws ConfigError. */
export function loadConfig(args: string[], env: (name: string) => string | undefined): Config {
  const v = readSettings(SETTINGS, args, env) as Values;
  const tls = v.verifySslCert ?? { verify: true };
  const credentials = loadCredentials(v, tls.verify, v.transport === "http");
  const demo = v.demo === true || v.url === undefined;
  if (!v.demo && v.url === undefined && credentials.kind !== "none") {
    throw new ConfigError(
      "Account Server credentials are set but SQUONK2_ASAPI_URL (or --url) is not",
    );
  }
  const transport = v.transport ?? "stdio";
  const host = v.host ?? "127.0.0.1";
  const verifyCallers = callerRealm(v, transport);
  if (transport === "http" && !isLoopback(host) && !v.allowedHosts?.length) {
    throw new ConfigError(
      `Listening on "${host}" needs --allowed-hosts (or SQUONK2_MCP_ALLOWED_HOSTS): the ` +
        "Host names clients use, so DNS rebinding cannot reach the server",
    );
  }
  return {
    demo,
    demoReason: !v.demo && demo ? "no SQUONK2_ASAPI_URL or --url is set" : undefined,
    url: v.url,
    verifySslCert: tls.verify,
    debugRequests: v.debugRequests ?? false,
    credentials,
    transport,
    host,
    port: v.port ?? 3000,
    allowedOrigins: v.allowedOrigins ?? [],
    allowedHosts: v.allowedHosts,
    allowServerCredentials: v.allowServerCredentials ?? false,
    stateless: v.stateless ?? false,
    publicUrl: v.publicUrl,
    oauthScopes: v.oauthScopes ?? [],
    tools: loadTools(v),
    readOnly: v.readOnly ?? false,
    fileRoot: v.fileRoot,
    maxResultBytes: v.maxResultBytes ?? 65536,
    maxUploadBytes: v.maxUploadBytes ?? 1024 * 1024,
    maxBodyBytes: v.maxBodyBytes ?? 4 * 1024 * 1024,
    maxSessions: v.maxSessions ?? 1000,
    maxConnections: v.maxConnections ?? 2048,
    sessionIdleS: v.sessionIdleS ?? 1800,
    verifyCallers,
    help: v.help ?? false,
    version: v.version ?? false,
    warnings: [
      ...(tls.warning ? [tls.warning] : []),
      ...(demo ? [] : exposureWarnings(v, host, verifyCallers)),
    ],
  };
}

/** Where callers' tokens are verified: HTTP with Keycloak's URL, realm and client id set. */
function callerRealm(v: Values, transport: string): Config["verifyCallers"] {
  if (transport !== "http" || !v.keycloakUrl || !v.keycloakRealm || !v.keycloakClientId) {
    if (v.oauthScopes?.length) {
      throw new ConfigError(
        "SQUONK2_MCP_OAUTH_SCOPES (or --oauth-scopes) is set, but callers sign in only over " +
          "HTTP with SQUONK2_KEYCLOAK_URL, SQUONK2_KEYCLOAK_REALM and " +
          "SQUONK2_KEYCLOAK_AS_CLIENT_ID set",
      );
    }
    return undefined;
  }
  return { url: v.keycloakUrl, realm: v.keycloakRealm, clientId: v.keycloakClientId };
}

/**
 * Settings that let callers in on someone else's word: Keycloak's keys fetched over plain http
 * from another machine, and sign-in metadata that names the endpoint `http://<Host>` where it is
 * probably reached through an https proxy (no public URL, but other hosts allowed).
 */
function exposureWarnings(
  v: Values,
  host: string,
  verifyCallers: Config["verifyCallers"],
): string[] {
  if (!verifyCallers) return [];
  const warnings: string[] = [];
  const keycloak = new URL(verifyCallers.url);
  if (keycloak.protocol === "http:" && !isLoopback(keycloak.hostname)) {
    warnings.push(
      `callers' tokens are verified with keys fetched from Keycloak over plain http ` +
        `("${keycloak.host}"): anyone on the way can hand out their own keys and be let in; ` +
        "use https",
    );
  }
  if (!v.publicUrl && (!isLoopback(host) || v.allowedHosts?.length)) {
    warnings.push(
      "SQUONK2_MCP_PUBLIC_URL (or --public-url) is not set: the sign-in metadata names this " +
        'endpoint "http://<Host>/mcp", so behind an https proxy clients are sent to plain http; ' +
        "set it to the URL clients use",
    );
  }
  return warnings;
}

function loadTools(v: Values): string[] {
  let tools: string[];
  try {
    tools = selectTools({
      toolsets: v.toolsets,
      tools: v.tools,
      excludeTools: v.excludeTools,
      readOnly: v.readOnly,
      codeMode: v.codeMode,
    });
  } catch (error) {
    if (error instanceof SelectionError) throw new ConfigError(error.message);
    throw error;
  }
  if (!tools.length) throw new ConfigError("The tool selection leaves no tool to offer");
  return tools;
}

const KEYCLOAK_KEYS = [
  "keycloakUrl",
  "keycloakRealm",
  "keycloakClientId",
  "keycloakClientSecret",
  "keycloakUser",
  "keycloakPassword",
] as const;

const envOf = (key: keyof typeof SETTINGS): string => (SETTINGS[key] as Setting).env!;

function loadCredentials(v: Values, verifyTls: boolean, http: boolean): CredentialsConfig {
  const keycloakSet = KEYCLOAK_KEYS.filter((k) => v[k] !== undefined);
  if (v.token && keycloakSet.length) {
    throw new ConfigError(
      `Set SQUONK2_ASAPI_TOKEN or the Keycloak variables, not both (${
        keycloakSet.map(envOf).join(", ")
      })`,
    );
  }
  if (v.token) return { kind: "token", token: v.token };
  if (!keycloakSet.length) return { kind: "none" };

  const missing = (["keycloakUrl", "keycloakRealm", "keycloakClientId"] as const)
    .filter((k) => v[k] === undefined);
  if (missing.length) {
    throw new ConfigError(
      `Keycloak is half configured: ${missing.map(envOf).join(", ")} must be set too`,
    );
  }
  if ((v.keycloakUser === undefined) !== (v.keycloakPassword === undefined)) {
    throw new ConfigError(
      "Set both SQUONK2_KEYCLOAK_USER and SQUONK2_KEYCLOAK_USER_PASSWORD, or neither",
    );
  }
  // Over HTTP, Keycloak without a user or secret only verifies callers' tokens.
  if (!v.keycloakUser && !v.keycloakClientSecret && http) return { kind: "none" };
  if (!v.keycloakUser && !v.keycloakClientSecret) {
    throw new ConfigError(
      "Without SQUONK2_KEYCLOAK_USER, the client-credentials grant needs " +
        "SQUONK2_KEYCLOAK_AS_CLIENT_SECRET",
    );
  }
  return {
    kind: "keycloak",
    url: v.keycloakUrl!,
    realm: v.keycloakRealm!,
    clientId: v.keycloakClientId!,
    clientSecret: v.keycloakClientSecret,
    username: v.keycloakUser,
    password: v.keycloakPassword,
    verifyTls,
  };
}

/**
 * Reads a variable of the table from this process's environment. A variable the permissions do
 * not let the server read is a mistake in how it was started, not an unset value.
 */
export const readPermittedEnv: (name: string) => string | undefined = permittedEnv(
  "the server",
  "start it with deno task start, or add it to --allow-env",
);

/** The text of --help. */
export function helpText(version: string): string {
  return `squonk2-as-mcp ${version}: an MCP server for the Squonk2 Account Server

Usage: deno task start [options]     (MCP over stdio, or HTTP with --transport http)
       deno task demo [options]      (with an embedded stub Account Server)

${helpLines(SETTINGS)}

A flag wins over its variable. A switch given alone is on; --read-only=no (any switch with =yes or
=no) also turns off a "yes" from the environment or .env.

With no URL set, the server runs against an embedded stub Account Server with sample data.`;
}
