/**
 * MCP over stdio, answering malformed input instead of dropping it. The SDK's stdio transport
 * skips a line that is not JSON, or not a JSON-RPC message, without a word, so a client waits
 * for an answer that never comes; and it closes on one over-long line. This transport answers
 * each such line with the JSON-RPC error it deserves and goes on.
 *
 * @module
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type JSONRPCMessage, JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";

/** The longest line read; a longer one is answered with an error and skipped. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Reads JSON-RPC lines from stdin and writes them to stdout. */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  #input: ReadableStream<Uint8Array>;
  #output: WritableStreamDefaultWriter<Uint8Array>;
  #closed = false;
  #writing: Promise<void> = Promise.resolve();

  /** A transport over the given streams (default: this process's stdin and stdout). */
  constructor(
    input: ReadableStream<Uint8Array> = Deno.stdin.readable,
    output: WritableStream<Uint8Array> = Deno.stdout.writable,
  ) {
    this.#input = input;
    this.#output = output.getWriter();
  }

  /** Starts reading; resolves at once, reading goes on in the background. */
  start(): Promise<void> {
    this.#read().catch((error) => this.onerror?.(error)).finally(() => this.close());
    return Promise.resolve();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    let skipping = false;
    for await (const chunk of this.#input) {
      if (this.#closed) break;
      pending += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).replace(/\r$/, "");
        pending = pending.slice(newline + 1);
        if (skipping) skipping = false;
        else this.#receive(line);
      }
      if (pending.length > MAX_LINE_BYTES) {
        pending = "";
        skipping = true;
        await this.#reject(
          null,
          -32600,
          `Invalid Request: a message is over ${MAX_LINE_BYTES} bytes`,
        );
      }
    }
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
    this.onmessage?.(parsed.data as JSONRPCMessage);
  }

  #reject(id: string | number | null, code: number, message: string): Promise<void> {
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
  send(message: JSONRPCMessage): Promise<void> {
    return this.#write(message);
  }

  /** Stops reading and reports the close, once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writing;
    this.onclose?.();
  }
}
