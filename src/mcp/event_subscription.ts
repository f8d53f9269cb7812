/**
 * A subscription to the caller's event stream, for the MCP resource: it holds the stream's
 * WebSocket, buffers the events that arrive (bounded), tells the client when there is something
 * to read, and after a dropped socket reconnects from the last ordinal it saw, so nothing is lost
 * or repeated.
 *
 * @module
 */
import { openSocket, type ReadSocket } from "./_socket.ts";
import { type Cursor, OrdinalTracker, parseEvent, socketUrl, type StreamEvent } from "./events.ts";

/** The most events a subscription keeps between two reads; older ones are dropped, saying so. */
export const MAX_BUFFERED_EVENTS = 1000;

/** How a subscription is made. */
export interface SubscriptionOptions {
  location: string;
  verifyTls: boolean;
  /** Called when events arrive and the buffer was empty: the resource has changed. */
  onUpdated: () => void;
  maxBuffered?: number;
  /** Milliseconds to wait before reconnect attempt `n` (0-based). */
  retryDelayMs?: (attempt: number) => number;
}

/** What a read of the subscription gives. */
export interface SubscriptionRead {
  events: StreamEvent[];
  /** The cursor to read the stream from later, without the subscription. */
  next: Cursor;
  /** How many buffered events are left for the next read. */
  more?: number;
  events_lost: boolean;
  lost_count?: number;
  /** Events dropped from a full buffer: read them with read_event_stream from that ordinal. */
  dropped_from_buffer?: { count: number; from_ordinal: number };
  connected: boolean;
  /** How many messages since the last read were not events in either format (skipped). */
  unparsed?: number;
  last_close?: { code: number; reason: string };
}

const encoder = new TextEncoder();

const backoff = (attempt: number) => Math.min(5000, 100 * 2 ** attempt);

/** A held WebSocket on one event stream, feeding a bounded buffer. */
export class EventSubscription {
  #options: SubscriptionOptions;
  #tracker = new OrdinalTracker();
  #buffer: StreamEvent[] = [];
  #dropped: { count: number; from_ordinal: number } | undefined;
  #socket: ReadSocket | undefined;
  #startedAt = Date.now();
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #paused = 0;
  #unparsed = 0;
  #closed = false;
  #lastClose: { code: number; reason: string } | undefined;

  /** A subscription; nothing connects until `start`. */
  constructor(options: SubscriptionOptions) {
    this.#options = options;
  }

  /** Connects for new events; rejects when the first connection cannot be made. */
  async start(): Promise<void> {
    this.#startedAt = Date.now();
    await this.#connect();
  }

  /** Whether the socket is open now. */
  get connected(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * The events buffered since the last read, oldest first, up to `maxBytes` of JSON (the rest
   * stay for the next read, and the client is told there is more), and the subscription's state.
   */
  read(maxBytes: number): SubscriptionRead {
    const events: StreamEvent[] = [];
    let bytes = 2;
    while (this.#buffer.length > 0) {
      const size = encoder.encode(JSON.stringify(this.#buffer[0])).length + 1;
      if (events.length > 0 && bytes + size > maxBytes) break;
      events.push(this.#buffer.shift()!);
      bytes += size;
    }
    if (this.#buffer.length > 0) queueMicrotask(() => this.#options.onUpdated());
    const dropped = this.#dropped;
    this.#dropped = undefined;
    const lost = this.#tracker.lost;
    this.#tracker.lost = 0;
    const last = events.at(-1)?.ordinal;
    const unparsed = this.#unparsed;
    this.#unparsed = 0;
    return {
      events,
      next: last !== undefined ? { from_ordinal: last } : this.#cursor(),
      ...(this.#buffer.length > 0 ? { more: this.#buffer.length } : {}),
      events_lost: lost > 0,
      ...(lost > 0 ? { lost_count: lost } : {}),
      ...(dropped ? { dropped_from_buffer: dropped } : {}),
      connected: this.connected,
      ...(unparsed > 0 ? { unparsed } : {}),
      ...(this.#lastClose ? { last_close: this.#lastClose } : {}),
    };
  }

  /**
   * Gives up the stream's single connection while `work` runs (a one-off read), then takes it
   * back from the last ordinal seen.
   */
  async suspend<T>(work: () => Promise<T>): Promise<T> {
    this.#paused++;
    this.#disconnect();
    try {
      return await work();
    } finally {
      if (--this.#paused === 0 && !this.#closed) this.#reconnectSoon(0);
    }
  }

  /** Closes the socket for good. */
  close(): void {
    this.#closed = true;
    this.#disconnect();
  }

  #cursor(): Cursor {
    return this.#tracker.last !== undefined
      ? { from_ordinal: this.#tracker.last }
      : { from_timestamp: this.#startedAt };
  }

  async #connect(): Promise<void> {
    const fresh = this.#tracker.last === undefined && this.#attempt === 0 && !this.#lastClose;
    const url = socketUrl(this.#options.location, fresh ? {} : this.#cursor());
    const socket = await openSocket(
      url,
      { verifyTls: this.#options.verifyTls, timeoutMs: 10_000 },
      {
        onMessage: (text) => this.#receive(text),
        onClose: (code, reason) => {
          this.#socket = undefined;
          this.#lastClose = { code, reason };
          if (!this.#closed && this.#paused === 0) this.#reconnectSoon(this.#attempt++);
        },
      },
    );
    if (this.#closed || this.#paused > 0) return socket.close();
    this.#socket = socket;
  }

  #receive(text: string): void {
    const event = parseEvent(text);
    if (!event) return void this.#unparsed++;
    if (!this.#tracker.accept(event)) return;
    this.#attempt = 0;
    const max = this.#options.maxBuffered ?? MAX_BUFFERED_EVENTS;
    const wasEmpty = this.#buffer.length === 0;
    this.#buffer.push(event);
    if (this.#buffer.length > max) {
      const [oldest] = this.#buffer.splice(0, 1);
      this.#dropped ??= { count: 0, from_ordinal: oldest!.ordinal - 1 };
      this.#dropped.count++;
    }
    if (wasEmpty) this.#options.onUpdated();
  }

  #reconnectSoon(attempt: number): void {
    clearTimeout(this.#retry);
    const delay = (this.#options.retryDelayMs ?? backoff)(attempt);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closed || this.#paused > 0 || this.#socket) return;
      this.#connect().catch((error) => {
        this.#lastClose = { code: 1006, reason: (error as Error).message };
        this.#reconnectSoon(this.#attempt++);
      });
    }, delay);
  }

  #disconnect(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#socket?.close();
    this.#socket = undefined;
  }
}
