/**
 * The caller's event stream in MCP: the `read_event_stream` tool, and for clients that support
 * resources, the stream as a subscribable resource. Both find the stream with the caller's own
 * token (`get_event_stream`) and never connect anywhere a caller names. One MCP session holds at
 * most one subscription; a tool read in the same session borrows its connection and gives it back.
 *
 * @module
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  ErrorCode,
  ListResourcesRequestSchema,
  McpError,
  type ReadResourceRequest,
  ReadResourceRequestSchema,
  type ServerNotification,
  type ServerRequest,
  type SubscribeRequest,
  SubscribeRequestSchema,
  type UnsubscribeRequest,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { AsApi } from "../api/mod.ts";
import type { TokenSource } from "../auth/mod.ts";
import { EventSubscription } from "./event_subscription.ts";
import {
  type Cursor,
  DEFAULT_MAX_EVENTS,
  DEFAULT_WAIT_S,
  MAX_EVENTS,
  MAX_WAIT_S,
  ownStream,
  readEventStream,
} from "./events.ts";
import { DEFAULT_MAX_RESULT_BYTES } from "./limit.ts";
import { credentialsResult, toolResult } from "./result.ts";
import { cleanValue } from "./sanitize.ts";
import { type CallContext, localTool, type Tool } from "./tool.ts";

/** The tool's name. */
export const READ_EVENT_STREAM = "read_event_stream";
/** The URI of the caller's event stream as a resource. */
export const EVENT_STREAM_URI = "squonk2://event-stream";

/** What the event-stream tool and resource need from the server. */
export interface EventToolOptions {
  api: AsApi;
  tokens: TokenSource;
  maxResultBytes?: number;
}

const PARAMS = {
  from_ordinal: z.number().int().min(0).optional().describe("After this ordinal (0: oldest)"),
  from_timestamp: z.number().int().min(1).optional().describe("From this time, ms since 1970"),
  from_datetime: z.string().min(1).optional().describe("From this ISO date-time"),
  max_events: z.number().int().min(1).max(MAX_EVENTS).optional().describe(
    `Default ${DEFAULT_MAX_EVENTS}`,
  ),
  wait_s: z.number().min(0.1).max(MAX_WAIT_S).optional().describe(`Default ${DEFAULT_WAIT_S}`),
};

const DESCRIPTION =
  "Reads the caller's own event stream (charges, changes), oldest first: from one from_ cursor, " +
  "or only new events. msg.next continues; msg.events_lost flags a gap. Reading takes over " +
  "the stream's single connection meanwhile.";

/** The cursor the arguments name, or why they are refused. */
function cursorOf(params: Record<string, unknown>): Cursor | { error: string } {
  const given = (["from_ordinal", "from_timestamp", "from_datetime"] as const)
    .filter((name) => params[name] !== undefined);
  if (given.length > 1) {
    return { error: `give at most one of from_ordinal, from_timestamp, from_datetime` };
  }
  const [name] = given;
  if (name === "from_datetime" && Number.isNaN(Date.parse(String(params.from_datetime)))) {
    return { error: `from_datetime: must be an ISO date-time, e.g. 2026-05-01T09:00:00Z` };
  }
  return name ? { [name]: params[name] } as Cursor : {};
}

/** The token to act with: the caller's own, else the operator's. */
async function tokenOf(
  tokens: TokenSource,
  callerToken: string | undefined,
): Promise<{ token: string } | { error: unknown }> {
  if (callerToken !== undefined) return { token: callerToken };
  try {
    return { token: await tokens.getToken() };
  } catch (error) {
    return { error };
  }
}

/** The caller's event stream in one MCP session: the tool, the resource and its subscription. */
export class EventStreamAccess {
  #options: EventToolOptions;
  #subscription: EventSubscription | undefined;

  /** Access for one server (one session). */
  constructor(options: EventToolOptions) {
    this.#options = options;
  }

  /** The `read_event_stream` tool. */
  tool(): Tool {
    return localTool({
      name: READ_EVENT_STREAM,
      toolset: "event_streams",
      kind: "read",
      title: "Read event stream",
      description: DESCRIPTION,
      params: PARAMS,
      annotations: {
        title: "Read event stream",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
      run: (params, context) => this.#read(params, context),
    });
  }

  async #read(params: Record<string, unknown>, context: CallContext) {
    const maxBytes = this.#options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    const cursor = cursorOf(params);
    if ("error" in cursor) {
      return toolResult({
        success: false,
        msg: { error: `Cannot ${READ_EVENT_STREAM}: invalid input: ${cursor.error}` },
        http_status_code: 0,
      }, { maxBytes });
    }
    const token = await tokenOf(this.#options.tokens, context.callerToken);
    if ("error" in token) return credentialsResult(READ_EVENT_STREAM, token.error, { maxBytes });
    const read = () =>
      readEventStream(this.#options.api, token.token, {
        cursor,
        maxEvents: Number(params.max_events ?? DEFAULT_MAX_EVENTS),
        waitS: Number(params.wait_s ?? DEFAULT_WAIT_S),
        maxBytes,
        signal: context.signal,
      });
    const rv = await (this.#subscription ? this.#subscription.suspend(read) : read());
    return toolResult(rv, { maxBytes });
  }

  /** Offers the stream as a subscribable resource on `server`, closing it with the session. */
  register(server: Server): void {
    server.setRequestHandler(ListResourcesRequestSchema, () => ({
      resources: [{
        uri: EVENT_STREAM_URI,
        name: "event-stream",
        title: "My event stream",
        description: "Events on the caller's Accounts. Subscribe, then read: each read returns " +
          "the events that arrived since the last one.",
        mimeType: "application/json",
      }],
    }));
    server.setRequestHandler(ReadResourceRequestSchema, (request: ReadResourceRequest) => {
      checkUri(request.params.uri);
      const maxBytes = this.#options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
      const msg = this.#subscription
        ? { subscribed: true, ...this.#subscription.read(maxBytes - 1024) }
        : {
          subscribed: false,
          events: [],
          hint: `Subscribe to ${EVENT_STREAM_URI} to collect events, or call ${READ_EVENT_STREAM}`,
        };
      const text = JSON.stringify(cleanValue(msg));
      return { contents: [{ uri: EVENT_STREAM_URI, mimeType: "application/json", text }] };
    });
    server.setRequestHandler(SubscribeRequestSchema, async (
      request: SubscribeRequest,
      extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
    ) => {
      checkUri(request.params.uri);
      if (!this.#subscription) await this.#subscribe(server, extra.authInfo?.token, extra.signal);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (request: UnsubscribeRequest) => {
      checkUri(request.params.uri);
      this.close();
      return {};
    });
    closeWithSession(server, () => this.close());
  }

  async #subscribe(server: Server, callerToken: string | undefined, signal: AbortSignal) {
    const token = await tokenOf(this.#options.tokens, callerToken);
    if ("error" in token) {
      throw new McpError(ErrorCode.InvalidRequest, "Cannot subscribe: no credentials");
    }
    const stream = await ownStream(this.#options.api, token.token, signal);
    if ("success" in stream) {
      throw new McpError(ErrorCode.InvalidRequest, String(stream.msg.error));
    }
    const subscription = new EventSubscription({
      location: stream.location,
      verifyTls: this.#options.api.getApiUrl().verifySslCert,
      onUpdated: () => void server.sendResourceUpdated({ uri: EVENT_STREAM_URI }).catch(() => {}),
    });
    try {
      await subscription.start();
    } catch (error) {
      throw new McpError(
        ErrorCode.InternalError,
        `Cannot subscribe: could not connect to the event stream service: ${
          (error as Error).message
        }`,
      );
    }
    this.#subscription = subscription;
  }

  /** Ends the subscription, closing its socket. */
  close(): void {
    this.#subscription?.close();
    this.#subscription = undefined;
  }
}

function checkUri(uri: string): void {
  if (uri !== EVENT_STREAM_URI) {
    throw new McpError(
      ErrorCode.InvalidParams,
      `Unknown resource "${uri}": try ${EVENT_STREAM_URI}`,
    );
  }
}

/**
 * Runs `close` when the session ends. The server's `onclose` may be set later by its owner
 * (main.ts does); an accessor keeps that owner's callback and still runs this one first.
 */
function closeWithSession(server: Server, close: () => void): void {
  let owner: (() => void) | undefined = server.onclose;
  Object.defineProperty(server, "onclose", {
    configurable: true,
    get: () => () => {
      close();
      owner?.();
    },
    set: (callback: (() => void) | undefined) => owner = callback,
  });
}
