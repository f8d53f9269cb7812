/**
 * Reading a byte stream with a ceiling on what is kept: used for request bodies, Account Server
 * answers, Keycloak's documents and uploads. Each chunk is copied into one growing buffer, so a
 * stream of tiny chunks keeps only the bytes that arrived, not each chunk's backing buffer.
 *
 * @module
 */

/** The stream carried more than the ceiling; nothing more was read. */
export class TooLarge extends Error {
  /** The ceiling, in bytes. */
  readonly max: number;
  /** A refusal of a stream longer than `max` bytes. */
  constructor(max: number) {
    super(`more than ${max} bytes`);
    this.max = max;
  }
}

/** Options of `readLimited`. */
export interface ReadLimits {
  /** Stops reading (the stream is cancelled) and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The expected size, when known: the buffer is sized for it from the start. */
  expected?: number;
}

/**
 * Reads `stream` to its end, keeping at most `max` bytes; past that the stream is cancelled and
 * a `TooLarge` is thrown. A byte stream is read straight into one growing buffer (no buffer per
 * chunk); other streams are copied into it chunk by chunk.
 */
export async function readLimited(
  stream: ReadableStream<Uint8Array>,
  max: number,
  limits: ReadLimits = {},
): Promise<Uint8Array> {
  const into = new Growing(max, limits.expected);
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: read its chunks as they come.
  }
  const reader = byob ?? stream.getReader();
  const { signal } = limits;
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    while (true) {
      const more = byob ? await into.readFrom(byob) : await into.copyFrom(reader as Chunks);
      signal?.throwIfAborted();
      if (!more) break;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
  return into.bytes();
}

type Chunks = ReadableStreamDefaultReader<Uint8Array>;

const MIN_VIEW = 16 * 1024;

/** A buffer that doubles as bytes arrive, up to `max`. */
class Growing {
  #max: number;
  #buffer: Uint8Array<ArrayBuffer>;
  #size = 0;

  constructor(max: number, expected = 0) {
    this.#max = max;
    this.#buffer = new Uint8Array(Math.min(max, Math.max(expected, 0)) + MIN_VIEW);
  }

  /** Reads into the free space of the buffer; false at the end of the stream. */
  async readFrom(reader: ReadableStreamBYOBReader): Promise<boolean> {
    // Reads into very small views can stall in Deno: always offer a few KiB.
    if (this.#buffer.length - this.#size < MIN_VIEW) this.#grow(this.#size + MIN_VIEW);
    const view = new Uint8Array(this.#buffer.buffer, this.#size, this.#buffer.length - this.#size);
    const { done, value } = await reader.read(view);
    if (value) {
      // The buffer was handed to the stream and comes back in `value`.
      this.#buffer = new Uint8Array(value.buffer as ArrayBuffer);
      this.#size += value.length;
    }
    if (this.#size > this.#max) throw new TooLarge(this.#max);
    return !done;
  }

  /** Copies the next chunk in; false at the end of the stream. */
  async copyFrom(reader: Chunks): Promise<boolean> {
    const { done, value } = await reader.read();
    if (done) return false;
    if (this.#size + value.length > this.#max) throw new TooLarge(this.#max);
    if (this.#size + value.length > this.#buffer.length) this.#grow(this.#size + value.length);
    this.#buffer.set(value, this.#size);
    this.#size += value.length;
    return true;
  }

  #grow(atLeast: number): void {
    // Room beyond `max` lets a read see that there is more.
    const grown = new Uint8Array(
      Math.min(this.#max + MIN_VIEW, Math.max(this.#buffer.length * 2, atLeast)),
    );
    grown.set(this.#buffer.subarray(0, this.#size));
    this.#buffer = grown;
  }

  /** The bytes read, in a buffer at most twice their length. */
  bytes(): Uint8Array {
    const used = this.#buffer.subarray(0, this.#size);
    return this.#size * 2 >= this.#buffer.length ? used : used.slice();
  }
}
