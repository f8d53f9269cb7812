/**
 * The HTTP transport's sessions, bounded: each belongs to one owner, is closed after it has been
 * idle too long, and at the cap the least recently used idle one makes room for a new one. A
 * session is busy while any of its responses (a call's stream, a GET stream) is still open.
 *
 * @module
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";

/** One MCP session over HTTP. */
export interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  /**
   * Who may use it: a verified caller, a token's SHA-256, or "" for the server's credentials
   * (every caller without a token is that one owner: anyone who learns such a session's id may
   * use it).
   */
  owner: string;
  /** When a request last came or a response last ended, in milliseconds. */
  lastActive: number;
  /** Responses still open. */
  busy: number;
}

/** How many sessions, and for how long. */
export interface SessionLimits {
  /** Most sessions open at once (default 1000). */
  max: number;
  /** A session unused this long is closed (milliseconds, default 30 min). */
  idleMs: number;
  /**
   * Most sessions one owner other than "" may hold (default `max`); at it, the owner's own least
   * recently used idle session makes room, so one caller cannot push other callers' sessions out.
   */
  perOwner?: number;
  /** The clock, in milliseconds (for tests). */
  now?: () => number;
}

/** The open sessions, by id. */
export class Sessions {
  #open = new Map<string, Session>();
  /** Places promised to sessions being opened, so concurrent openings cannot pass the cap. */
  #reserved = 0;
  /** The same, by owner. */
  #reservedBy = new Map<string, number>();
  #limits: SessionLimits;
  #now: () => number;
  #sweeper: ReturnType<typeof setInterval>;

  /** Sessions held to `limits`; idle ones are looked for a few times per idle period. */
  constructor(limits: SessionLimits) {
    this.#limits = limits;
    this.#now = limits.now ?? Date.now;
    const every = Math.max(50, Math.min(limits.idleMs / 4, 60_000));
    this.#sweeper = setInterval(() => this.closeIdle(), every);
    Deno.unrefTimer(this.#sweeper);
  }

  /** How many are open. */
  get size(): number {
    return this.#open.size;
  }

  /** The session `id` if it is open and belongs to `owner`. */
  get(id: string, owner: string): Session | undefined {
    const session = this.#open.get(id);
    return session?.owner === owner ? session : undefined;
  }

  /** Keeps a newly initialised session. */
  add(id: string, session: Session): void {
    this.#open.set(id, session);
  }

  /** Forgets a session that closed. */
  delete(id: string): void {
    this.#open.delete(id);
  }

  /**
   * A place for a new session of `owner`: below the caps, or once the least recently used idle
   * session (the owner's own, when the owner is at their cap) has been closed to make room;
   * undefined when every candidate is busy. Call the returned function once the opening has
   * finished (the session is then counted as open, or was never made).
   */
  async reserve(owner = ""): Promise<(() => void) | undefined> {
    this.closeIdle();
    const perOwner = this.#limits.perOwner ?? this.#limits.max;
    let evict: [string, Session] | undefined;
    // "" is everyone sending no token (the server's credentials): one owner, not one caller.
    if (owner !== "" && this.#count(owner) >= perOwner) {
      evict = this.#oldestIdle(owner);
      if (!evict) return undefined;
    } else if (this.#open.size + this.#reserved >= this.#limits.max) {
      evict = this.#oldestIdle();
      if (!evict) return undefined;
    }
    if (evict) this.#open.delete(evict[0]);
    this.#reserved++;
    this.#reservedBy.set(owner, (this.#reservedBy.get(owner) ?? 0) + 1);
    if (evict) await evict[1].server.close().catch(() => {});
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reserved--;
      const left = (this.#reservedBy.get(owner) ?? 1) - 1;
      if (left > 0) this.#reservedBy.set(owner, left);
      else this.#reservedBy.delete(owner);
    };
  }

  /** Sessions of `owner`, open or being opened. */
  #count(owner: string): number {
    let count = this.#reservedBy.get(owner) ?? 0;
    for (const session of this.#open.values()) if (session.owner === owner) count++;
    return count;
  }

  /** The least recently used idle session (of `owner`, if given). */
  #oldestIdle(owner?: string): [string, Session] | undefined {
    let oldest: [string, Session] | undefined;
    for (const entry of this.#open) {
      if (owner !== undefined && entry[1].owner !== owner) continue;
      if (entry[1].busy === 0 && (!oldest || entry[1].lastActive < oldest[1].lastActive)) {
        oldest = entry;
      }
    }
    return oldest;
  }

  /** Marks a request into `session`; the returned response is tracked until it ends. */
  track(session: Session, response: Response): Response {
    session.lastActive = this.#now();
    if (!response.body) return response;
    session.busy++;
    return new Response(
      whenDone(response.body, () => {
        session.busy--;
        session.lastActive = this.#now();
      }),
      response,
    );
  }

  /** Closes every session idle for longer than the limit. */
  closeIdle(): void {
    const limit = this.#now() - this.#limits.idleMs;
    for (const [id, session] of this.#open) {
      if (session.busy === 0 && session.lastActive <= limit) void this.#close(id, session);
    }
  }

  /** Closes them all and stops looking for idle ones. */
  async closeAll(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all([...this.#open].map(([id, session]) => this.#close(id, session)));
  }

  async #close(id: string, session: Session): Promise<void> {
    this.#open.delete(id);
    await session.server.close().catch(() => {});
  }
}

/** `body`, calling `done` once when it ends, fails or is cancelled. */
function whenDone(body: ReadableStream<Uint8Array>, done: () => void): ReadableStream<Uint8Array> {
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      done();
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: finished, value } = await reader.read();
        if (finished) {
          end();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
}
