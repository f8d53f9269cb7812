/**
 * Opens a WebSocket for reading text messages, honouring the TLS verification setting.
 *
 * Deno's `WebSocket` verifies certificates and, like `fetch`, has no per-socket switch to stop
 * it. So a `wss:` socket that must not be verified is opened with a `node:https` upgrade request
 * (`rejectUnauthorized: false`) and spoken over with the small RFC 6455 client below: text and
 * continuation frames in, pings answered, close frames both ways. Everything else uses Deno's
 * `WebSocket`. Callers see one interface and cannot tell which path was taken.
 *
 * @module
 */
import https from "node:https";
import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";

/** What the socket tells its reader. */
export interface SocketHandlers {
  /** A whole text message. */
  onMessage(text: string): void;
  /** The socket closed: the peer's code and reason, or 1006 when the connection broke. */
  onClose(code: number, reason: string): void;
}

/** How to open a socket. */
export interface SocketOptions {
  /** Verify the server's certificate (wss only). */
  verifyTls: boolean;
  /** Give up opening after this many milliseconds. */
  timeoutMs: number;
}

/** An open socket. */
export interface ReadSocket {
  /** Closes the socket (code 1000); no handler is called afterwards. */
  close(): void;
}

/** The largest message accepted, in bytes; a larger one closes the socket (1009). */
export const MAX_MESSAGE_BYTES = 1 << 20;

/** Opens `url` (ws: or wss:); rejects with a plain reason when no socket opens in time. */
export function openSocket(
  url: string,
  options: SocketOptions,
  handlers: SocketHandlers,
): Promise<ReadSocket> {
  const opening = url.startsWith("wss:") && !options.verifyTls
    ? openUnverified(url, handlers)
    : openNative(url, handlers);
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`no WebSocket opened within ${options.timeoutMs / 1000} s`));
    }, options.timeoutMs);
    opening.then((socket) => {
      clearTimeout(timer);
      if (late) socket.close();
      else resolve(socket);
    }, (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function openNative(url: string, handlers: SocketHandlers): Promise<ReadSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    let open = false;
    let closedByUs = false;
    socket.onopen = () => {
      open = true;
      resolve({
        close() {
          closedByUs = true;
          socket.close(1000);
        },
      });
    };
    socket.onmessage = (event) => {
      if (!closedByUs) handlers.onMessage(typeof event.data === "string" ? event.data : "");
    };
    socket.onclose = (event) => {
      if (!open) {
        return reject(new Error(event.reason || "the WebSocket could not be opened"));
      }
      if (!closedByUs) handlers.onClose(event.code, event.reason);
    };
    socket.onerror = (event) => {
      if (!open) reject(new Error((event as ErrorEvent).message || "the WebSocket failed"));
    };
  });
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

function openUnverified(url: string, handlers: SocketHandlers): Promise<ReadSocket> {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const target = url.replace(/^wss:/, "https:");
  return new Promise((resolve, reject) => {
    const request = https.request(target, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": key,
        "sec-websocket-version": "13",
      },
      rejectUnauthorized: false,
      // Nothing is verified, so no roots are needed (loading the system's needs --allow-sys).
      ca: [],
    });
    request.on("upgrade", (response, socket: Duplex, head: Uint8Array) => {
      const expected = createHash("sha1").update(key + GUID).digest("base64");
      if (response.headers["sec-websocket-accept"] !== expected) {
        socket.destroy();
        return reject(new Error("the server did not accept the WebSocket handshake"));
      }
      resolve(new FrameSocket(socket, handlers, head));
    });
    request.on("response", (response) => {
      response.resume();
      reject(new Error(`the server answered ${response.statusCode} instead of a WebSocket`));
    });
    request.on("error", reject);
    request.end();
  });
}

/** A client WebSocket over an upgraded connection: reads text messages, answers pings. */
class FrameSocket implements ReadSocket {
  #socket: Duplex;
  #handlers: SocketHandlers;
  #buffer = new Uint8Array(0);
  #fragments: Uint8Array[] = [];
  #done = false;

  constructor(socket: Duplex, handlers: SocketHandlers, head: Uint8Array) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    socket.on("close", () => this.#finish(1006, ""));
    socket.on("error", () => this.#finish(1006, ""));
    if (head.length) this.#receive(head);
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#send(0x8, new Uint8Array([0x03, 0xe8]));
    this.#socket.end();
  }

  #finish(code: number, reason: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#socket.destroy();
    this.#handlers.onClose(code, reason);
  }

  #receive(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    this.#buffer = joined;
    for (let frame = readFrame(this.#buffer); frame; frame = readFrame(this.#buffer)) {
      this.#buffer = this.#buffer.subarray(frame.size);
      if (frame.length > MAX_MESSAGE_BYTES) return this.#tooBig();
      this.#handle(frame.fin, frame.opcode, frame.payload);
      if (this.#done) return;
    }
    if (this.#buffer.length > MAX_MESSAGE_BYTES + 14) this.#tooBig();
  }

  #handle(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === 0x9) return this.#send(0xa, payload);
    if (opcode === 0x8) {
      const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
      const reason = new TextDecoder().decode(payload.subarray(2));
      this.#send(0x8, payload.subarray(0, 2));
      return this.#finish(code, reason);
    }
    if (opcode !== 0x0 && opcode !== 0x1 && opcode !== 0x2) return;
    this.#fragments.push(payload);
    const size = this.#fragments.reduce((n, part) => n + part.length, 0);
    if (size > MAX_MESSAGE_BYTES) return this.#tooBig();
    if (!fin) return;
    const whole = new Uint8Array(size);
    let at = 0;
    for (const part of this.#fragments) {
      whole.set(part, at);
      at += part.length;
    }
    this.#fragments = [];
    if (!this.#done) this.#handlers.onMessage(new TextDecoder().decode(whole));
  }

  #tooBig(): void {
    this.#send(0x8, new Uint8Array([0x03, 0xf1]));
    this.#finish(1009, "message too big");
  }

  /** Sends one frame, masked as a client must. */
  #send(opcode: number, payload: Uint8Array): void {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(6 + payload.length);
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | payload.length; // Control frames carry at most 125 bytes.
    frame.set(mask, 2);
    payload.forEach((byte, i) => frame[6 + i] = byte ^ mask[i % 4]!);
    if (!this.#socket.destroyed) this.#socket.write(frame);
  }
}

/** The first whole frame in `bytes`, or undefined when more bytes are needed. */
function readFrame(bytes: Uint8Array):
  | { fin: boolean; opcode: number; payload: Uint8Array; length: number; size: number }
  | undefined {
  if (bytes.length < 2) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const masked = (bytes[1]! & 0x80) !== 0;
  let length = bytes[1]! & 0x7f;
  let at = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = view.getUint16(2);
    at = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    length = Number(view.getBigUint64(2));
    at = 10;
  }
  const fin = (bytes[0]! & 0x80) !== 0;
  const opcode = bytes[0]! & 0x0f;
  // A frame too large to hold is reported by its length alone, without waiting for it.
  if (length > MAX_MESSAGE_BYTES) return { fin, opcode, payload: bytes, length, size: 0 };
  const maskAt = at;
  if (masked) at += 4;
  if (bytes.length < at + length) return undefined;
  const payload = bytes.slice(at, at + length);
  if (masked) payload.forEach((byte, i) => payload[i] = byte ^ bytes[maskAt + (i % 4)]!);
  return { fin, opcode, payload, length, size: at + length };
}
