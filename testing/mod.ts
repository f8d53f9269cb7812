/**
 * Scaffolding shared by the tests and the benchmarks: an MCP `initialize` message, an in-memory
 * MCP session against a fresh stub Account Server, and an HTTP endpoint serving the MCP server
 * for a stub.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  type CallToolResult,
  ElicitRequestSchema,
  type ElicitResult,
} from "@modelcontextprotocol/sdk/types.js";
import { AsApi } from "../src/api/mod.ts";
import {
  Activity,
  createServer,
  type HttpEndpoint,
  type HttpOptions,
  selectTools,
  serveHttp,
  type ServerOptions,
  type ToolSelection,
} from "../src/mcp/mod.ts";
import { NoCredentials, StaticToken, type TokenSource } from "../src/auth/mod.ts";
import { startStub, type StubOptions, type StubServer } from "../src/stub/mod.ts";
import { TokenVerifier, type VerifierOptions } from "../src/auth/verify.ts";

/** The first message of an MCP client: `initialize`, with id `id`. */
export function initializeRequest(id = 1, name = "test"): Record<string, unknown> {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name, version: "1.0.0" },
    },
  };
}

/**
 * Serves MCP over HTTP on 127.0.0.1 for the stub. Without `serverToken` the server has no
 * credentials of its own, so every call uses its caller's bearer token.
 */
export function serveForStub(
  stub: StubServer,
  options: Partial<HttpOptions> & {
    selection?: ToolSelection;
    serverToken?: string;
    /** More options for each session's MCP server (an upload folder, limits). */
    server?: Partial<ServerOptions>;
  } = {},
): HttpEndpoint {
  const activity = new Activity();
  const api = new AsApi({ url: stub.url, env: () => undefined });
  const tokens = options.serverToken ? new StaticToken(options.serverToken) : new NoCredentials();
  const tools = selectTools(options.selection);
  const { server, ...http } = options;
  const stateless = options.stateless;
  return serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    allowedOrigins: [],
    allowServerCredentials: false,
    activity,
    makeServer: () =>
      createServer({ api, tokens, version: "test", activity, tools, stateless, ...server }),
    ...http,
  });
}

/** How an in-memory MCP session against a fresh stub is set up. */
export interface SessionOptions {
  /** The operator's credentials (default: the stub's alice, with a static token). */
  tokens?: (stub: StubServer) => TokenSource;
  /** The tools to offer (default: all). */
  selection?: ToolSelection;
  maxResultBytes?: number;
  fileRoot?: string;
  stub?: StubOptions;
  /**
   * How the client answers a delete confirmation; given, the client declares elicitation and
   * every message it is shown is kept in `asked`.
   */
  answer?: ElicitResult;
  /** Whether the client checks the stub's TLS certificate (the client's default: yes). */
  verifySslCert?: boolean;
  /** Stop the stub before the session starts, so nothing listens at the URL the server uses. */
  stubStopped?: boolean;
  /** Prepares the client before it connects (notification handlers, say). */
  prepare?: (client: Client) => void;
}

/** An in-memory MCP session against a fresh stub; `await using` closes it all. */
export interface Session extends AsyncDisposable {
  stub: StubServer;
  server: Server;
  client: Client;
  /** Calls a tool and returns its result. */
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** The confirmation messages the user was shown. */
  asked: string[];
}

/**
 * Starts a stub, builds the MCP server for it and connects an SDK client over an in-memory
 * linked pair: the one set-up of the in-memory tests.
 *
 * @example
 * ```ts
 * await using session = await openSession({ selection: { readOnly: true } });
 * const result = await session.call("get_version");
 * ```
 */
export async function openSession(options: SessionOptions = {}): Promise<Session> {
  const stub = await startStub(options.stub);
  if (options.stubStopped) await stub.shutdown();
  const server = createServer({
    api: new AsApi({ url: stub.url, verifySslCert: options.verifySslCert, env: () => undefined }),
    tokens: options.tokens?.(stub) ?? new StaticToken(stub.tokens.alice),
    version: "test",
    tools: selectTools(options.selection),
    maxResultBytes: options.maxResultBytes,
    fileRoot: options.fileRoot,
  });
  const asked: string[] = [];
  const answer = options.answer;
  const client = new Client({ name: "test-client", version: "1.0.0" }, {
    capabilities: answer ? { elicitation: {} } : {},
  });
  if (answer) {
    client.setRequestHandler(ElicitRequestSchema, (request: { params: { message: string } }) => {
      asked.push(request.params.message);
      return answer;
    });
  }
  options.prepare?.(client);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return {
    stub,
    server,
    client,
    asked,
    call: async (name, args = {}) =>
      await client.callTool({ name, arguments: args }) as CallToolResult,
    async [Symbol.asyncDispose]() {
      await client.close();
      await server.close();
      if (!options.stubStopped) await stub.shutdown();
    },
  };
}

/** The options of `serveForStub`: HTTP options, the tools, the server's own token. */
type ServeOptions = NonNullable<Parameters<typeof serveForStub>[1]>;

/** How an HTTP endpoint for a fresh stub is set up. */
export type EndpointOptions = ServeOptions & {
  /**
   * Verify callers' tokens against the stub's Keycloak (its JWKS, refetched without delay); an
   * object also sets the verifier's other options (its clock, the key set's maximum age).
   */
  keycloak?: boolean | Partial<VerifierOptions>;
  /** How the stub is started (TLS, token lifetime, ...). */
  stub?: StubOptions;
  /** More options that depend on the stub (its tokens, its Keycloak's URL). */
  fromStub?: (stub: StubServer) => ServeOptions;
  /** How many instances serve the same stub, as behind a balancer (default 1). */
  instances?: number;
};

/** How `Endpoint.connect` connects an SDK client. */
export interface ConnectOptions {
  /** More request headers. */
  headers?: Record<string, string>;
  /** The fetch the client's transport uses (a balancer in front of the instances, say). */
  fetch?: typeof fetch;
  /** Prepares the client before it connects (capabilities, request handlers). */
  prepare?: (client: Client) => void;
}

/** The MCP HTTP endpoint of a fresh stub; `await using` shuts both down. */
export interface Endpoint extends AsyncDisposable {
  stub: StubServer;
  /** The first (usually the only) instance. */
  endpoint: HttpEndpoint;
  /** Every instance, in order. */
  endpoints: HttpEndpoint[];
  /** The port clients connect to. */
  port: number;
  /**
   * Connects an SDK client to the first instance, with `token` as its bearer token (none if
   * not given); it is closed with the endpoint.
   */
  connect(token?: string, options?: ConnectOptions): Promise<Client>;
}

/**
 * Starts a stub and serves MCP over HTTP for it on 127.0.0.1: the one set-up of the HTTP tests.
 *
 * @example
 * ```ts
 * await using http = await openEndpoint({ keycloak: true });
 * const response = await fetch(http.endpoint.url, { method: "POST" });
 * ```
 */
export async function openEndpoint(options: EndpointOptions = {}): Promise<Endpoint> {
  const { keycloak, stub: stubOptions, fromStub, instances = 1, ...http } = options;
  const stub = await startStub(stubOptions);
  const verifier = keycloak ? keycloakVerifier(stub, keycloak) : undefined;
  const chosen = { graceMs: 100, verifier, ...http, ...fromStub?.(stub) };
  const endpoints = Array.from({ length: instances }, () => serveForStub(stub, chosen));
  const endpoint = endpoints[0]!;
  const clients: Client[] = [];
  return {
    stub,
    endpoint,
    endpoints,
    port: Number(new URL(endpoint.url).port),
    async connect(token, more = {}) {
      const client = await connectHttp(endpoint.url, token, more);
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) await client.close().catch(() => {});
      for (const each of endpoints) await each.shutdown();
      await stub.shutdown();
    },
  };
}

/** A verifier of the stub Keycloak's tokens. */
function keycloakVerifier(
  stub: StubServer,
  keycloak: true | Partial<VerifierOptions>,
): TokenVerifier {
  return new TokenVerifier({
    url: stub.keycloak.url,
    realm: stub.keycloak.realm,
    clientId: stub.keycloak.clientId,
    refetchAfterS: 0,
    ...(typeof keycloak === "object" ? keycloak : {}),
  });
}

/** An SDK client connected to `url` over Streamable HTTP. */
async function connectHttp(
  url: string,
  token: string | undefined,
  options: ConnectOptions,
): Promise<Client> {
  const headers = options.headers ?? {};
  const client = new Client({ name: "http-test", version: "1.0.0" });
  options.prepare?.(client);
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: token ? { authorization: `Bearer ${token}`, ...headers } : headers },
      fetch: options.fetch,
    }),
  );
  return client;
}

/** Writes all of `bytes` to `conn` (a single write may take only part). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Everything the server sends on `conn` until it closes it or `ms` pass; then `conn` is closed. */
export async function readAll(conn: Deno.Conn, ms: number): Promise<string> {
  let text = "";
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const buffer = new Uint8Array(16 * 1024);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    // Closed by the timer.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  return text;
}
