/**
 * Where a request body ends, for the TCP front: by `Content-Length`, or by the last chunk of a
 * `Transfer-Encoding: chunked` body. The front needs it because the server may answer (401, 413,
 * a probe) without reading the body, and the connection then stays open for as long as the client
 * keeps sending it; the front cuts a request whose body has not ended within the time limit.
 *
 * @module
 */

/** Follows a request body as its bytes go by, and says when it has ended. */
export interface BodyEnd {
  /** Takes the next bytes of the body; true once the body has ended. */
  feed(bytes: Uint8Array): boolean;
  /** Whether the body has ended. */
  readonly ended: boolean;
}

/** A body of `Content-Length` bytes. */
class LengthEnd implements BodyEnd {
  #left: number;

  constructor(length: number) {
    this.#left = length;
  }

  get ended(): boolean {
    return this.#left <= 0;
  }

  feed(bytes: Uint8Array): boolean {
    this.#left -= bytes.length;
    return this.ended;
  }
}

const LF = 10;

/**
 * A chunked body: size lines (hex, perhaps with extensions), data and its CRLF, then the last
 * chunk (size 0) and trailer lines up to an empty line. Malformed framing never ends: the server
 * refuses it, and the time limit cuts the connection.
 */
class ChunkedEnd implements BodyEnd {
  #state: "size" | "data" | "data-end" | "trailer" | "done" | "bad" = "size";
  #line = "";
  #left = 0;

  get ended(): boolean {
    return this.#state === "done";
  }

  feed(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length && this.#state !== "done" && this.#state !== "bad"; i++) {
      if (this.#state === "data") {
        const take = Math.min(this.#left, bytes.length - i);
        this.#left -= take;
        i += take - 1;
        if (this.#left === 0) this.#state = "data-end";
        continue;
      }
      const byte = bytes[i]!;
      if (byte !== LF) {
        if (this.#line.length > 65_536) this.#state = "bad";
        this.#line += String.fromCharCode(byte);
        continue;
      }
      if (!this.#line.endsWith("\r")) {
        this.#state = "bad";
        continue;
      }
      this.#endLine(this.#line.slice(0, -1));
      this.#line = "";
    }
    return this.ended;
  }

  #endLine(line: string): void {
    if (this.#state === "data-end") {
      this.#state = line === "" ? "size" : "bad";
    } else if (this.#state === "trailer") {
      if (line === "") this.#state = "done";
    } else {
      // As the server reads it: hex digits (any number of leading zeros), then perhaps spaces or
      // tabs and `;` extensions.
      const size = /^0*([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (!size) {
        this.#state = "bad";
        return;
      }
      this.#left = parseInt(size[1]!, 16);
      this.#state = this.#left === 0 ? "trailer" : "data";
    }
  }
}

/**
 * How the body of the request with this head ends, or a reason to refuse the request: framing
 * that is ambiguous (two different lengths, a length beside chunking) or unknown is refused, as
 * the server would.
 */
export function bodyEnd(head: Uint8Array): BodyEnd | { refuse: string } {
  const text = Array.from(head, (b) => String.fromCharCode(b)).join("");
  const fields = text.split("\r\n").slice(1).map((line) => line.split(":"));
  const values = (name: string) =>
    fields.filter(([field]) => field?.trim().toLowerCase() === name)
      .flatMap(([, ...value]) => value.join(":").split(","))
      .map((value) => value.trim().toLowerCase());
  const lengths = new Set(values("content-length"));
  const codings = values("transfer-encoding");
  if (codings.length > 0) {
    if (lengths.size > 0 || codings.at(-1) !== "chunked") return { refuse: "400 Bad Request" };
    return new ChunkedEnd();
  }
  if (lengths.size > 1) return { refuse: "400 Bad Request" };
  const [length = "0"] = lengths;
  if (!/^\d{1,15}$/.test(length)) return { refuse: "400 Bad Request" };
  return new LengthEnd(Number(length));
}
