/**
 * Places for programs to run: a cap on all of them and a smaller one per caller, so one caller
 * cannot fill the server, with a short, bounded wait for a place before a clear refusal.
 *
 * @module
 */

/** How many places, and how long and how many may wait for one. */
export interface SlotLimits {
  /** Programs running at once in the process. */
  total: number;
  /** Programs running at once for one caller: less than `total`. */
  perCaller: number;
  /** Calls waiting at once, of all callers. */
  maxWaiting: number;
}

interface Waiter {
  caller: string;
  grant: (release: () => void) => void;
}

/** What waiting for a place gave: the place (its release), or why there is none. */
export type Place = { release: () => void } | { refused: string };

/** The places of one process, shared by every caller. */
export class Slots {
  #running = new Map<string, number>();
  #total = 0;
  #waiting: Waiter[] = [];

  constructor(readonly limits: Readonly<SlotLimits>) {
    if (limits.perCaller >= limits.total) {
      throw new RangeError("A caller's share of the programs must be less than all of them");
    }
  }

  /** Programs running now, of all callers. */
  get running(): number {
    return this.#total;
  }

  /**
   * A place for `caller`: at once if one is free, else after waiting up to `waitMs` (in turn,
   * each waiter getting the first place it may take), unless `signal` aborts first.
   */
  take(caller: string, options: { waitMs: number; signal?: AbortSignal }): Promise<Place> {
    if (this.#fits(caller)) return Promise.resolve({ release: this.#hold(caller) });
    const mine = this.#waiting.filter((w) => w.caller === caller).length;
    if (options.waitMs <= 0 || options.signal?.aborted) {
      return Promise.resolve(this.#refusal(caller));
    }
    if (mine >= this.limits.perCaller || this.#waiting.length >= this.limits.maxWaiting) {
      return Promise.resolve(this.#refusal(caller));
    }
    return new Promise((resolve) => {
      const stop = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", stop);
        this.#waiting = this.#waiting.filter((w) => w !== waiter);
      };
      const waiter: Waiter = {
        caller,
        grant: (release) => {
          stop();
          resolve({ release });
        },
      };
      const timer = setTimeout(() => {
        stop();
        resolve(this.#refusal(caller));
      }, options.waitMs);
      options.signal?.addEventListener("abort", () => {
        stop();
        resolve({ refused: "Program stopped: the call was cancelled" });
      }, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Whether `caller` may start a program now. */
  #fits(caller: string): boolean {
    return this.#total < this.limits.total &&
      (this.#running.get(caller) ?? 0) < this.limits.perCaller;
  }

  /** Counts a program of `caller` as running; its release, which works once. */
  #hold(caller: string): () => void {
    this.#total++;
    this.#running.set(caller, (this.#running.get(caller) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#total--;
      const left = this.#running.get(caller)! - 1;
      if (left > 0) this.#running.set(caller, left);
      else this.#running.delete(caller);
      this.#admit();
    };
  }

  /** Gives free places to the waiters that may take them, oldest first. */
  #admit(): void {
    for (const waiter of [...this.#waiting]) {
      if (this.#fits(waiter.caller)) waiter.grant(this.#hold(waiter.caller));
    }
  }

  /** Why `caller` gets no place: their own share is taken, or the whole server's is. */
  #refusal(caller: string): Place {
    const { perCaller, total } = this.limits;
    if ((this.#running.get(caller) ?? 0) >= perCaller) {
      return {
        refused:
          `You have ${perCaller} programs running already, the most one caller may: try again when one of yours has finished`,
      };
    }
    return {
      refused:
        `The server is running ${total} programs already, the most it runs for all callers together: try again in a moment`,
    };
  }
}
