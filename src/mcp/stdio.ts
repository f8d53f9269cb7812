/**
 * MCP over stdio, answering malformed input instead of dropping it. The SDK's stdio transport
 * skips a line that is not JSON, or not a JSON-RPC message, without a word, so a client waits
 * for an answer that never comes; and it closes on one over-long line. This transport answers
 * each such line with the JSON-RPC error it deserves and goes on. When stdin ends, it closes
 * only once every request it received has been answered.
 *
 * @module
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type JSONRPCMessage, JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";

/** The longest line read, in bytes; a longer one is answered with one error and skipped. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const NEWLINE = 0x0a;

/** How a StdioTransport reads. */
export interface StdioOptions {
  /** The longest line read, in bytes (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
  /**
   * Called once when stdin ends, while requests may still be in flight; the transport closes
   * after the last of them is answered (or when `close()` is called).
   */
  onInputEnd?: () => void;
}

type Id = string | number;

/** Reads JSON-RPC lines from stdin and writes them to stdout. */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  #input: ReadableStream<Uint8Array>;
  #output: WritableStreamDefaultWriter<Uint8Array>;
  #maxLineBytes: number;
  #onInputEnd?: () => void;
  #closed = false;
  #inputEnded = false;
  #writing: Promise<void> = Promise.resolve();
  /** Requests received and not yet answered. */
  #unanswered = new Set<Id>();

  /** A transport over the given streams (default: this process's stdin and stdout). */
  constructor(
    input: ReadableStream<Uint8Array> = Deno.stdin.readable,
    output: WritableStream<Uint8Array> = Deno.stdout.writable,
    options: StdioOptions = {},
  ) {
    this.#input = input;
    this.#output = output.getWriter();
    this.#maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.#onInputEnd = options.onInputEnd;
  }

  /** Starts reading; resolves at once, reading goes on in the background. */
  start(): Promise<void> {
    this.#read().catch((error) => this.onerror?.(error)).finally(() => this.#endInput());
    return Promise.resolve();
  }

  async #read(): Promise<void> {
    const lines = new LineSplitter(this.#maxLineBytes);
    for await (const chunk of this.#input) {
      if (this.#closed) return;
      for (const line of lines.push(chunk)) this.#take(line);
    }
    this.#take(lines.end());
  }

  #take(line: Uint8Array | "too long" | undefined): void {
    if (line === undefined) return;
    if (line === "too long") {
      void this.#reject(
        null,
        -32600,
        `Invalid Request: a message is over ${this.#maxLineBytes} bytes`,
      );
      return;
    }
    this.#receive(new TextDecoder().decode(line).replace(/\r$/, ""));
  }

  #receive(line: string): void {
    if (!line.trim()) return;
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch {
      void this.#reject(null, -32700, "Parse error: the line is not JSON");
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(data);
    if (!parsed.success) {
      const id = (data as { id?: unknown })?.id;
      const known = typeof id === "string" || typeof id === "number" ? id : null;
      void this.#reject(known, -32600, "Invalid Request: not a valid JSON-RPC 2.0 message");
      return;
    }
    const message = parsed.data as JSONRPCMessage;
    if ("method" in message && "id" in message) this.#unanswered.add(message.id);
    if ("method" in message && message.method === "notifications/cancelled") {
      // A cancelled request gets no answer: the client no longer waits for one.
      const id = (message.params as { requestId?: unknown } | undefined)?.requestId;
      if (typeof id === "string" || typeof id === "number") this.#forget(id);
    }
    this.onmessage?.(message);
  }

  #reject(id: Id | null, code: number, message: string): Promise<void> {
    return this.#write({ jsonrpc: "2.0", id, error: { code, message } });
  }

  #write(message: unknown): Promise<void> {
    const bytes = new TextEncoder().encode(`${JSON.stringify(message)}\n`);
    this.#writing = this.#writing.then(() => this.#output.write(bytes)).catch((error) => {
      this.onerror?.(error);
    });
    return this.#writing;
  }

  /** Writes one message as a line on stdout. */
  async send(message: JSONRPCMessage): Promise<void> {
    await this.#write(message);
    if (!("method" in message) && "id" in message && message.id !== undefined) {
      this.#forget(message.id);
    }
  }

  /** Marks request `id` as answered; the last answer after stdin ended closes the transport. */
  #forget(id: Id): void {
    this.#unanswered.delete(id);
    if (this.#inputEnded && this.#unanswered.size === 0) void this.close();
  }

  #endInput(): void {
    if (this.#inputEnded) return;
    this.#inputEnded = true;
    if (this.#unanswered.size === 0) {
      void this.close();
      return;
    }
    this.#onInputEnd?.();
  }

  /** How many requests received are not yet answered. */
  get unanswered(): number {
    return this.#unanswered.size;
  }

  /** Stops reading and reports the close, once (after writing what was sent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writing;
    this.onclose?.();
  }
}

/**
 * Splits a byte stream into lines, counting bytes: a line over the limit is dropped as it
 * arrives and reported once, as "too long", without holding it.
 */
class LineSplitter {
  #max: number;
  #parts: Uint8Array[] = [];
  #size = 0;
  #skipping = false;

  constructor(max: number) {
    this.#max = max;
  }

  /** The lines that `chunk` completes, in order. */
  *push(chunk: Uint8Array): Generator<Uint8Array | "too long"> {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline < 0 ? chunk.length : newline;
      const piece = chunk.subarray(start, end);
      if (!this.#skipping) {
        this.#size += piece.length;
        if (this.#size > this.#max) {
          this.#skipping = true;
          this.#parts = [];
          yield "too long";
        } else if (piece.length) this.#parts.push(piece.slice());
      }
      if (newline < 0) return;
      if (!this.#skipping) yield this.#take();
      this.#reset();
      start = newline + 1;
    }
  }

  /** The last line, if stdin ended without a newline after it. */
  end(): Uint8Array | undefined {
    const last = this.#skipping || this.#size === 0 ? undefined : this.#take();
    this.#reset();
    return last;
  }

  #take(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0]!;
    const line = new Uint8Array(this.#size);
    let at = 0;
    for (const part of this.#parts) {
      line.set(part, at);
      at += part.length;
    }
    return line;
  }

  #reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#skipping = false;
  }
}
