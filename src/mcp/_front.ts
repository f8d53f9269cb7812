/**
 * A thin TCP front for the HTTP endpoint, because `Deno.serve` has no header timeout: a client
 * could hold a connection open for ever by sending its headers a byte at a time. The front reads
 * each connection's request head within a time and size limit, marks it `Connection: close` (so
 * every request on the wire is a new connection whose head is timed again; a head with a line not
 * ended by CRLF is refused, so the server cannot see a head end before that), and then relays the
 * connection to the real server on an internal loopback port. The server times the reading of a
 * body; the front cuts a connection whose body has not ended in time even when the server answered
 * without reading it (see `_framing.ts`), and under pressure gives way from the slowest senders.
 *
 * @module
 */
import { type BodyEnd, bodyEnd } from "./_framing.ts";

/** Where the front listens and where it relays to. */
export interface FrontOptions {
  hostname: string;
  port: number;
  /** The internal server's port on 127.0.0.1. */
  target: number;
  /** How long a request head may take to arrive (default 10 s). */
  headerTimeoutMs?: number;
  /** How long the server gives a request body (default 30 s); the front cuts it a second later. */
  bodyTimeoutMs?: number;
  /** Largest request head, in bytes (default 64 KiB). */
  maxHeaderBytes?: number;
  /**
   * Most client connections at once (default 2048); past it the one waiting longest for its head
   * is closed, or the new one when none is.
   */
  maxConnections?: number;
}

/** A running front. */
export interface Front {
  /** The port it listens on. */
  port: number;
  /**
   * Relays new requests to the internal server's new port (after it was started again), or,
   * with undefined, answers them 503 meanwhile: its old port is free for anyone to take.
   */
  retarget(port: number | undefined): void;
  /**
   * Cuts the older half of the connections still sending their head or body: when the process
   * runs out of file descriptors (each relayed connection takes three), the slow ones give way.
   * From then on, the connection cap is at most nine tenths of the connections open now.
   */
  shed(): void;
  /** Stops listening and cuts every relayed connection. */
  close(): void;
}

const END_OF_HEAD = [13, 10, 13, 10];

function headEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < bytes.length; i++) {
    if (END_OF_HEAD.every((b, k) => bytes[i + k] === b)) return i + 4;
  }
  return -1;
}

/**
 * Whether every line of `head` ends in CRLF. The server also ends a line (and so the head) at a
 * bare LF: such a head would end, for the server, before the `Connection: close` the front adds,
 * which would then be read as body and leave the connection open with its later heads untimed.
 */
function crlfOnly(head: Uint8Array): boolean {
  for (let i = 0; i < head.length; i++) {
    if (head[i] === 10 && head[i - 1] !== 13) return false;
    if (head[i] === 13 && head[i + 1] !== 10) return false;
  }
  return true;
}

/** The head with any Connection or Keep-Alive header replaced by `Connection: close`. */
function closingHead(head: Uint8Array): Uint8Array {
  const text = Array.from(head, (b) => String.fromCharCode(b)).join("");
  const lines = text.slice(0, -4).split("\r\n").filter((line, i) =>
    i === 0 || !/^(connection|keep-alive)\s*:/i.test(line)
  );
  const out = `${lines.join("\r\n")}\r\nConnection: close\r\n\r\n`;
  return Uint8Array.from(out, (c) => c.charCodeAt(0));
}

/** Writes all of `bytes` (a single write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function reply(conn: Deno.Conn, status: string): void {
  const text = `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
  writeAll(conn, new TextEncoder().encode(text)).catch(() => {}).finally(() => close(conn));
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Whether `error` says the process has run out of file descriptors (EMFILE, ENFILE). */
export function outOfFiles(error: unknown): boolean {
  return /os error 2[34]\b|too many open files/i.test(String(error));
}

/** Passes bytes through, telling `body` of them, and calls `ended` once the body has ended. */
function watchBody(body: BodyEnd, ended: () => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(bytes, controller) {
      if (!body.ended && body.feed(bytes)) ended();
      controller.enqueue(bytes);
    },
  });
}

/** Reads a request head within the limits: the head and what followed it, or undefined. */
async function readHead(
  conn: Deno.Conn,
  timeoutMs: number,
  maxBytes: number,
): Promise<{ head: Uint8Array; rest: Uint8Array } | undefined> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reply(conn, "408 Request Timeout");
  }, timeoutMs);
  let bytes = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const n = await conn.read(chunk);
      if (n === null || timedOut) return undefined;
      const from = bytes.length;
      const grown = new Uint8Array(from + n);
      grown.set(bytes);
      grown.set(chunk.subarray(0, n), from);
      bytes = grown;
      const end = headEnd(bytes, from);
      if (end >= 0) {
        const head = bytes.subarray(0, end);
        if (crlfOnly(head)) return { head, rest: bytes.subarray(end) };
        reply(conn, "400 Bad Request");
        return undefined;
      }
      if (bytes.length > maxBytes) {
        reply(conn, "431 Request Header Fields Too Large");
        return undefined;
      }
    }
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Listens on `options.hostname:port` and relays each timed request to the internal server. */
export function serveFront(options: FrontOptions): Front {
  return new TcpFront(options);
}

class TcpFront implements Front {
  readonly port: number;
  #options: FrontOptions;
  #listener: Deno.Listener;
  /** Every connection the front holds, both sides. */
  #open = new Set<Deno.Conn>();
  /** Client connections. */
  #clients = new Set<Deno.Conn>();
  /** Client connections still sending their head (oldest first). */
  #reading = new Set<Deno.Conn>();
  /** Client connections past their head whose body has not ended (oldest first). */
  #sending = new Set<Deno.Conn>();
  #closed = false;
  #target: number | undefined;
  /** The cap learnt when file descriptors ran out, if lower than the one configured. */
  #ceiling = Infinity;

  constructor(options: FrontOptions) {
    this.#options = options;
    this.#target = options.target;
    this.#listener = Deno.listen({ hostname: options.hostname, port: options.port });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    void this.#accept();
  }

  retarget(port: number | undefined): void {
    this.#target = port;
  }

  shed(): void {
    this.#ceiling = Math.min(this.#ceiling, Math.max(16, Math.floor(this.#clients.size * 0.9)));
    const slow = [...this.#reading, ...this.#sending];
    for (const conn of slow.slice(0, Math.ceil(slow.length / 2))) this.#drop(conn);
  }

  #drop(conn: Deno.Conn): void {
    this.#reading.delete(conn);
    this.#sending.delete(conn);
    this.#clients.delete(conn);
    close(conn);
  }

  /** Stops listening and cuts every relayed connection. */
  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.#open) close(conn);
    this.#open.clear();
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        // Closed, or out of file descriptors: a flood must not end the server.
        if (this.#closed) continue;
        if (outOfFiles(error)) this.shed();
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (!this.#makeRoom()) {
        close(conn);
        continue;
      }
      this.#clients.add(conn);
      void this.#relay(conn);
    }
  }

  /**
   * Whether a new connection may come in. When full, the connection that has waited longest for
   * its head gives way, then the one that has been sending its body longest (connections that
   * send nothing, or trickle, cannot lock honest clients out); if every request is whole, none.
   */
  #makeRoom(): boolean {
    const cap = Math.min(this.#options.maxConnections ?? 2048, this.#ceiling);
    if (this.#clients.size < cap) return true;
    const oldest = this.#reading.values().next().value ?? this.#sending.values().next().value;
    if (!oldest) return false;
    this.#drop(oldest);
    return true;
  }

  async #relay(conn: Deno.Conn): Promise<void> {
    this.#open.add(conn);
    this.#reading.add(conn);
    const upstream: Deno.Conn[] = [];
    try {
      const read = await readHead(
        conn,
        this.#options.headerTimeoutMs ?? 10_000,
        this.#options.maxHeaderBytes ?? 64 * 1024,
      ).finally(() => this.#reading.delete(conn));
      if (!read) return;
      const body = bodyEnd(read.head);
      if ("refuse" in body) return reply(conn, body.refuse);
      const target = await this.#connect();
      if (!target) return reply(conn, "503 Service Unavailable");
      upstream.push(target);
      this.#open.add(target);
      await this.#forward(conn, target, { ...read, body });
    } catch {
      // A connection that fails is closed below; the server is unaffected.
    } finally {
      for (const each of [conn, ...upstream]) {
        close(each);
        this.#open.delete(each);
      }
      this.#clients.delete(conn);
      this.#sending.delete(conn);
    }
  }

  /**
   * A connection to the internal server, unless it is being started again; if none can be had
   * for want of file descriptors, sheds.
   */
  async #connect(): Promise<Deno.Conn | undefined> {
    if (this.#target === undefined) return undefined;
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch (error) {
      if (outOfFiles(error)) this.shed();
      return undefined;
    }
  }

  /** Relays a request whose head has been read, both ways, until either side is done. */
  async #forward(
    conn: Deno.Conn,
    target: Deno.Conn,
    read: { head: Uint8Array; rest: Uint8Array; body: BodyEnd },
  ): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = () => {
      this.#sending.delete(conn);
      clearTimeout(timer);
    };
    if (!read.body.feed(read.rest)) {
      // The server may answer without reading the body (401, 413, a probe) and then waits for
      // it as long as it keeps coming: a body that has not ended in time costs the connection.
      // A second more than the server's own limit lets a server that reads it answer 408 first.
      this.#sending.add(conn);
      timer = setTimeout(() => {
        close(conn);
        close(target);
      }, (this.#options.bodyTimeoutMs ?? 30_000) + 1_000);
    }
    try {
      await writeAll(target, closingHead(read.head));
      await writeAll(target, read.rest);
      const up = conn.readable.pipeThrough(watchBody(read.body, ended))
        .pipeTo(target.writable, { preventClose: true })
        .then(() => target.closeWrite()).catch(() => {});
      await target.readable.pipeTo(conn.writable, { preventClose: true }).catch(() => {});
      close(conn);
      await up;
    } finally {
      ended();
    }
  }
}
