/**
 * The MCP server: one tool per row of the operation table, registered in one loop, each
 * returning the operation's ApiRv as structured output. There is deliberately no tool that
 * changes the Account Server URL: the operator alone decides where credentials are sent.
 *
 * @module
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  type CallToolResult,
  ListToolsRequestSchema,
  type ToolAnnotations,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type AsApi, type Operation, OPERATIONS, pathParams } from "../api/mod.ts";
import { CredentialsError, type TokenSource } from "./credentials.ts";
import { resolveUpload } from "./files.ts";
import {
  API_RV_JSON_SCHEMA,
  inputJsonSchema,
  type JsonSchema,
  type ListedTool,
} from "./listing.ts";
import { selectTools } from "./selection.ts";
import { Activity } from "./activity.ts";
import { toolResult } from "./result.ts";

/** What the server is built from. */
export interface ServerOptions {
  api: AsApi;
  /** The operator's credentials, used when a request brings no token of its own. */
  tokens: TokenSource;
  version: string;
  /** Said by `get_api_url`, e.g. "embedded stub (demo)". */
  mode?: string;
  /** The tools to offer (default: all); see `selectTools`. */
  tools?: readonly string[];
  /** The real path of the only folder `content_file` may read from; none: uploads refused. */
  fileRoot?: string;
  /** Counts tool calls in flight, so a shutdown can wait for them. */
  activity?: Activity;
  /** Results larger than this many bytes of JSON are cut (default 64 KiB). */
  maxResultBytes?: number;
}

/** What the SDK passes a tool callback besides its arguments, as far as this server uses it. */
interface CallExtra {
  signal: AbortSignal;
  authInfo?: { token: string };
}

/** The longest `timeout_s` a tool call may ask for. */
export const MAX_TIMEOUT_S = 60;

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
- Every tool takes an optional timeout_s: seconds to wait for the AS (default 4, at most 60).
- Every tool returns { success, msg, http_status_code }: msg is the AS's answer, or { error, hint } on failure. http_status_code 0 means no answer came (or the request was refused before sending).`;

const LISTED_SCHEMAS = new Map<string, JsonSchema>();

/** A tool's listed input schema, converted once per process (HTTP makes a server per session). */
function listedInputSchema(name: string, shape: z.ZodRawShape): JsonSchema {
  let schema = LISTED_SCHEMAS.get(name);
  if (!schema) {
    schema = inputJsonSchema(shape);
    LISTED_SCHEMAS.set(name, schema);
  }
  return schema;
}

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

function refused(name: string, why: string): CallToolResult {
  return toolResult({
    success: false,
    msg: { error: `Cannot ${name}: ${why}` },
    http_status_code: 0,
  });
}

const CONFIRM_SCHEMA = {
  type: "object" as const,
  properties: {
    confirm: {
      type: "boolean" as const,
      title: "Go ahead",
      description: "Tick to confirm; this cannot be undone",
    },
  },
  required: ["confirm"],
};

/** "Delete unit unit-…" / "Remove user from unit unit-…, user \"bob\"": what a delete acts on. */
function describeTarget(row: Operation, params: Record<string, unknown>): string {
  const names = pathParams(row);
  const what = names.map((n) => `${n.replace(/_id$/, "")} "${params[n]}"`).join(", ");
  return what ? `${row.title}: ${what}` : row.title;
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
  const offered = new Set(options.tools ?? selectTools());
  const activity = options.activity ?? new Activity();
  const server = new McpServer(
    { name: "squonk2-as-mcp", title: "Squonk2 Account Server", version: options.version },
    { instructions: INSTRUCTIONS, capabilities: { tools: {} } },
  );

  /** Asks the user to confirm a delete, where the client can ask; true to go ahead. */
  async function confirmed(row: Operation, params: Record<string, unknown>, signal: AbortSignal) {
    if (!server.server.getClientCapabilities()?.elicitation) return true;
    try {
      const answer = await server.server.elicitInput({
        message: `${describeTarget(row, params)}. This cannot be undone. Go ahead?`,
        requestedSchema: CONFIRM_SCHEMA,
      }, { signal });
      return answer.action === "accept" && answer.content?.confirm === true;
    } catch {
      return false;
    }
  }

  async function call(
    row: Operation,
    args: Record<string, unknown>,
    extra: CallExtra,
  ): Promise<CallToolResult> {
    const { timeout_s: timeoutS, ...params } = args;
    if (typeof params.content_file === "string") {
      const upload = await resolveUpload(options.fileRoot, params.content_file);
      if ("error" in upload) return refused(row.name, `content_file: ${upload.error}`);
      params.content_file = upload.path;
    }
    let token = extra.authInfo?.token;
    const own = token === undefined;
    if (row.token && own) {
      try {
        token = await tokens.getToken();
      } catch (error) {
        const why = error instanceof CredentialsError ? error.message : "could not get a token";
        return refused(row.name, why);
      }
    }
    if (row.kind === "delete" && !(await confirmed(row, params, extra.signal))) {
      return refused(row.name, "the user did not confirm; nothing was sent");
    }
    const send = (withToken: string | undefined) =>
      api.callByName(row.name, params, {
        token: row.token ? withToken : undefined,
        timeoutS: typeof timeoutS === "number" ? timeoutS : undefined,
        signal: AbortSignal.any([extra.signal, activity.signal]),
      });
    let rv = await send(token);
    if (rv.http_status_code === 401 && own && token) {
      tokens.invalidate(token);
      // A refused token was not used to change anything, but only a read is sent again: a tool
      // call reaches the Account Server with a change at most once, whatever happens.
      if (row.kind === "read" && tokens.renewable) {
        const renewed = await tokens.getToken().catch(() => undefined);
        if (renewed) rv = await send(renewed);
      }
    }
    return toolResult(rv, options.maxResultBytes);
  }

  const listed: ListedTool[] = [];
  const register = (
    name: string,
    config: {
      title: string;
      description: string;
      inputSchema: z.ZodRawShape;
      annotations: ToolAnnotations;
    },
    callback: (args: Record<string, unknown>, extra: CallExtra) => Promise<CallToolResult>,
  ) => {
    // No outputSchema here: the listing declares it, and toolResult builds every result in that
    // shape, so the SDK's check of each result against it would only repeat the work.
    server.registerTool(name, {
      ...config,
      inputSchema: { ...config.inputSchema, timeout_s: TIMEOUT_S },
    }, callback);
    // Listed without a tool-level title: annotations.title carries it, once.
    listed.push({
      name,
      description: config.description,
      inputSchema: listedInputSchema(name, config.inputSchema),
      outputSchema: API_RV_JSON_SCHEMA,
      annotations: config.annotations,
    });
  };

  for (const row of OPERATIONS) {
    if (!offered.has(row.name)) continue;
    register(row.name, {
      title: row.title,
      description: row.description,
      inputSchema: row.params,
      annotations: annotationsFor(row),
    }, (args, extra) => activity.track(() => call(row, args, extra)));
  }

  if (offered.has("get_api_url")) {
    register("get_api_url", {
      title: "Get Account Server URL",
      description:
        "Returns the Account Server URL this server uses and whether it verifies TLS certificates. Sends no request (http_status_code 0). Only the operator can change the URL.",
      inputSchema: {},
      annotations: {
        title: "Get Account Server URL",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    }, () => {
      const { url, verifySslCert } = api.getApiUrl();
      return Promise.resolve(toolResult({
        success: true,
        msg: {
          url: url ?? null,
          verify_ssl_cert: verifySslCert,
          credentials: tokens.kind,
          ...(options.mode ? { mode: options.mode } : {}),
        },
        http_status_code: 0,
      }));
    });
  }

  // The SDK would convert every zod schema on every tools/list; the compact listing is made once.
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
  return server;
}
