/**
 * Scaffolding shared by the tests and the benchmarks: an MCP `initialize` message, and an HTTP
 * endpoint serving the MCP server for a stub Account Server.
 *
 * @module
 */
import { AsApi } from "../src/api/mod.ts";
import {
  Activity,
  createServer,
  type HttpEndpoint,
  type HttpOptions,
  selectTools,
  serveHttp,
  type ToolSelection,
} from "../src/mcp/mod.ts";
import { NoCredentials, StaticToken } from "../src/auth/mod.ts";
import type { StubServer } from "../src/stub/mod.ts";

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
  options: Partial<HttpOptions> & { selection?: ToolSelection; serverToken?: string } = {},
): HttpEndpoint {
  const activity = new Activity();
  const api = new AsApi({ url: stub.url, env: () => undefined });
  const tokens = options.serverToken ? new StaticToken(options.serverToken) : new NoCredentials();
  const tools = selectTools(options.selection);
  return serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    allowedOrigins: [],
    allowServerCredentials: false,
    activity,
    makeServer: () => createServer({ api, tokens, version: "test", activity, tools }),
    ...options,
  });
}
