/**
 * The tool calls in flight, so that a shutdown can let them finish, then cancel the rest.
 *
 * @module
 */

/** Counts calls in flight, tells when none are left, and can cancel them all. */
export class Activity {
  #active = 0;
  #idle: (() => void)[] = [];
  #cancel = new AbortController();

  /** Aborted by `cancelAll()`: every call in flight listens to it. */
  get signal(): AbortSignal {
    return this.#cancel.signal;
  }

  /** Cancels every call in flight (and any started later). */
  cancelAll(): void {
    this.#cancel.abort();
  }

  /**
   * Waits up to `graceMs` for calls in flight, then cancels the rest and waits for them to
   * answer, so each caller hears how their call ended before the connection closes.
   */
  async drain(graceMs: number): Promise<void> {
    await this.idle(graceMs);
    this.cancelAll();
    await this.idle(2_000);
    // The SDK sends a tool's answer a few turns after the tool returns it.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  /** How many calls are in flight. */
  get active(): number {
    return this.#active;
  }

  /** Runs `work`, counting it as in flight until it settles. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.#active++;
    try {
      return await work();
    } finally {
      if (--this.#active === 0) this.#idle.splice(0).forEach((resolve) => resolve());
    }
  }

  /** Resolves when no call is in flight, or after `ms`, whichever is first. */
  idle(ms: number): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
