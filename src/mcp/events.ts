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
  /** The most seconds the whole read may take, opening the socket included (`timeout_s`). */
  timeoutS?: number;
  verifyTls: boolean;
  /** The most bytes of JSON the events may take; reading stops before going over. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** Why a read stopped. */
export type ReadStop =
  | "max_events"
  | "wait_s"
  | "timeout_s"
  | "size_limit"
  | "closed"
  | "cancelled";

/** What one read got. */
export interface ReadOutcome {
  events: StreamEvent[];
  /** Why reading stopped. */
  stop: ReadStop;
  lost: number;
  last: number | undefined;
  /** How many messages were not events in either format (and so were skipped). */
  unparsed: number;
  /** How the service closed the socket, when it did. */
  closed?: { code: number; reason: string };
}

type Finish = Pick<ReadOutcome, "stop" | "closed">;

/** The events of one read, kept within its bounds; once stopped, later messages are ignored. */
class Collector {
  readonly events: StreamEvent[] = [];
  readonly tracker: OrdinalTracker;
  unparsed = 0;
  readonly finished: Promise<Finish>;
  #resolve!: (outcome: Finish) => void;
  #done = false;
  #bytes = 2;
  #options: ReadOptions;

  constructor(options: ReadOptions) {
    this.#options = options;
    const { cursor } = options;
    this.tracker = new OrdinalTracker("from_ordinal" in cursor ? cursor.from_ordinal : undefined);
    this.finished = new Promise((resolve) => this.#resolve = resolve);
  }

  finish(outcome: Finish): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve(outcome);
  }

  receive(text: string): void {
    if (this.#done) return;
    const parsed = parseEvent(text);
    if (!parsed) return void this.unparsed++;
    const before = { last: this.tracker.last, lost: this.tracker.lost };
    if (!this.tracker.accept(parsed)) return;
    const { maxBytes, maxEvents } = this.#options;
    const event = fitted(parsed, maxBytes - 2, this.events.length === 0);
    const size = utf8Bytes(JSON.stringify(event)) + 1;
    if (this.#bytes + size > maxBytes) {
      Object.assign(this.tracker, before);
      return this.finish({ stop: "size_limit" });
    }
    this.#bytes += size;
    this.events.push(event);
    if (this.events.length >= maxEvents) this.finish({ stop: "max_events" });
  }
}

/**
 * Reads events from the socket at `location` until a bound is reached: `maxEvents`, the size
 * limit, `waitS` after the socket opens, or `timeoutS` (if given) from the start, whichever
 * comes first.
 */
export async function readEvents(location: string, options: ReadOptions): Promise<ReadOutcome> {
  const startedAt = Date.now();
  const limitMs = options.timeoutS !== undefined ? options.timeoutS * 1000 : Infinity;
  const collector = new Collector(options);
  const socket: ReadSocket = await openSocket(socketUrl(location, options.cursor), {
    verifyTls: options.verifyTls,
    timeoutMs: Math.min(options.waitS * 1000 + 4000, 10_000, limitMs),
  }, {
    onMessage: (text) => collector.receive(text),
    onClose: (code, reason) => collector.finish({ stop: "closed", closed: { code, reason } }),
  });
  const leftMs = Math.max(0, limitMs - (Date.now() - startedAt));
  const [ms, stop] = leftMs < options.waitS * 1000
    ? [leftMs, "timeout_s" as const]
    : [options.waitS * 1000, "wait_s" as const];
  const timer = setTimeout(() => collector.finish({ stop }), ms);
  const cancel = () => collector.finish({ stop: "cancelled" });
  options.signal?.addEventListener("abort", cancel, { once: true });
  const outcome = await collector.finished;
  clearTimeout(timer);
  options.signal?.removeEventListener("abort", cancel);
  socket.close();
  const { events, tracker, unparsed } = collector;
  return {
    events,
    ...outcome,
    lost: tracker.lost,
    last: events.at(-1)?.ordinal ?? tracker.last,
    unparsed,
  };
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
  wait: { signal?: AbortSignal; timeoutS?: number } = {},
): Promise<{ id: number; location: string; format: string } | ApiRv> {
  const rv = await api.call("get_event_stream", {}, { token, ...wait });
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
  /** The most seconds the whole read may take (`timeout_s`): finding the stream and reading. */
  timeoutS?: number;
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
  const startedAt = Date.now();
  const { signal, timeoutS } = options;
  const stream = await ownStream(api, token, { signal, timeoutS });
  if ("success" in stream) return stream;
  let outcome: ReadOutcome;
  try {
    outcome = await readEvents(stream.location, {
      ...options,
      // What get_event_stream left of timeout_s, never quite nothing.
      timeoutS: timeoutS === undefined
        ? undefined
        : Math.max(timeoutS - (Date.now() - startedAt) / 1000, 0.005),
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
    ...(outcome.unparsed > 0 ? { unparsed: outcome.unparsed } : {}),
    ...(outcome.closed?.reason ? { closed_reason: outcome.closed.reason } : {}),
    ...(outcome.stop === "size_limit" || outcome.stop === "max_events"
      ? { more: "There may be more events: read again with the cursor in `next`" }
      : {}),
  };
}
