/**
 * MCP over Streamable HTTP at `/mcp`, with sessions, for many users at once. Each request's
 * `Authorization: Bearer <token>` is that caller's Account Server token and is what their tool
 * calls use, so two users on one server act as themselves. The `Host` header is checked against
 * DNS rebinding and the `Origin` header against an allow-list.
 *
 * @module
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { logLine } from "../log.ts";
import type { Activity } from "./activity.ts";

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

interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  /** Who opened it: a JWT's subject, or the token itself, or "" for the server's credentials. */
  owner: string;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Whether `hostname` is a loopback address. */
export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || hostname.startsWith("127.");
}

function rpcError(status: number, code: number, message: string, headers = {}): Response {
  return Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, {
    status,
    headers,
  });
}

function bearerOf(request: Request): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
  return match?.[1];
}

/**
 * Who a token belongs to, for keeping a session to its opener: the `sub` of a JWT (not verified
 * here; the Account Server verifies every call), else the token itself, so a renewed JWT for the
 * same user may go on using the session.
 */
function ownerOf(token: string | undefined): string {
  if (token === undefined) return "";
  const payload = token.split(".")[1];
  if (payload) {
    try {
      const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
      if (typeof claims.sub === "string") return `sub:${claims.sub}`;
    } catch {
      // Not a JWT: the token itself is the owner.
    }
  }
  return `token:${token}`;
}

/** Serves MCP over Streamable HTTP until `shutdown()`. */
export function serveHttp(options: HttpOptions): HttpEndpoint {
  const sessions = new Map<string, Session>();
  let closing = false;
  const allowedHosts = new Set<string>();
  const ownOrigins = new Set<string>();

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/mcp") return rpcError(404, -32601, "Not found: the endpoint is /mcp");
    const host = request.headers.get("host") ?? "";
    if (!allowedHosts.has(host.toLowerCase())) {
      return rpcError(403, -32000, `Forbidden: Host "${host}" is not allowed`);
    }
    const origin = request.headers.get("origin");
    if (origin !== null && !options.allowedOrigins.includes(origin) && !ownOrigins.has(origin)) {
      return rpcError(403, -32000, `Forbidden: Origin "${origin}" is not allowed`);
    }
    if (closing) return rpcError(503, -32000, "The server is shutting down");

    const token = bearerOf(request);
    if (token === undefined && !options.allowServerCredentials) {
      return rpcError(
        401,
        -32001,
        "Unauthorized: send your Account Server access token as Authorization: Bearer <token>",
        { "www-authenticate": 'Bearer realm="squonk2-as-mcp"' },
      );
    }
    const authInfo = token === undefined
      ? undefined
      : { token, clientId: "account-server-user", scopes: [] };
    const sessionId = request.headers.get("mcp-session-id");
    if (sessionId !== null) {
      const session = sessions.get(sessionId);
      if (!session) return rpcError(404, -32001, "Session not found: start a new session");
      if (session.owner !== ownerOf(token)) {
        return rpcError(403, -32000, "Forbidden: this session belongs to another caller");
      }
      return await session.transport.handleRequest(request, { authInfo });
    }
    if (request.method !== "POST") {
      return rpcError(400, -32000, "Bad request: no session; send an initialize request first");
    }
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return rpcError(400, -32700, "Parse error: the body is not JSON");
    }
    if (!isInitializeRequest(body)) {
      return rpcError(400, -32000, "Bad request: no session; send an initialize request first");
    }
    return await openSession(request, body, token, authInfo);
  }

  async function openSession(
    request: Request,
    body: unknown,
    token: string | undefined,
    authInfo: { token: string; clientId: string; scopes: string[] } | undefined,
  ): Promise<Response> {
    const server = options.makeServer();
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id: string) => {
        sessions.set(id, { transport, server, owner: ownerOf(token) });
      },
      onsessionclosed: (id: string) => {
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    return await transport.handleRequest(request, { parsedBody: body, authInfo });
  }

  const httpServer = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
    onError: (error) => {
      logLine(`squonk2-as-mcp: HTTP request failed: ${String(error)}`);
      return rpcError(500, -32603, "Internal error");
    },
  }, handle);
  const port = httpServer.addr.port;
  const bound = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  // A name given without a port is accepted with and without the port actually bound.
  for (const given of options.allowedHosts ?? ["127.0.0.1", "localhost", "[::1]"]) {
    const name = given.toLowerCase();
    allowedHosts.add(name);
    if (!/:\d+$/.test(name)) allowedHosts.add(`${name}:${port}`);
  }
  // On loopback, the server's own origin may call; a rebinding page's origin is another name.
  if (isLoopback(options.hostname)) {
    for (const name of ["127.0.0.1", "localhost", "[::1]"]) {
      ownOrigins.add(`http://${name}:${port}`);
    }
  }

  return {
    url: `http://${bound}:${port}/mcp`,
    get sessions() {
      return sessions.size;
    },
    async shutdown() {
      closing = true;
      await options.activity.drain(options.graceMs ?? 10_000);
      for (const session of [...sessions.values()]) {
        await session.server.close().catch(() => {});
      }
      sessions.clear();
      await httpServer.shutdown();
    },
  };
}
