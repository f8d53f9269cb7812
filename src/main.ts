/**
 * The entry point: configuration → client → token source → MCP server → transport. With no
 * Account Server URL (or with `--demo`) it serves an embedded stub Account Server with sample
 * data, so a newcomer can try every tool.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { AsApi } from "./api/mod.ts";
import { type Config, ConfigError, helpText, loadConfig, readPermittedEnv } from "./config.ts";
import { logLine } from "./log.ts";
import {
  accountServerAnswers,
  Activity,
  createServer,
  type HttpEndpoint,
  serveHttp,
  StdioTransport,
} from "./mcp/mod.ts";
import {
  KeycloakTokens,
  NoCredentials,
  StaticToken,
  type TokenSource,
  TokenVerifier,
} from "./auth/mod.ts";
import { startStub, type StubServer } from "./stub/mod.ts";
import { demoTokensHelp, portInUse, stdioWelcome } from "./welcome.ts";

/** The version printed by --version and announced to MCP clients. */
export const VERSION: string = denoJson.version;

/** Where calls go: the client, the operator's credentials, and the stub in demo mode. */
interface Backend {
  api: AsApi;
  tokens: TokenSource;
  /** Said by `get_api_url`. */
  mode: string;
  stub?: StubServer;
}

/** Stops serving, letting calls in flight finish. */
type Stop = () => Promise<void>;

function say(message: string): void {
  logLine(`squonk2-as-mcp: ${message}`);
}

/** The configuration, or the exit code when there is nothing to serve. */
function configure(): Config | number {
  let config: Config;
  try {
    config = loadConfig(Deno.args, readPermittedEnv);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    say(error.message);
    return 2;
  }
  if (config.help || config.version) {
    console.log(config.help ? helpText(VERSION) : VERSION);
    return 0;
  }
  config.warnings.forEach(say);
  return config;
}

function tokensFor(config: Config): TokenSource {
  const c = config.credentials;
  if (c.kind === "token") return new StaticToken(c.token);
  if (c.kind === "keycloak") return new KeycloakTokens(c);
  return new NoCredentials();
}

/** The embedded stub and its admin's token, in demo mode. */
async function demoBackend(config: Config): Promise<Backend> {
  const stub = await startStub({ demoData: true });
  const why = config.demoReason ? ` (${config.demoReason})` : "";
  const real = config.demoReason
    ? "set SQUONK2_ASAPI_URL to use a real Account Server"
    : "for a real Account Server, run without --demo (deno task start) and set SQUONK2_ASAPI_URL";
  say(
    `demo mode${why}: embedded stub Account Server at ${stub.url}, acting as its admin ` +
      `user; ${real}`,
  );
  return {
    api: new AsApi({
      url: stub.url,
      verifySslCert: config.verifySslCert,
      debugRequests: config.debugRequests,
    }),
    tokens: new StaticToken(stub.tokens.admin),
    mode: "demo: embedded stub Account Server with sample data",
    stub,
  };
}

/** How the start line names each kind of credentials (a kind not here: "<kind> credentials"). */
const CREDENTIALS_SAID: Record<string, string> = {
  "Keycloak client credentials": "Keycloak credentials (client-credentials grant)",
  "Keycloak password grant": "Keycloak credentials (password grant)",
};

/** The configured Account Server and the operator's credentials. */
function realBackend(config: Config): Backend {
  const api = new AsApi({
    url: config.url,
    verifySslCert: config.verifySslCert,
    debugRequests: config.debugRequests,
  });
  const tokens = tokensFor(config);
  const unverified = !config.verifySslCert && config.url?.startsWith("https:");
  const tls = unverified ? " (TLS certificates NOT verified)" : "";
  const credentials = tokens.kind === "none"
    ? "no credentials (only ping, get_version and get_event_stream_version will work: set " +
      "SQUONK2_ASAPI_TOKEN or Keycloak)"
    : CREDENTIALS_SAID[tokens.kind] ?? `${tokens.kind} credentials`;
  say(`using ${config.url}${tls} with ${credentials}`);
  return { api, tokens, mode: "Account Server" };
}

/** Serves MCP over HTTP until stopped; undefined (having said why) when the port is taken. */
function serveOverHttp(
  config: Config,
  backend: Backend,
  makeServer: () => ReturnType<typeof createServer>,
  activity: Activity,
  stub: StubServer | undefined,
): Stop | undefined {
  // The demo's stub hands out its own tokens: callers are verified only against a real realm.
  const verify = stub ? undefined : config.verifyCallers;
  let endpoint: HttpEndpoint;
  try {
    endpoint = serveHttp({
      hostname: config.host,
      port: config.port,
      allowedOrigins: config.allowedOrigins,
      allowedHosts: config.allowedHosts,
      allowServerCredentials: config.allowServerCredentials,
      makeServer,
      activity,
      verifier: verify ? new TokenVerifier(verify) : undefined,
      maxBodyBytes: config.maxBodyBytes,
      maxSessions: config.maxSessions,
      maxConnections: config.maxConnections,
      sessionIdleMs: config.sessionIdleS * 1000,
      stateless: config.stateless,
      // Callers are sent to sign in where their tokens are verified: the same realm.
      resource: {
        authorizationServer: verify && realmUrl(verify),
        publicUrl: config.publicUrl,
        scopes: config.oauthScopes,
      },
      ready: accountServerAnswers(backend.api),
    });
  } catch (error) {
    const taken = portInUse(error, config.host, config.port);
    if (!taken) throw error;
    say(taken);
    return undefined;
  }
  say(`${VERSION}: serving MCP at ${endpoint.url} (${offeredText(config)})`);
  if (verify) {
    // SQUONK2_ASAPI_VERIFY_SSL_CERT=no is the Account Server's; Keycloak's keys decide who is let in.
    const tls = config.verifySslCert ? "" : " (its TLS certificate verified all the same)";
    say(`callers' tokens are verified against Keycloak realm "${verify.realm}"${tls}`);
  }
  // The stub's tokens are published constants, not secrets; logLine would mask the admin's.
  if (stub) console.error(demoTokensHelp(endpoint.url, stub.tokens));
  return () => endpoint.shutdown();
}

/**
 * Serves MCP on stdio; the client closing stdin ends the server, once every request received has
 * been answered.
 */
async function serveOverStdio(
  config: Config,
  server: ReturnType<typeof createServer>,
  activity: Activity,
  onClose: () => void,
): Promise<Stop> {
  server.onclose = onClose;
  const transport: StdioTransport = new StdioTransport(undefined, undefined, {
    onInputEnd: () => closeWhenAnswered(activity, transport),
  });
  await server.connect(transport);
  say(`${VERSION}: serving MCP on stdio (${offeredText(config)})`);
  if (Deno.stdin.isTerminal()) logLine(stdioWelcome(config.demo ? "demo" : "start"));
  return async () => {
    await activity.drain(10_000);
    await server.close().catch(() => {});
  };
}

/** The URL of a Keycloak realm: its issuer, and the authorization server callers sign in with. */
function realmUrl(keycloak: { url: string; realm: string }): string {
  return `${keycloak.url}/realms/${encodeURIComponent(keycloak.realm)}`;
}

function offeredText(config: Config): string {
  const count = config.tools.length;
  return `${count} ${count === 1 ? "tool" : "tools"}${config.readOnly ? ", read-only" : ""}`;
}

async function main(): Promise<number> {
  const config = configure();
  if (typeof config === "number") return config;
  const backend = config.demo ? await demoBackend(config) : realBackend(config);
  if (config.transport === "http") {
    backend.mode += "; over HTTP, each caller's own bearer token is used";
  }
  if (!config.fileRoot) {
    // Nothing is read from disk without an upload folder: give up the permission altogether
    // (the user id serves only to check who may change the upload folder).
    await Deno.permissions.revoke({ name: "read" });
    await Deno.permissions.revoke({ name: "sys", kind: "uid" });
  }
  if (!config.tools.includes("run_program")) {
    // Only code mode starts processes (its sandbox): without it, nothing may be run at all.
    await Deno.permissions.revoke({ name: "run" });
  }
  const activity = new Activity();
  const makeServer = () =>
    createServer({
      api: backend.api,
      tokens: backend.tokens,
      version: VERSION,
      mode: backend.mode,
      tools: config.tools,
      fileRoot: config.fileRoot,
      maxResultBytes: config.maxResultBytes,
      maxUploadBytes: config.maxUploadBytes,
      stateless: config.transport === "http" && config.stateless,
      activity,
    });
  let stop: Stop = () => Promise.resolve();
  const exit = () => exitAfter(stop, backend.stub);
  const serving = config.transport === "http"
    ? serveOverHttp(config, backend, makeServer, activity, backend.stub)
    : await serveOverStdio(config, makeServer(), activity, exit);
  // A port in use is a start-up mistake, like a configuration error.
  if (!serving) return 2;
  stop = serving;
  Deno.addSignalListener("SIGINT", exit);
  Deno.addSignalListener("SIGTERM", exit);
  return -1;
}

/**
 * Once stdin has ended: the transport closes when the last request is answered; calls still
 * running after the grace period are cancelled (so they answer), and the transport is closed a
 * little later whatever happens.
 */
function closeWhenAnswered(activity: Activity, transport: StdioTransport): void {
  void activity.drain(STDIN_END_GRACE_MS)
    .then(() => new Promise((resolve) => setTimeout(resolve, 5_000)))
    .then(() => transport.close());
}

const STDIN_END_GRACE_MS = 10_000;

let stopping: Promise<void> | undefined;

/** Stops serving (letting calls in flight finish), stops the stub, exits 0; once. */
function exitAfter(stop: Stop, stub: StubServer | undefined): void {
  stopping ??= (async () => {
    say("shutting down");
    await stop();
    await stub?.shutdown();
    Deno.exit(0);
  })();
}

if (import.meta.main) {
  const code = await main();
  if (code >= 0) Deno.exit(code);
}
