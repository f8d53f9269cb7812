/**
 * The real HTTP server behind the TCP front, on an internal loopback port. When the process runs
 * out of file descriptors, `Deno.serve` stops for good (its accept fails); this starts it again, on
 * a new port, and tells the front, instead of letting the failure end the process.
 *
 * @module
 */
import { logLine } from "../log.ts";

/** What the front needs to hear of the internal server. */
export interface InternalEvents {
  /** It stopped, or could not start: stop relaying to its port, and free some descriptors. */
  failed(error: unknown): void;
  /** It runs again, on `port`. */
  restarted(port: number): void;
}

/** `Deno.serve` on 127.0.0.1, started again whenever it fails. */
export class InternalServer {
  #serve: (request: Request) => Promise<Response>;
  #onError: (error: unknown) => Response;
  #events: InternalEvents | undefined;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #closing = false;
  #loggedAt = -Infinity;

  constructor(serve: (request: Request) => Promise<Response>, onError: (e: unknown) => Response) {
    this.#serve = serve;
    this.#onError = onError;
    this.#server = this.#start();
  }

  /** The port it listens on now. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** Who hears of failures and restarts (the front, once it exists). */
  listen(events: InternalEvents): void {
    this.#events = events;
  }

  /** Stops it for good (whichever server runs, even one started again meanwhile). */
  async shutdown(): Promise<void> {
    this.#closing = true;
    await this.#server.shutdown().catch(() => {});
  }

  #start(): Deno.HttpServer<Deno.NetAddr> {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: this.#onError,
    }, this.#serve);
    server.finished.catch((error) => this.#restart(error));
    return server;
  }

  async #restart(error: unknown): Promise<void> {
    if (this.#closing) return;
    // One line a minute at most: a flood at the descriptor limit may stop it again and again.
    if (performance.now() - this.#loggedAt > 60_000) {
      this.#loggedAt = performance.now();
      logLine(`squonk2-as-mcp: the HTTP server stopped (${String(error)}); starting it again`);
    }
    for (let waitMs = 50;; waitMs = Math.min(waitMs * 2, 2_000)) {
      this.#events?.failed(error);
      await new Promise((r) => setTimeout(r, waitMs));
      if (this.#closing) return;
      try {
        this.#server = this.#start();
        this.#events?.restarted(this.port);
        return;
      } catch (again) {
        // Still out of descriptors: shed more, and try again.
        error = again;
      }
    }
  }
}
