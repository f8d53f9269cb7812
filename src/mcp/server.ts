/**
 * The MCP server: one tool per row of the operation table, registered in one loop, each
 * returning the operation's ApiRv as structured output. There is deliberately no tool that
 * changes the Account Server URL: the operator alone decides where credentials are sent.
 *
 * @module
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type ApiRv, type AsApi, type Operation, OPERATIONS } from "../api/mod.ts";
import { CredentialsError, type TokenSource } from "./credentials.ts";

/** What the server is built from. */
export interface ServerOptions {
  api: AsApi;
  tokens: TokenSource;
  version: string;
  /** Said by `get_api_url`, e.g. "embedded stub (demo)". */
  mode?: string;
}

/** The longest `timeout_s` a tool call may ask for. */
export const MAX_TIMEOUT_S = 60;

/** The ApiRv shape every tool declares as its output. */
export const API_RV_SHAPE = {
  success: z.boolean().describe("Whether the Account Server answered with a success status"),
  msg: z.record(z.string(), z.unknown()).describe(
    "The response body on success; { error, hint? } on failure",
  ),
  http_status_code: z.number().int().describe("HTTP status, or 0 when no response came"),
};

const TIMEOUT_S = z
  .number({ error: `must be a number of seconds from 0.1 to ${MAX_TIMEOUT_S}` })
  .min(0.1, { error: `must be a number of seconds from 0.1 to ${MAX_TIMEOUT_S}` })
  .max(MAX_TIMEOUT_S, { error: `must be a number of seconds from 0.1 to ${MAX_TIMEOUT_S}` })
  .describe("Seconds to wait for the Account Server (default 4)")
  .optional();

/** The overview a model reads once, so tool descriptions can stay short. */
export const INSTRUCTIONS =
  `Tools for a Squonk2 Account Server (AS), which manages who may use Squonk2's scientific services and what it costs.

- An Organisation has members (users) and Units. A Unit has members and Products. Every user may have one Personal Unit, kept in the built-in Default Organisation.
- A Product is a paid subscription of a Unit to a Merchant's service (a Data Manager): storage subscriptions have a coin allowance and limit per billing period; project-tier subscriptions have a flavour (EVALUATION, BRONZE, SILVER, GOLD).
- Charges are in coins per billing period, which starts on the Unit's billing day (1-28). Ask for a period with from/until (YYYY-MM-DD, until exclusive) or pbp (0 current, -1 previous, ...).
- Assets are named secrets or settings attached to a scope (a user, Product, Unit, Organisation or GLOBAL) and can be attached to Merchants.
- Ids look like org-<uuid>, unit-<uuid>, product-<uuid>, asset-<uuid>; users are plain usernames; merchants and event streams have integer ids. Find ids with the list tools (get_organisations, get_units, get_available_products, get_available_assets) rather than guessing.
- You act as the user whose credentials this server holds (see get_account). Members may act on their Organisations and Units; admins on everything.
- Every tool returns { success, msg, http_status_code }: msg is the AS's answer, or { error, hint } on failure. http_status_code 0 means no answer came.`;

const HINTS: Readonly<Record<number, string>> = {
  0: "No answer from the Account Server: it may be down or slow; try again, or with a larger timeout_s",
  400: "The Account Server refused the request as invalid: read the error and fix the arguments",
  401:
    "The server's access token is missing, invalid or expired: the operator must fix its credentials",
  403: "The caller is not a member of that Organisation or Unit, or not an admin (see get_account)",
  404:
    "Nothing has that id: list what exists first (get_organisations, get_units, get_available_products, get_available_assets)",
};

/** The annotations of a row: a pure function of its kind. */
export function annotationsFor(row: Operation): ToolAnnotations {
  return {
    title: row.title,
    readOnlyHint: row.kind === "read",
    destructiveHint: row.kind === "delete",
    idempotentHint: row.kind !== "create",
    openWorldHint: true,
  };
}

/** An ApiRv as a tool result: structured, repeated as JSON text, an error when it failed. */
export function toolResult(rv: ApiRv): CallToolResult {
  const withHint = rv.success || HINTS[rv.http_status_code] === undefined || "hint" in rv.msg
    ? rv
    : { ...rv, msg: { ...rv.msg, hint: HINTS[rv.http_status_code] } };
  return {
    content: [{ type: "text", text: JSON.stringify(withHint) }],
    structuredContent: { ...withHint },
    isError: !withHint.success,
  };
}

/**
 * Builds the MCP server: every operation of the table as a tool, plus `get_api_url`.
 *
 * @example
 * ```ts
 * const server = createServer({ api: new AsApi(), tokens: new StaticToken(token), version });
 * await server.connect(new StdioServerTransport());
 * ```
 */
export function createServer(options: ServerOptions): McpServer {
  const { api, tokens } = options;
  const server = new McpServer(
    { name: "squonk2-as-mcp", title: "Squonk2 Account Server", version: options.version },
    { instructions: INSTRUCTIONS, capabilities: { tools: {} } },
  );

  async function call(row: Operation, args: Record<string, unknown>): Promise<CallToolResult> {
    const { timeout_s: timeoutS, ...params } = args;
    let token: string | undefined;
    if (row.token) {
      try {
        token = await tokens.getToken();
      } catch (error) {
        const why = error instanceof CredentialsError ? error.message : "could not get a token";
        return toolResult({
          success: false,
          msg: { error: `Cannot ${row.name}: ${why}` },
          http_status_code: 0,
        });
      }
    }
    const rv = await api.callByName(row.name, params, {
      token,
      timeoutS: typeof timeoutS === "number" ? timeoutS : undefined,
    });
    if (rv.http_status_code === 401 && token) tokens.invalidate(token);
    return toolResult(rv);
  }

  for (const row of OPERATIONS) {
    server.registerTool(row.name, {
      title: row.title,
      description: row.description,
      inputSchema: { ...row.params, timeout_s: TIMEOUT_S },
      outputSchema: API_RV_SHAPE,
      annotations: annotationsFor(row),
    }, (args: Record<string, unknown>) => call(row, args));
  }

  server.registerTool("get_api_url", {
    title: "Get Account Server URL",
    description:
      "Returns the Account Server URL this server uses and whether it verifies TLS certificates. Sends no request (http_status_code 0). Only the operator can change the URL.",
    inputSchema: {},
    outputSchema: API_RV_SHAPE,
    annotations: {
      title: "Get Account Server URL",
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
  }, () => {
    const { url, verifySslCert } = api.getApiUrl();
    return toolResult({
      success: true,
      msg: {
        url: url ?? null,
        verify_ssl_cert: verifySslCert,
        credentials: tokens.kind,
        ...(options.mode ? { mode: options.mode } : {}),
      },
      http_status_code: 0,
    });
  });
  return server;
}
