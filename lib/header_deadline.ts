/**
 * The `header_timeout` clock of one listener: a connection whose request
 * header has begun arriving must complete it within the timeout, else it is
 * expired (the listener closes it). So a client sending one byte a second
 * cannot hold a connection slot, while `idle_timeout` keeps covering silence
 * between requests.
 *
 * Every connection of a listener has the same timeout, so the oldest pending
 * header always expires first: the pending ones are kept in start order (a
 * Map's insertion order) and one timer is armed for the oldest. Starting and
 * stopping cost a Map operation, not a timer per request, and a header that
 * arrives in one read costs nothing at all (its reader never starts the
 * clock).
 *
 * @module
 */

/** Tracks the pending headers of one listener's connections. */
export class HeaderDeadlines<K> implements Disposable {
  #timeoutMs: number;
  #onExpired: (key: K) => void;
  #now: () => number;
  #pending = new Map<K, number>();
  #timer?: ReturnType<typeof setTimeout>;

  /**
   * @param timeoutMs how long a header may take, in ms (0: no limit)
   * @param onExpired called once for a connection whose header is late (it
   *   is no longer pending then)
   * @param now the monotonic clock in ms
   */
  constructor(
    timeoutMs: number,
    onExpired: (key: K) => void,
    now: () => number = () => performance.now(),
  ) {
    this.#timeoutMs = timeoutMs;
    this.#onExpired = onExpired;
    this.#now = now;
  }

  /** How many connections have a header pending. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Starts the clock for `key`'s header (its first byte has arrived); does
   * nothing when it is already running or there is no limit.
   * @param key the connection
   */
  start(key: K): void {
    if (this.#timeoutMs <= 0 || this.#pending.has(key)) return;
    this.#pending.set(key, this.#now());
    this.#timer ??= setTimeout(() => this.#expire(), this.#timeoutMs);
  }

  /**
   * Stops the clock for `key` (its header is complete, or it is gone).
   * @param key the connection
   */
  stop(key: K): void {
    if (!this.#pending.delete(key) || this.#pending.size > 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Forgets every pending header and stops the timer. */
  [Symbol.dispose](): void {
    this.#pending.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#now();
    const late: K[] = [];
    for (const [key, since] of this.#pending) {
      // Timers may fire a little early; a millisecond is not worth a second wake-up.
      if (now - since < this.#timeoutMs - 1) break;
      late.push(key);
    }
    for (const key of late) this.#pending.delete(key);
    const oldest = this.#pending.values().next();
    if (!oldest.done) {
      this.#timer = setTimeout(
        () => this.#expire(),
        Math.max(1, oldest.value + this.#timeoutMs - now),
      );
    }
    for (const key of late) this.#onExpired(key);
  }
}
