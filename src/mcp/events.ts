/**
 * Reading the caller's event stream: the Account Server's event-stream service delivers events
 * over a WebSocket at the stream's `location` (see squonk2-fastapi-ws-event-stream, protocol
 * versions 2 and 3). This module finds the caller's own stream with `get_event_stream` (never a
 * location anyone supplies), reads from a cursor, and reports the events, where to continue and
 * whether events were lost (a gap in ordinals).
 *
 * @module
 */
import type { ApiRv, AsApi } from "../api/mod.ts";
import { openSocket, type ReadSocket } from "./_socket.ts";

/** The most events one read returns, and the default. */
export const MAX_EVENTS = 1000;
/** The default of `max_events`. */
export const DEFAULT_MAX_EVENTS = 100;
/** The longest a read waits for events, in seconds, and the default. */
export const MAX_WAIT_S = 30;
/** The default of `wait_s`. */
export const DEFAULT_WAIT_S = 2;

/** Where a read starts: after an ordinal, at a time, or (none) with new events only. */
export type Cursor =
  | { from_ordinal: number }
  | { from_timestamp: number }
  | { from_datetime: string }
  | Record<string, never>;

/** One event as a read reports it. */
export interface StreamEvent {
  /** The event's position in the stream: unique and increasing. */
  ordinal: number;
  /** When the stream received it, in milliseconds since the epoch. */
  timestamp: number;
  /** `timestamp` as an ISO date-time. */
  time: string;
  /** e.g. `accountserver.MerchantProcessingCharge`. */
  type: string;
  /** The message: an object, or its text when it is not flat protobuf text. */
  body: unknown;
}

/** An event from one WebSocket message, in either format; undefined when it is neither. */
export function parseEvent(text: string): StreamEvent | undefined {
  if (text.startsWith("{")) {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text);
    } catch {
      return undefined;
    }
    const { ess_ordinal: ordinal, ess_timestamp: timestamp } = message;
    if (typeof ordinal !== "number" || typeof timestamp !== "number") return undefined;
    return event(ordinal, timestamp, String(message.message_type ?? ""), message.message_body);
  }
  const match = /^([^|]*)\|(.*)\|ordinal: (\d+)\|timestamp: (\d+)$/s.exec(text);
  if (!match) return undefined;
  const [, type, body, ordinal, timestamp] = match;
  return event(Number(ordinal), Number(timestamp), type!, protobufFields(body!) ?? body);
}

function event(ordinal: number, timestamp: number, type: string, body: unknown): StreamEvent {
  const time = new Date(timestamp);
  return {
    ordinal,
    timestamp,
    time: Number.isNaN(time.getTime()) ? "" : time.toISOString(),
    type,
    body,
  };
}

const FIELD = /\s*(\w+): ("(?:[^"\\]|\\.)*"|[^\s"{}]+)/y;

/** Flat protobuf text (`name: "x" n: 2 eoc: true`) as an object; undefined when not flat. */
export function protobufFields(text: string): Record<string, unknown> | undefined {
  const fields: Record<string, unknown> = {};
  FIELD.lastIndex = 0;
  let end = 0;
  for (let match = FIELD.exec(text); match; match = FIELD.exec(text)) {
    const [, key, raw] = match as unknown as [string, string, string];
    fields[key] = raw.startsWith('"')
      ? JSON.parse(raw)
      : /^-?\d+(\.\d+)?$/.test(raw)
      ? Number(raw)
      : raw === "true" || raw === "false"
      ? raw === "true"
      : raw;
    end = FIELD.lastIndex;
  }
  return text.slice(end).trim() === "" ? fields : undefined;
}

/**
 * The socket URL for `location` from `cursor`. The service replays the events after
 * `stream_from_ordinal`; it treats 0 as "not given" in its code (though its README says 0 is the
 * first event), so reading from the start asks for everything since the epoch instead.
 */
export function socketUrl(location: string, cursor: Cursor): string {
  const url = new URL(location);
  if ("from_ordinal" in cursor) {
    if (cursor.from_ordinal === 0) url.searchParams.set("stream_from_timestamp", "1");
    else url.searchParams.set("stream_from_ordinal", String(cursor.from_ordinal));
  } else if ("from_timestamp" in cursor) {
    url.searchParams.set("stream_from_timestamp", String(cursor.from_timestamp));
  } else if ("from_datetime" in cursor) {
    url.searchParams.set("stream_from_datetime", cursor.from_datetime);
  }
  return url.href;
}

/**
 * Follows ordinals across messages: drops repeats (an event at or before the last ordinal seen,
 * as a service that replays from the ordinal itself would send) and counts the ordinals skipped.
 */
export class OrdinalTracker {
  /** The last ordinal seen, or undefined before the first. */
  last: number | undefined;
  /** How many events were skipped (lost) so far. */
  lost = 0;

  /** Tracking from `after` (the cursor's ordinal), if known. */
  constructor(after?: number) {
    this.last = after;
  }

  /** Whether `event` is new; counts any gap before it. */
  accept(event: StreamEvent): boolean {
    if (this.last !== undefined && event.ordinal <= this.last) return false;
    if (this.last !== undefined) this.lost += event.ordinal - this.last - 1;
    this.last = event.ordinal;
    return true;
  }
}

/** How one read goes. */
export interface ReadOptions {
  cursor: Cursor;
  maxEvents: number;
  waitS: number;
  verifyTls: boolean;
  /** The most bytes of JSON the events may take; reading stops before going over. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** What one read got. */
export interface ReadOutcome {
  events: StreamEvent[];
  /** Why reading stopped. */
  stop: "max_events" | "wait_s" | "size_limit" | "closed" | "cancelled";
  lost: number;
  last: number | undefined;
  /** How the service closed the socket, when it did. */
  closed?: { code: number; reason: string };
}

/** Reads events from the socket at `location` until a bound is reached. */
export async function readEvents(location: string, options: ReadOptions): Promise<ReadOutcome> {
  const tracker = new OrdinalTracker(
    "from_ordinal" in options.cursor ? options.cursor.from_ordinal : undefined,
  );
  const events: StreamEvent[] = [];
  let bytes = 2;
  let finish!: (outcome: Pick<ReadOutcome, "stop" | "closed">) => void;
  const finished = new Promise<Pick<ReadOutcome, "stop" | "closed">>((r) => finish = r);
  const socket: ReadSocket = await openSocket(socketUrl(location, options.cursor), {
    verifyTls: options.verifyTls,
    timeoutMs: Math.min(options.waitS * 1000 + 4000, 10_000),
  }, {
    onMessage(text) {
      const parsed = parseEvent(text);
      const before = { last: tracker.last, lost: tracker.lost };
      if (!parsed || !tracker.accept(parsed)) return;
      const event = fitted(parsed, options.maxBytes - 2, events.length === 0);
      const size = utf8Bytes(JSON.stringify(event)) + 1;
      if (bytes + size > options.maxBytes) {
        Object.assign(tracker, before);
        return finish({ stop: "size_limit" });
      }
      bytes += size;
      events.push(event);
      if (events.length >= options.maxEvents) finish({ stop: "max_events" });
    },
    onClose: (code, reason) => finish({ stop: "closed", closed: { code, reason } }),
  });
  const timer = setTimeout(() => finish({ stop: "wait_s" }), options.waitS * 1000);
  const cancel = () => finish({ stop: "cancelled" });
  options.signal?.addEventListener("abort", cancel, { once: true });
  const outcome = await finished;
  clearTimeout(timer);
  options.signal?.removeEventListener("abort", cancel);
  socket.close();
  return { events, ...outcome, lost: tracker.lost, last: events.at(-1)?.ordinal ?? tracker.last };
}

const encoder = new TextEncoder();

function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/**
 * `event`, or when it alone would not fit in `maxBytes` and nothing was read before it, the
 * event with its body replaced by a note: a read must always make progress.
 */
function fitted(event: StreamEvent, maxBytes: number, first: boolean): StreamEvent {
  const size = utf8Bytes(JSON.stringify(event));
  if (!first || size <= maxBytes) return event;
  return { ...event, body: `(left out: the event takes ${size} bytes, over the result limit)` };
}

/** The caller's own event stream, from `get_event_stream` with their token; or a failed ApiRv. */
export async function ownStream(
  api: AsApi,
  token: string | undefined,
  signal?: AbortSignal,
): Promise<{ id: number; location: string; format: string } | ApiRv> {
  const rv = await api.call("get_event_stream", {}, { token, signal });
  if (!rv.success) {
    const why = rv.http_status_code === 404
      ? "you have no event stream: create one with create_event_stream"
      : String(rv.msg.error ?? "").replace(/^Cannot get_event_stream: /, "");
    return { ...rv, msg: { error: `Cannot read_event_stream: ${why}` } };
  }
  const { id, location, format } = rv.msg;
  if (typeof location !== "string" || !/^wss?:\/\//.test(location)) {
    return failure("the Account Server gave no WebSocket location for your event stream");
  }
  return { id: Number(id), location, format: String(format ?? "") };
}

function failure(why: string): ApiRv {
  return {
    success: false,
    msg: { error: `Cannot read_event_stream: ${why}` },
    http_status_code: 0,
  };
}

/** What `read_event_stream` takes, already checked. */
export interface ReadArgs {
  cursor: Cursor;
  maxEvents: number;
  waitS: number;
}

/**
 * Reads the caller's event stream: finds it with their token, reads from the cursor within the
 * bounds, and answers an ApiRv whose `msg` holds the events, where to continue, and any loss.
 */
export async function readEventStream(
  api: AsApi,
  token: string | undefined,
  options: ReadArgs & { maxBytes: number; signal?: AbortSignal },
): Promise<ApiRv> {
  const stream = await ownStream(api, token, options.signal);
  if ("success" in stream) return stream;
  const startedAt = Date.now();
  let outcome: ReadOutcome;
  try {
    outcome = await readEvents(stream.location, {
      ...options,
      verifyTls: api.getApiUrl().verifySslCert,
      // Room for everything around the events.
      maxBytes: Math.max(1024, options.maxBytes - 1024),
    });
  } catch (error) {
    return failure(`could not connect to the event stream service: ${(error as Error).message}`);
  }
  const refused = outcome.stop === "closed" && outcome.events.length === 0 &&
    outcome.closed!.reason !== "";
  if (refused) {
    return failure(`the event stream service closed the connection: "${outcome.closed!.reason}"`);
  }
  return { success: true, msg: readMsg(stream, outcome, startedAt), http_status_code: 200 };
}

function readMsg(
  stream: { id: number; format: string },
  outcome: ReadOutcome,
  startedAt: number,
): Record<string, unknown> {
  const next = outcome.last !== undefined
    ? { from_ordinal: outcome.last }
    : { from_timestamp: startedAt };
  return {
    event_stream_id: stream.id,
    format: stream.format,
    count: outcome.events.length,
    events: outcome.events,
    next,
    events_lost: outcome.lost > 0,
    ...(outcome.lost > 0 ? { lost_count: outcome.lost } : {}),
    stopped_by: outcome.stop,
    ...(outcome.closed?.reason ? { closed_reason: outcome.closed.reason } : {}),
    ...(outcome.stop === "size_limit" || outcome.stop === "max_events"
      ? { more: "There may be more events: read again with the cursor in `next`" }
      : {}),
  };
}
