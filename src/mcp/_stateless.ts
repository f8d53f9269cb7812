/**
 * Streamable HTTP without sessions (the SDK's stateless mode): each POST is answered by a server
 * and transport of its own, made for it and closed after it, so any instance behind a load
 * balancer can answer any request and nothing outlives a request. The answer is one JSON body:
 * a request cannot carry a server-to-client request (an elicitation) whose answer would come back
 * in another POST, perhaps to another instance. So the server never learns the client's
 * capabilities, and a delete goes ahead as it does for a client without elicitation (the listing
 * marks it destructive, for the client to confirm).
 *
 * @module
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";

/** The token a call acts with, as the transport passes it to the server. */
export interface AuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
}

/** Answers one stateless request; GET and DELETE get 405 (no stream, no session to end). */
export async function answerStateless(
  request: Request,
  options: { body?: unknown; makeServer: () => Server; authInfo?: AuthInfo },
): Promise<Response> {
  if (request.method !== "POST") {
    return Response.json({
      jsonrpc: "2.0",
      error: {
        code: -32000,
        message: "Method not allowed: this server is stateless; POST each message",
      },
      id: null,
    }, { status: 405, headers: { allow: "POST" } });
  }
  const server = options.makeServer();
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  try {
    await server.connect(transport);
    return await transport.handleRequest(request, {
      parsedBody: options.body,
      authInfo: options.authInfo,
    });
  } finally {
    await server.close().catch(() => {});
  }
}
