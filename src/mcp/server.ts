/**
 * The MCP server, on the SDK's low-level `Server`: `tools/list` and `tools/call` are both driven
 * by one list of tools, built from the operation table plus `get_api_url`. Each call's arguments
 * are checked once, strictly: an unknown argument is refused by name, with the nearest valid
 * name, and nothing is sent. There is deliberately no tool that changes the Account Server URL:
 * the operator alone decides where credentials are sent.
 *
 * @module
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  type CallToolResult,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type AsApi, nearestName } from "../api/mod.ts";
import type { TokenSource } from "../auth/mod.ts";
import { Activity } from "./activity.ts";
import { listTools, MAX_TIMEOUT_S, MIN_TIMEOUT_S, withoutMentions } from "./listing.ts";
import { notSent, operationTools, refusal, TIMEOUT_PARAM } from "./operation_tools.ts";
import { toolResult } from "./result.ts";
import { EventStreamAccess, READ_EVENT_STREAM } from "./event_tools.ts";
import { ALL_TOOLS, LOCAL_TOOLS, selectTools } from "./selection.ts";
import { localTool, type Prepared, type Tool } from "./tool.ts";
import { type Dispatch, programTool, RUN_PROGRAM } from "../codemode/tool.ts";

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
  /** `content_file` uploads larger than this many bytes are refused (default 1 MiB). */
  maxUploadBytes?: number;
  /** HTTP without sessions: each request has a server of its own, so nothing is subscribable. */
  stateless?: boolean;
}

export { MAX_TIMEOUT_S };

/** The overview a model reads once, so tool descriptions can stay short. */
export const INSTRUCTIONS =
  `Tools for a Squonk2 Account Server (AS), which manages who may use Squonk2's scientific services and what it costs.

- An Organisation has members (users) and Units. A Unit has members and Products. Every user may have one Personal Unit, kept in the built-in Default Organisation.
- A Product is a paid subscription of a Unit to a Merchant's service (a Data Manager): storage subscriptions have a coin allowance and limit per billing period; project-tier subscriptions have a flavour (EVALUATION, BRONZE, SILVER, GOLD).
- Charges are in coins per billing period, which starts on the Unit's billing day (1-28). Ask for a period with from/until (YYYY-MM-DD, until exclusive) or pbp (0 current, -1 previous, ...).
- Assets are named secrets or settings attached to a scope (a user, Product, Unit, Organisation or GLOBAL) and can be attached to Merchants.
- Ids look like org-<uuid>, unit-<uuid>, product-<uuid>, asset-<uuid>; users are plain usernames; merchants and event streams have integer ids. Find ids with the list tools (get_organisations, get_available_units, get_available_products, get_available_assets) rather than guessing.
- You act as the user whose credentials this server holds (see get_account). Members may act on their Organisations and Units; admins on everything.
- Every tool takes an optional timeout_s: seconds to wait for the AS (default 4, from ${MIN_TIMEOUT_S} to ${MAX_TIMEOUT_S}). Every tool refuses arguments it does not list.
- Every tool returns { success, msg, http_status_code }: msg is the AS's answer, or { error, hint } on failure. http_status_code 0 means no answer came (or the request was refused before sending).
- For a question that takes many calls, run_program runs one short program that makes them and returns only the answer.
- What happened lately on your accounts: read_event_stream.`;

const INSTRUCTIONS_BY_ABSENT = new Map<string, string>();

/** The instructions for a selection, made once per selection (HTTP builds a server a session). */
function instructionsWithout(absent: readonly string[]): string {
  const key = absent.join(",");
  let text = INSTRUCTIONS_BY_ABSENT.get(key);
  if (text === undefined) {
    text = withoutMentions(INSTRUCTIONS, absent);
    INSTRUCTIONS_BY_ABSENT.set(key, text);
  }
  return text;
}

/**
 * `tools/call` as the SDK receives it, with `arguments` passed on untouched: the SDK's own
 * schema rebuilds the object and so loses a `__proto__` key that the strict check must refuse.
 */
const RAW_CALL_SCHEMA = z.object({
  method: z.literal("tools/call"),
  params: z.looseObject({ name: z.string(), arguments: z.unknown().optional() }),
});

type RawCall = z.infer<typeof RAW_CALL_SCHEMA>;

/** What the SDK passes a request handler besides the request. */
type CallExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

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

/** `get_api_url`: where requests go, answered locally. */
function apiUrlTool(options: ServerOptions): Tool {
  return localTool({
    name: "get_api_url",
    toolset: "server",
    kind: "read",
    title: "Get Account Server URL",
    description:
      "Returns the Account Server URL this server uses and whether it verifies TLS certificates. Sends no request (http_status_code 0). Only the operator can change the URL.",
    params: {},
    annotations: {
      title: "Get Account Server URL",
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
    run() {
      const { url, verifySslCert } = options.api.getApiUrl();
      return Promise.resolve(toolResult({
        success: true,
        msg: {
          url: url ?? null,
          verify_ssl_cert: verifySslCert,
          credentials: options.tokens.kind,
          ...(options.mode ? { mode: options.mode } : {}),
        },
        http_status_code: 0,
      }));
    },
  });
}

/** Every tool the server can offer, in table order, then `get_api_url` and `read_event_stream`. */
function allTools(options: ServerOptions, events: EventStreamAccess): Tool[] {
  return [...operationTools(options), apiUrlTool(options), events.tool()];
}

/** The `timeout_s` argument, checked: seconds, or the reason it is refused. */
function timeoutOf(value: unknown): { timeoutS?: number } | { error: string } {
  if (value === undefined) return {};
  if (typeof value === "number" && value >= MIN_TIMEOUT_S && value <= MAX_TIMEOUT_S) {
    return { timeoutS: value };
  }
  return {
    error:
      `${TIMEOUT_PARAM}: must be a number of seconds from ${MIN_TIMEOUT_S} to ${MAX_TIMEOUT_S}`,
  };
}

/** Checks a call's arguments once: the work to run and its timeout, or why it is refused. */
function prepareCall(
  tool: Tool,
  args: unknown,
): { work: Prepared; timeoutS?: number } | { error: string } {
  if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) {
    return { error: `Cannot ${tool.name}: the arguments must be an object of named parameters` };
  }
  const { [TIMEOUT_PARAM]: timeout, ...rest } = (args ?? {}) as Record<string, unknown>;
  // A spread copies an own `__proto__` key as a plain property, so the check still sees it.
  const timeoutS = timeoutOf(timeout);
  if ("error" in timeoutS) {
    return { error: `Cannot ${tool.name}: invalid input: ${timeoutS.error}` };
  }
  const work = tool.prepare(rest);
  return typeof work === "function" ? { work, ...timeoutS } : work;
}

/** The result for a tool name the server does not offer. */
function unknownTool(name: string, offered: ReadonlyMap<string, Tool>): CallToolResult {
  const near = nearestName(name, [...offered.keys()]);
  const why = ALL_TOOLS.has(name)
    ? "this server does not offer it (the operator's tool selection leaves it out)"
    : `no such tool${near ? `; did you mean ${near}?` : ""}`;
  return toolResult(refusal(name, why));
}

/**
 * Builds the MCP server: the selected tools of the operation table, plus `get_api_url`.
 *
 * @example
 * ```ts
 * const server = createServer({ api: new AsApi(), tokens: new StaticToken(token), version });
 * await server.connect(new StdioTransport());
 * ```
 */
export function createServer(options: ServerOptions): Server {
  const selected = new Set(options.tools ?? selectTools());
  const events = new EventStreamAccess(options);
  const offered = new Map(
    allTools(options, events).filter((t) => selected.has(t.name)).map((t) => [t.name, t]),
  );
  // run_program joins the offered tools below, once `dispatch` exists to give it.
  const absent = [...ALL_TOOLS.keys()].filter((name) =>
    !offered.has(name) && !(name === RUN_PROGRAM && selected.has(name))
  );
  const server = new Server(
    { name: "squonk2-as-mcp", title: "Squonk2 Account Server", version: options.version },
    {
      instructions: instructionsWithout(absent),
      capabilities: offered.has(READ_EVENT_STREAM)
        ? { tools: {}, resources: options.stateless ? {} : { subscribe: true } }
        : { tools: {} },
    },
  );
  if (offered.has(READ_EVENT_STREAM)) events.register(server);
  const activity = options.activity ?? new Activity();
  const dispatch: Dispatch = (name, args, context) => {
    const tool = offered.get(name);
    if (!tool) return Promise.resolve(unknownTool(name, offered));
    const prepared = prepareCall(tool, args);
    if ("error" in prepared) return Promise.resolve(toolResult(notSent(prepared.error)));
    return activity.track(() => prepared.work({ ...context, timeoutS: prepared.timeoutS }));
  };
  if (selected.has(RUN_PROGRAM)) {
    // The program's `as` calls come back through `dispatch`: the very path of a tools/call.
    const operations = [...offered.values()].filter((t) =>
      ALL_TOOLS.get(t.name) && !LOCAL_TOOLS[t.name]
    );
    offered.set(RUN_PROGRAM, programTool(operations.map((t) => t.name), dispatch, options));
  }
  const listing = listTools([...offered.values()], ALL_TOOLS.keys());
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listing }));
  server.setRequestHandler(RAW_CALL_SCHEMA, (request: RawCall, extra: CallExtra) => {
    const signal = AbortSignal.any([extra.signal, activity.signal]);
    return dispatch(request.params.name, request.params.arguments, {
      signal,
      callerToken: extra.authInfo?.token,
      callerId: typeof extra.authInfo?.extra?.caller === "string"
        ? extra.authInfo.extra.caller
        : undefined,
      confirm: (message, also) =>
        confirm(server, message, {
          signal: also ? AbortSignal.any([signal, also]) : signal,
          relatedRequestId: extra.requestId,
        }),
    });
  });
  return server;
}

/**
 * Asks the user to confirm, where the client can ask; true to go ahead. The question travels on
 * the call's own response stream (`relatedRequestId`), which is open while the call is: over
 * HTTP it reaches the caller at once even with no GET stream, and only the caller.
 */
async function confirm(
  server: Server,
  message: string,
  options: { signal: AbortSignal; relatedRequestId: string | number },
): Promise<boolean> {
  if (options.signal.aborted) return false;
  if (!server.getClientCapabilities()?.elicitation) return true;
  try {
    const answer = await server.elicitInput({ message, requestedSchema: CONFIRM_SCHEMA }, options);
    return answer.action === "accept" && answer.content?.confirm === true;
  } catch {
    return false;
  }
}
