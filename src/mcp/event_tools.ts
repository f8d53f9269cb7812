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
import type { TokenSource, TokenWait } from "../auth/mod.ts";
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
  /** Each request has a server of its own, closed after it: nothing can be subscribed to. */
  stateless?: boolean;
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
  if (name === "from_datetime" && !isZonedDateTime(String(params.from_datetime))) {
    return {
      error: `from_datetime: must be an ISO 8601 date-time with a zone (Z or ±hh:mm), e.g. ` +
        `2026-05-01T09:00:00Z or 2026-05-01T10:00:00+01:00; got "${params.from_datetime}"`,
    };
  }
  return name ? { [name]: params[name] } as Cursor : {};
}

const ZONED_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Whether `text` is an ISO 8601 date-time with a zone, naming a real day and time. */
function isZonedDateTime(text: string): boolean {
  const match = ZONED_DATE_TIME.exec(text);
  if (!match || Number.isNaN(Date.parse(text))) return false;
  const [, year, month, day, hour, minute] = match.map(Number) as number[];
  // Date.parse rolls 2026-02-30 over to March; the day must exist in its month.
  const days = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  return month! >= 1 && month! <= 12 && day! >= 1 && day! <= days && hour! <= 23 && minute! <= 59;
}

/** The token to act with: the caller's own, else the operator's. */
async function tokenOf(
  tokens: TokenSource,
  callerToken: string | undefined,
  wait: TokenWait = {},
): Promise<{ token: string } | { error: unknown }> {
  if (callerToken !== undefined) return { token: callerToken };
  try {
    return { token: await tokens.getToken(wait) };
  } catch (error) {
    return { error };
  }
}

/** What the SDK passes a request handler besides the request. */
type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** The caller's event stream in one MCP session: the tool, the resource and its subscription. */
export class EventStreamAccess {
  #options: EventToolOptions;
  /** The subscription, stored while it is being made so that parallel subscribes share it. */
  #subscription: Promise<EventSubscription> | undefined;

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
    const { signal, timeoutS } = context;
    const startedAt = Date.now();
    const token = await tokenOf(this.#options.tokens, context.callerToken, { signal, timeoutS });
    if ("error" in token) return credentialsResult(READ_EVENT_STREAM, token.error, { maxBytes });
    const read = () =>
      readEventStream(this.#options.api, token.token, {
        cursor,
        maxEvents: Number(params.max_events ?? DEFAULT_MAX_EVENTS),
        waitS: Number(params.wait_s ?? DEFAULT_WAIT_S),
        // What the token left of timeout_s, never quite nothing.
        timeoutS: timeoutS === undefined
          ? undefined
          : Math.max(timeoutS - (Date.now() - startedAt) / 1000, 0.005),
        maxBytes,
        signal,
      });
    const subscription = await this.#current();
    const rv = await (subscription ? subscription.suspend(read) : read());
    return toolResult(rv, { maxBytes });
  }

  /** Offers the stream as a subscribable resource on `server`, closing it with the session. */
  register(server: Server): void {
    server.setRequestHandler(ListResourcesRequestSchema, () => ({
      resources: [{
        uri: EVENT_STREAM_URI,
        name: "event-stream",
        title: "My event stream",
        description: this.#options.stateless
          ? `Events on the caller's Accounts: this server is stateless, so it holds no ` +
            `subscription; call ${READ_EVENT_STREAM} instead.`
          : "Events on the caller's Accounts. Subscribe, then read: each read returns " +
            "the events that arrived since the last one.",
        mimeType: "application/json",
      }],
    }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request: ReadResourceRequest) => {
      checkUri(request.params.uri);
      const maxBytes = this.#options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
      const subscription = await this.#current();
      const msg = subscription ? { subscribed: true, ...subscription.read(maxBytes - 1024) } : {
        subscribed: false,
        events: [],
        hint: this.#options.stateless
          ? `Call ${READ_EVENT_STREAM}: this server is stateless, so it cannot hold a subscription`
          : `Subscribe to ${EVENT_STREAM_URI} to collect events, or call ${READ_EVENT_STREAM}`,
      };
      const text = JSON.stringify(cleanValue(msg));
      return { contents: [{ uri: EVENT_STREAM_URI, mimeType: "application/json", text }] };
    });
    server.setRequestHandler(SubscribeRequestSchema, (request: SubscribeRequest, extra: Extra) => {
      checkUri(request.params.uri);
      return this.#subscribeOnce(server, extra).then(() => ({}));
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (request: UnsubscribeRequest) => {
      checkUri(request.params.uri);
      this.close();
      return {};
    });
    closeWithSession(server, () => this.close());
  }

  /**
   * Subscribes unless a subscription is made or being made: the pending one is stored before
   * anything is awaited, so subscribes that arrive together share one socket.
   */
  async #subscribeOnce(server: Server, extra: Extra): Promise<void> {
    if (this.#options.stateless) {
      throw new McpError(
        ErrorCode.InvalidRequest,
        "Cannot subscribe: this server is stateless (each request is answered by a server of " +
          `its own), so it cannot send updates: call ${READ_EVENT_STREAM} instead`,
      );
    }
    const pending = this.#subscription ??= this.#subscribe(server, extra);
    try {
      await pending;
    } catch (error) {
      if (this.#subscription === pending) this.#subscription = undefined;
      throw error;
    }
  }

  async #subscribe(server: Server, extra: Extra): Promise<EventSubscription> {
    const token = await tokenOf(this.#options.tokens, extra.authInfo?.token);
    if ("error" in token) {
      throw new McpError(ErrorCode.InvalidRequest, "Cannot subscribe: no credentials");
    }
    const stream = await ownStream(this.#options.api, token.token, { signal: extra.signal });
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
    return subscription;
  }

  /** The subscription, once made; undefined when there is none or it could not be made. */
  #current(): Promise<EventSubscription | undefined> {
    return this.#subscription?.catch(() => undefined) ?? Promise.resolve(undefined);
  }

  /** Ends the subscription, closing its socket (once it is open, if it is still opening). */
  close(): void {
    const pending = this.#subscription;
    this.#subscription = undefined;
    pending?.then((subscription) => subscription.close(), () => {});
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
