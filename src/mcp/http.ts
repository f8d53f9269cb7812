/**
 * MCP over Streamable HTTP at `/mcp`, with sessions, for many users at once. Each request's
 * `Authorization: Bearer <token>` is that caller's Account Server token and is what their tool
 * calls use, so two users on one server act as themselves. Each request passes, in order: the
 * path, `Host` (against DNS rebinding), `Origin`, the bearer token (verified against Keycloak
 * where one is configured), the body (capped in bytes and in time before it is parsed), then its
 * session, which only the caller who opened it may use.
 *
 * @module
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { InvalidToken } from "../auth/verify.ts";
import { readLimited, TooLarge } from "../body.ts";
import { logLine } from "../log.ts";
import type { Activity } from "./activity.ts";
import { type Session, Sessions } from "./_sessions.ts";
import { type Front, outOfFiles, serveFront } from "./_front.ts";
import { InternalServer } from "./_internal.ts";

import {
  bearerChallenge,
  healthProbes,
  metadataUrl,
  type ResourceOptions,
  serveMetadata,
} from "./_resource.ts";
import { answerStateless } from "./_stateless.ts";

/** Checks a caller's token; see `TokenVerifier` in src/auth/verify.ts. */
export interface CallerVerifier {
  /** Who the token speaks for; throws InvalidToken (401) or anything else (503). */
  verify(token: string): Promise<{ id: string }>;
}

/** How the HTTP endpoint is served. */
export interface HttpOptions {
  hostname: string;
  port: number;
  /** Values of `Origin` that may call; requests without `Origin` (non-browser clients) may. */
  allowedOrigins: readonly string[];
  /** Values of `Host` that are accepted; default: the loopback names with the bound port. */
  allowedHosts?: readonly string[];
  /** Serve requests without a bearer token with the server's own credentials. */
  allowServerCredentials: boolean;
  /** Builds the MCP server of one session. */
  makeServer: () => Server;
  /** The tool calls in flight, shared by all sessions' servers. */
  activity: Activity;
  /** How long a shutdown waits for calls in flight before cancelling them (default 10 s). */
  graceMs?: number;
  /** Verifies bearer tokens (Keycloak); without it a session belongs to the exact token. */
  verifier?: CallerVerifier;
  /** Largest request body, in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** How long a request body may take to arrive (default 30 s). */
  bodyTimeoutMs?: number;
  /** Bytes all bodies being read at once may hold together (default 16 × `maxBodyBytes`). */
  bodyBudgetBytes?: number;
  /** How long a request's head (line and headers) may take to arrive (default 10 s). */
  headerTimeoutMs?: number;
  /** Most client connections at once; more are closed at once (default 2048). */
  maxConnections?: number;
  /** Most sessions open at once (default 1000). */
  maxSessions?: number;
  /** Most sessions one caller may hold (default a tenth of `maxSessions`, at least 1). */
  maxSessionsPerCaller?: number;
  /** A session unused this long is closed (default 30 min). */
  sessionIdleMs?: number;
  /** Keep no session: a server and transport per request (see `_stateless.ts`). */
  stateless?: boolean;
  /** Where callers sign in, for the Protected Resource Metadata and 401s. */
  resource?: ResourceOptions;
  /** Whether the Account Server answers, for `/readyz` (default: always). */
  ready?: () => Promise<boolean>;
}

/** A running HTTP endpoint. */
export interface HttpEndpoint {
  /** e.g. `http://127.0.0.1:3000/mcp`. */
  url: string;
  /** How many MCP sessions are open. */
  readonly sessions: number;
  /** Refuses new requests, lets calls in flight finish (or cancels them), closes sessions. */
  shutdown(): Promise<void>;
}

/** The default largest request body: the SDK's own limit. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Whether `hostname` is written as a loopback address (a name is not resolved). */
export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

function rpcError(status: number, code: number, message: string, headers = {}): Response {
  return Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, {
    status,
    headers,
  });
}

/** The request's URL; none when its Host is not an authority (`a b`, `[::1`): it throws. */
function urlOf(request: Request): URL | undefined {
  try {
    return new URL(request.url);
  } catch {
    return undefined;
  }
}

function bearerOf(request: Request): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
  return match?.[1];
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Who is calling: the owner key of their sessions and the token their calls use. */
interface Caller {
  owner: string;
  /** The token, and the owner again (as `extra.caller`) for per-caller limits inside tools. */
  authInfo?: {
    token: string;
    clientId: string;
    scopes: string[];
    extra: { caller: string };
  };
}

function unauthorized(why: string, error?: string): Response {
  const detail: Record<string, string> = error ? { error, error_description: why } : {};
  return rpcError(401, -32001, `Unauthorized: ${why}`, {
    "www-authenticate": bearerChallenge({ realm: "squonk2-as-mcp", ...detail }),
  });
}

/** The caller of `request`, or the response refusing it. */
async function authenticate(request: Request, options: HttpOptions): Promise<Caller | Response> {
  const token = bearerOf(request);
  if (token === undefined) {
    if (options.allowServerCredentials) return { owner: "" };
    return unauthorized("send your Account Server access token as Authorization: Bearer <token>");
  }
  const authInfo = (caller: string) => ({
    token,
    clientId: "account-server-user",
    scopes: [],
    extra: { caller },
  });
  if (!options.verifier) {
    const owner = `token:${await sha256(token)}`;
    return { owner, authInfo: authInfo(owner) };
  }
  try {
    const owner = `caller:${(await options.verifier.verify(token)).id}`;
    return { owner, authInfo: authInfo(owner) };
  } catch (error) {
    if (error instanceof InvalidToken) return unauthorized(error.message, "invalid_token");
    logLine(`squonk2-as-mcp: cannot verify a token: ${(error as Error).message}`);
    return rpcError(503, -32000, "Cannot verify tokens now: Keycloak is not answering", {
      "retry-after": "5",
    });
  }
}

/** The bytes all request bodies being read may hold together: many capped bodies are not. */
class BodyBudget {
  #left: number;
  /** A budget of `bytes`. */
  constructor(bytes: number) {
    this.#left = bytes;
  }
  /** Takes `bytes` if they are left. */
  take(bytes: number): boolean {
    if (bytes > this.#left) return false;
    this.#left -= bytes;
    return true;
  }
  /** Gives `bytes` back. */
  give(bytes: number): void {
    this.#left += bytes;
  }
}

/** A body declaring at most this many bytes is read outside the shared budget. */
export const FREE_BODY_BYTES = 16 * 1024;

/**
 * The JSON body of a POST, read within the byte and time limits, or the response refusing it. A
 * body holds its declared length (or the whole cap, when undeclared) of the shared budget while
 * it is read, unless it declares at most `FREE_BODY_BYTES`.
 */
async function readJson(
  request: Request,
  options: HttpOptions,
  budget: BodyBudget,
): Promise<{ json: unknown } | Response> {
  const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > max) {
    return rpcError(413, -32000, `Payload too large: the limit is ${max} bytes`);
  }
  if (!request.body) return rpcError(400, -32700, "Parse error: the body is empty");
  // A small declared body takes no share: like a head, it is bounded by the connection cap, and
  // bodies that declare the cap and then send nothing cannot stop small requests.
  const share = declared >= 0 ? (declared <= FREE_BODY_BYTES ? 0 : declared) : max;
  if (!budget.take(share)) {
    return rpcError(503, -32000, "Too many large requests at once: try again shortly", {
      "retry-after": "1",
      connection: "close",
    });
  }
  try {
    return await readBody(request.body, max, options.bodyTimeoutMs ?? 30_000, declared);
  } finally {
    budget.give(share);
  }
}

async function readBody(
  body: ReadableStream<Uint8Array>,
  max: number,
  timeoutMs: number,
  declared: number,
): Promise<{ json: unknown } | Response> {
  const signal = AbortSignal.timeout(timeoutMs);
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(body, max, { signal, expected: declared || undefined });
  } catch (error) {
    if (error instanceof TooLarge) {
      return rpcError(413, -32000, `Payload too large: the limit is ${max} bytes`);
    }
    if (signal.aborted) {
      return rpcError(408, -32000, `Request timeout: the body took over ${timeoutMs} ms`, {
        connection: "close",
      });
    }
    return rpcError(400, -32700, "Parse error: the body could not be read");
  }
  try {
    return { json: JSON.parse(new TextDecoder().decode(bytes)) };
  } catch {
    return rpcError(400, -32700, "Parse error: the body is not JSON");
  }
}

/**
 * The MCP endpoint's requests, one checked step after another: the path, `Host` and `Origin`
 * (`#gate`), the caller (`authenticate`), the body (`readJson`), then the session.
 */
class McpHttp {
  readonly sessions: Sessions;
  /** Accepted `Host` values; filled in once the port is known. */
  readonly allowedHosts = new Set<string>();
  /** The server's own origins on loopback; filled in once the port is known. */
  readonly ownOrigins = new Set<string>();
  closing = false;
  #options: HttpOptions;
  #budget: BodyBudget;
  #resource: ResourceOptions;
  #probes: (request: Request) => Promise<Response | undefined>;

  constructor(options: HttpOptions) {
    this.#options = options;
    const maxSessions = options.maxSessions ?? 1000;
    this.sessions = new Sessions({
      max: maxSessions,
      idleMs: options.sessionIdleMs ?? 30 * 60_000,
      perOwner: options.maxSessionsPerCaller ?? Math.max(1, Math.ceil(maxSessions / 10)),
    });
    this.#budget = new BodyBudget(
      options.bodyBudgetBytes ?? 16 * (options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    );
    this.#resource = options.resource ?? {};
    this.#probes = healthProbes(options.ready ?? (() => Promise.resolve(true)));
  }

  /** The metadata and probes first (no token needed); then MCP, its 401s naming the metadata. */
  async serve(request: Request): Promise<Response> {
    if (!urlOf(request)) {
      // Not a URL authority, so not an allowed Host either; the probes need a URL to route.
      const host = request.headers.get("host") ?? "";
      return rpcError(403, -32000, `Forbidden: Host "${host}" is not allowed`);
    }
    // The metadata names the endpoint by its Host unless a public URL is given: only an allowed
    // one (any other falls through to the gate's 403).
    const named = this.#resource.publicUrl !== undefined || this.#hostAllowed(request);
    const answered = (named ? serveMetadata(request, this.#resource) : undefined) ??
      await this.#probes(request);
    if (answered) return answered;
    const response = await this.#handle(request);
    // A 401 comes only past the gate, so its Host is an allowed one.
    const metadata = response.status === 401 ? metadataUrl(request, this.#resource) : undefined;
    const challenge = response.headers.get("www-authenticate");
    if (metadata && challenge) {
      const param = bearerChallenge({ resource_metadata: metadata }).slice("Bearer ".length);
      response.headers.set("www-authenticate", `${challenge}, ${param}`);
    }
    return response;
  }

  #hostAllowed(request: Request): boolean {
    return this.allowedHosts.has((request.headers.get("host") ?? "").toLowerCase());
  }

  #gate(request: Request): Response | undefined {
    // Host first: the request's URL is built from it (see `serve`).
    const host = request.headers.get("host") ?? "";
    if (!this.#hostAllowed(request)) {
      return rpcError(403, -32000, `Forbidden: Host "${host}" is not allowed`);
    }
    if (urlOf(request)?.pathname !== "/mcp") {
      return rpcError(404, -32601, "Not found: the endpoint is /mcp");
    }
    const origin = request.headers.get("origin");
    const allowed = this.#options.allowedOrigins.includes(origin ?? "") ||
      this.ownOrigins.has(origin ?? "");
    if (origin !== null && !allowed) {
      return rpcError(403, -32000, `Forbidden: Origin "${origin}" is not allowed`);
    }
    if (this.closing) return rpcError(503, -32000, "The server is shutting down");
    return undefined;
  }

  async #handle(request: Request): Promise<Response> {
    const refused = this.#gate(request);
    if (refused) return refused;
    const caller = await authenticate(request, this.#options);
    if (caller instanceof Response) return caller;
    let body: unknown;
    if (request.method === "POST") {
      const read = await readJson(request, this.#options, this.#budget);
      if (read instanceof Response) return read;
      body = read.json;
    }
    if (this.#options.stateless) {
      return await answerStateless(request, {
        body,
        makeServer: this.#options.makeServer,
        authInfo: caller.authInfo,
      });
    }
    const sessionId = request.headers.get("mcp-session-id");
    if (sessionId !== null) return await this.#continueSession(request, sessionId, body, caller);
    if (request.method !== "POST" || !isInitializeRequest(body)) {
      return rpcError(400, -32000, "Bad request: no session; send an initialize request first");
    }
    const release = await this.sessions.reserve(caller.owner);
    if (!release) {
      return rpcError(503, -32000, "Too many sessions are in use: try again later", {
        "retry-after": "10",
      });
    }
    try {
      return await this.#openSession(request, body, caller);
    } finally {
      release();
    }
  }

  async #continueSession(
    request: Request,
    sessionId: string,
    body: unknown,
    caller: Caller,
  ): Promise<Response> {
    // Someone else's session and no session at all look the same: its id confirms nothing.
    const session = this.sessions.get(sessionId, caller.owner);
    if (!session) return rpcError(404, -32001, "Session not found: start a new session");
    const response = await session.transport.handleRequest(request, {
      parsedBody: body,
      authInfo: caller.authInfo,
    });
    return this.sessions.track(session, response);
  }

  async #openSession(request: Request, body: unknown, caller: Caller): Promise<Response> {
    const server = this.#options.makeServer();
    const sessions = this.sessions;
    const session: Session = {
      transport: undefined as unknown as WebStandardStreamableHTTPServerTransport,
      server,
      owner: caller.owner,
      lastActive: Date.now(),
      busy: 0,
    };
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id: string) => sessions.add(id, session),
      onsessionclosed: (id: string) => sessions.delete(id),
    });
    session.transport = transport;
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    const response = await transport.handleRequest(request, {
      parsedBody: body,
      authInfo: caller.authInfo,
    });
    return sessions.track(session, response);
  }
}

/**
 * Listens: the real server on an internal loopback port (started again if it fails), and the
 * front, where clients connect, which times request heads and bodies.
 */
function listen(
  options: HttpOptions,
  serve: (request: Request) => Promise<Response>,
): { internal: InternalServer; front: Front } {
  const internal = new InternalServer(serve, (error) => {
    logLine(`squonk2-as-mcp: HTTP request failed: ${String(error)}`);
    return rpcError(500, -32603, "Internal error");
  });
  try {
    const front = serveFront({
      hostname: options.hostname,
      port: options.port,
      target: internal.port,
      headerTimeoutMs: options.headerTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      maxConnections: options.maxConnections,
    });
    internal.listen({
      failed: (error) => {
        front.retarget(undefined);
        if (outOfFiles(error)) front.shed();
      },
      restarted: (port) => front.retarget(port),
    });
    return { internal, front };
  } catch (error) {
    void internal.shutdown();
    throw error;
  }
}

/**
 * The `Host` values accepted (a name given without a port is accepted with and without the port
 * bound) and, on loopback, the server's own origins: a rebinding page's origin is another name.
 */
function admit(mcp: McpHttp, options: HttpOptions, port: number): void {
  for (const given of options.allowedHosts ?? ["127.0.0.1", "localhost", "[::1]"]) {
    const name = given.toLowerCase();
    mcp.allowedHosts.add(name);
    if (!/:\d+$/.test(name)) mcp.allowedHosts.add(`${name}:${port}`);
  }
  if (isLoopback(options.hostname)) {
    for (const name of ["127.0.0.1", "localhost", "[::1]"]) {
      mcp.ownOrigins.add(`http://${name}:${port}`);
    }
  }
}

/** Serves MCP over Streamable HTTP until `shutdown()`. */
export function serveHttp(options: HttpOptions): HttpEndpoint {
  const mcp = new McpHttp(options);
  const { internal, front } = listen(options, (request) => mcp.serve(request));
  admit(mcp, options, front.port);
  const bound = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  return {
    url: `http://${bound}:${front.port}/mcp`,
    get sessions() {
      return mcp.sessions.size;
    },
    async shutdown() {
      mcp.closing = true;
      await options.activity.drain(options.graceMs ?? 10_000);
      await mcp.sessions.closeAll();
      front.close();
      await internal.shutdown();
    },
  };
}
