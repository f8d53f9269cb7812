/**
 * The stub's event-stream service: the WebSocket side of the Account Server's event streams, as
 * the real service (squonk2-fastapi-ws-event-stream, protocol versions 2 and 3) serves it.
 *
 * - Each stream keeps its events in order; ordinals start at 1 and `ess_timestamp` is
 *   milliseconds since the epoch, both strictly increasing.
 * - `JSON_STRING` streams send `{message_type, message_body, ess_ordinal, ess_timestamp}`;
 *   `PROTOCOL_STRING` streams send `<type>|<body as protobuf text>|ordinal: N|timestamp: T`.
 * - History: exactly one of `stream_from_ordinal` (events after that ordinal; 0 is the first),
 *   `stream_from_timestamp` (ms) or `stream_from_datetime` (ISO; UTC unless it says otherwise)
 *   as a query parameter; none gives only new events; more than one closes the socket with a
 *   reason (code 1002), as does a value that is not a number.
 * - An unknown uuid closes the socket (code 1000, with a reason); a new connection to a stream
 *   replaces the older one, which is closed.
 *
 * @module
 */
import type { Action, EventStream, StubState } from "./_state.ts";

/** One event of a stream, as the service holds it. */
export interface StubEvent {
  ordinal: number;
  /** Milliseconds since the epoch, as the backing stream stamps it. */
  timestamp: number;
  /** e.g. `accountserver.MerchantProcessingCharge`. */
  type: string;
  /** The message; its `timestamp` is an ISO date-time. */
  body: Record<string, unknown>;
}

/** The processing-charge type of squonk2-protobuf, as the event stream names it. */
export const PROCESSING_CHARGE = "accountserver.MerchantProcessingCharge";
/** The stub's own message for a change it applied (the audit trail's action). */
export const STUB_ACTION = "stub.Action";

const CURSORS = ["stream_from_ordinal", "stream_from_timestamp", "stream_from_datetime"] as const;

type Cursor = { after: number } | { since: number } | undefined;

/** The event-stream service of one stub. */
export class StubEventStreams {
  #state: StubState;
  #logs = new Map<number, StubEvent[]>();
  #ordinals = new Map<number, number>();
  #sockets = new Map<number, WebSocket>();
  #connections = new Map<number, number>();
  #lastTimestamp = 0;
  #authCode = 1000;

  /** The service for `state`'s streams; it hears every change the state records. */
  constructor(state: StubState) {
    this.#state = state;
    state.onRecord = (action) => this.#onAction(action);
  }

  /** Whether `path` is a socket path of this service. */
  static matches(path: string): boolean {
    return /^\/event-stream\/[^/]+$/.test(path);
  }

  /** Accepts a WebSocket at `/event-stream/<uuid>` and serves it. */
  connect(request: Request): Response {
    const url = new URL(request.url);
    const uuid = decodeURIComponent(url.pathname.split("/").at(-1)!);
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => this.#open(socket, uuid, url.searchParams);
    return response;
  }

  /** The events stream `id` still holds, oldest first. */
  events(id: number): readonly StubEvent[] {
    return this.#logs.get(id) ?? [];
  }

  /** How many connections stream `id` has accepted so far. */
  connections(id: number): number {
    return this.#connections.get(id) ?? 0;
  }

  /** Whether stream `id` has a connection open now. */
  connected(id: number): boolean {
    return this.#sockets.get(id)?.readyState === WebSocket.OPEN;
  }

  /** Adds an event to stream `id` and sends it to the stream's connection, if any. */
  inject(id: number, type: string, body: Record<string, unknown>): StubEvent {
    const ordinal = (this.#ordinals.get(id) ?? 0) + 1;
    this.#ordinals.set(id, ordinal);
    this.#lastTimestamp = Math.max(Date.now(), this.#lastTimestamp + 1);
    const event = { ordinal, timestamp: this.#lastTimestamp, type, body };
    const log = this.#logs.get(id) ?? [];
    log.push(event);
    this.#logs.set(id, log);
    const socket = this.#sockets.get(id);
    const stream = this.#state.streams.get(id);
    if (socket?.readyState === WebSocket.OPEN && stream) socket.send(encode(event, stream.format));
    return event;
  }

  /** Sends `text` as it is to stream `id`'s connection, as a faulty service might; whether sent. */
  sendRaw(id: number, text: string): boolean {
    const socket = this.#sockets.get(id);
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(text);
    return true;
  }

  /** Forgets the oldest `count` events of stream `id`, as a stream's retention limit does. */
  expire(id: number, count: number): void {
    this.#logs.get(id)?.splice(0, count);
  }

  /** Closes stream `id`'s connection abnormally (code 1011), as a failing service would. */
  drop(id: number): void {
    this.#sockets.get(id)?.close(1011, "The event stream service dropped the connection");
  }

  /** A Merchant's processing charge to `productId`, sent to the streams of its Unit's users. */
  charge(productId: string, fields: { coins: string; name?: string; user?: string }): void {
    const product = this.#state.products.get(productId);
    if (!product) throw new Error(`Unknown product "${productId}"`);
    const unit = this.#state.units.get(product.unit_id)!;
    const merchant = this.#state.merchants.get(1)!;
    const body = {
      timestamp: this.#state.now().toISOString(),
      merchant_kind: merchant.kind,
      merchant_name: merchant.name,
      merchant_id: merchant.id,
      auth_code: ++this.#authCode,
      name: fields.name ?? "job",
      coins: fields.coins,
      sqn: 1,
      eoc: true,
      ...(fields.user ? { user: fields.user } : {}),
      product: product.id,
      unit: unit.id,
      organisation: unit.org_id,
    };
    this.#publish(this.#concerned(unit.org_id, unit.id, fields.user), PROCESSING_CHARGE, body);
  }

  /** Closes every connection. */
  closeAll(): void {
    for (const socket of this.#sockets.values()) socket.close(1001, "The service is stopping");
    this.#sockets.clear();
  }

  #open(socket: WebSocket, uuid: string, query: URLSearchParams): void {
    const cursor = parseCursor(query);
    if (typeof cursor === "string") return socket.close(1002, cursor);
    const stream = [...this.#state.streams.values()]
      .find((s) => s.location.endsWith(`/event-stream/${uuid}`));
    if (!stream) return socket.close(1000, `Connect for unknown EventStream ${uuid}`);
    this.#sockets.get(stream.id)?.close(1000, "Replaced by a newer connection to the stream");
    this.#sockets.set(stream.id, socket);
    this.#connections.set(stream.id, this.connections(stream.id) + 1);
    socket.onclose = () => {
      if (this.#sockets.get(stream.id) === socket) this.#sockets.delete(stream.id);
    };
    if (!cursor) return;
    for (const event of this.events(stream.id)) {
      const wanted = "after" in cursor
        ? event.ordinal > cursor.after
        : event.timestamp >= cursor.since;
      if (wanted) socket.send(encode(event, stream.format));
    }
  }

  #onAction(action: Action): void {
    const { id: _id, ...body } = action;
    const unit = action.unit_id ? this.#state.units.get(action.unit_id) : undefined;
    const users = this.#concerned(action.org_id ?? unit?.org_id, action.unit_id, action.username);
    this.#publish(users, STUB_ACTION, body);
  }

  /** The users an event about this Organisation and Unit concerns: their members and `actor`. */
  #concerned(orgId?: string, unitId?: string, actor?: string): Set<string> {
    const users = new Set<string>(actor ? [actor] : []);
    for (const group of [this.#state.orgs.get(orgId ?? ""), this.#state.units.get(unitId ?? "")]) {
      if (!group) continue;
      users.add(group.owner_id);
      for (const member of group.members) users.add(member);
    }
    return users;
  }

  #publish(users: Set<string>, type: string, body: Record<string, unknown>): void {
    for (const stream of this.#state.streams.values()) {
      if (users.has(stream.owner)) this.inject(stream.id, type, body);
    }
  }
}

/** A cursor from the query, undefined for none, or why the socket must close. */
function parseCursor(query: URLSearchParams): Cursor | string {
  const given = CURSORS.filter((name) => query.has(name));
  if (given.length > 1) return "Cannot provide more than one 'stream_from_' variable";
  const [name] = given;
  if (!name) return undefined;
  const value = query.get(name)!;
  if (name === "stream_from_datetime") {
    const zoned = /[zZ]|[+-]\d\d:?\d\d$/.test(value) || !value.includes("T") ? value : `${value}Z`;
    const since = Date.parse(zoned);
    return Number.isNaN(since) ? "Unable to parse stream_from_datetime value" : { since };
  }
  if (!/^\d+$/.test(value)) return `${name} must be an integer`;
  return name === "stream_from_ordinal" ? { after: Number(value) } : { since: Number(value) };
}

/** An event as its stream's format sends it. */
export function encode(event: StubEvent, format: EventStream["format"]): string {
  if (format === "JSON_STRING") {
    return JSON.stringify({
      message_type: event.type,
      message_body: event.body,
      ess_ordinal: event.ordinal,
      ess_timestamp: event.timestamp,
    });
  }
  return `${event.type}|${protobufText(event.body)}|ordinal: ${event.ordinal}` +
    `|timestamp: ${event.timestamp}`;
}

/** A flat message in protobuf's one-line text format: `name: "x" count: 2 done: true`. */
function protobufText(body: Record<string, unknown>): string {
  return Object.entries(body)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}: ${typeof value === "string" ? JSON.stringify(value) : value}`)
    .join(" ");
}
