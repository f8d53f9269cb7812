/**
 * The entry point: configuration → client → token source → MCP server → stdio transport. With no
 * Account Server URL (or with `--demo`) it serves an embedded stub Account Server with sample
 * data, so a newcomer can try every tool.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { AsApi, readEnv } from "./api/mod.ts";
import { type Config, ConfigError, helpText, loadConfig } from "./config.ts";
import { logLine } from "./log.ts";
import {
  Activity,
  createServer,
  KeycloakTokens,
  NoCredentials,
  serveHttp,
  StaticToken,
  StdioTransport,
  type TokenSource,
} from "./mcp/mod.ts";
import { startStub, type StubServer } from "./stub/mod.ts";

/** The version printed by --version and announced to MCP clients. */
export const VERSION: string = denoJson.version;

function tokensFor(config: Config): TokenSource {
  const c = config.credentials;
  if (c.kind === "token") return new StaticToken(c.token);
  if (c.kind === "keycloak") return new KeycloakTokens(c);
  return new NoCredentials();
}

async function main(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(Deno.args, readEnv);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logLine(`squonk2-as-mcp: ${error.message}`);
    return 2;
  }
  if (config.help) {
    console.log(helpText(VERSION));
    return 0;
  }
  if (config.version) {
    console.log(VERSION);
    return 0;
  }

  let stub: StubServer | undefined;
  let api: AsApi;
  let tokens: TokenSource;
  let mode: string;
  if (config.demo) {
    stub = await startStub();
    api = new AsApi({ url: stub.url, debugRequests: config.debugRequests });
    tokens = new StaticToken(stub.tokens.admin);
    mode = "demo: embedded stub Account Server with sample data";
    const why = config.demoReason ? ` (${config.demoReason})` : "";
    logLine(
      `squonk2-as-mcp: demo mode${why}: embedded stub Account Server at ${stub.url}, ` +
        `acting as its admin user; set SQUONK2_ASAPI_URL to use a real Account Server`,
    );
  } else {
    api = new AsApi({
      url: config.url,
      verifySslCert: config.verifySslCert,
      debugRequests: config.debugRequests,
    });
    tokens = tokensFor(config);
    mode = "Account Server";
    const tls = config.verifySslCert ? "" : " (TLS certificates NOT verified)";
    logLine(`squonk2-as-mcp: using ${config.url}${tls} with ${tokens.kind} credentials`);
  }

  if (config.transport === "http") mode += "; over HTTP, each caller's own bearer token is used";
  if (!config.fileRoot) {
    // Nothing is read from disk without an upload folder: give up the permission altogether.
    await Deno.permissions.revoke({ name: "read" });
  }
  const activity = new Activity();
  const makeServer = () =>
    createServer({
      api,
      tokens,
      version: VERSION,
      mode,
      tools: config.tools,
      fileRoot: config.fileRoot,
      maxResultBytes: config.maxResultBytes,
      activity,
    });
  const offered = `${config.tools.length} tools${config.readOnly ? ", read-only" : ""}`;

  let stop: () => Promise<void>;
  if (config.transport === "http") {
    const endpoint = serveHttp({
      hostname: config.host,
      port: config.port,
      allowedOrigins: config.allowedOrigins,
      allowedHosts: config.allowedHosts,
      allowServerCredentials: config.allowServerCredentials,
      makeServer,
      activity,
    });
    stop = () => endpoint.shutdown();
    logLine(`squonk2-as-mcp ${VERSION}: serving MCP at ${endpoint.url} (${offered})`);
  } else {
    const server = makeServer();
    stop = async () => {
      await activity.drain(10_000);
      await server.close().catch(() => {});
    };
    // The client closing stdin ends the session, and the server with it.
    server.onclose = () => exitAfter(stop, stub);
    await server.connect(new StdioTransport());
    logLine(`squonk2-as-mcp ${VERSION}: serving MCP on stdio (${offered})`);
  }
  Deno.addSignalListener("SIGINT", () => exitAfter(stop, stub));
  Deno.addSignalListener("SIGTERM", () => exitAfter(stop, stub));
  return -1;
}

let stopping: Promise<void> | undefined;

/** Stops serving (letting calls in flight finish), stops the stub, exits 0; once. */
function exitAfter(stop: () => Promise<void>, stub: StubServer | undefined): void {
  stopping ??= (async () => {
    logLine("squonk2-as-mcp: shutting down");
    await stop();
    await stub?.shutdown();
    Deno.exit(0);
  })();
}

if (import.meta.main) {
  const code = await main();
  if (code >= 0) Deno.exit(code);
}
