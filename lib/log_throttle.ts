/**
 * Keeps a repeated log line (a refused connection under a flood) from
 * flooding the log: the first occurrence is logged, then at most one line per
 * interval carrying the count since the last line.
 *
 * @module
 */

/** Counts occurrences of one event and says when a line is due. */
export class LogThrottle {
  #intervalMs: number;
  #last = -Infinity;
  #pending = 0;

  /**
   * @param intervalMs least time between two lines
   */
  constructor(intervalMs = 1000) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Records one occurrence.
   * @param now the current time in ms (performance.now())
   * @returns the number of occurrences to report now, or 0 when none is due
   */
  hit(now: number): number {
    this.#pending++;
    if (now - this.#last < this.#intervalMs) return 0;
    this.#last = now;
    const count = this.#pending;
    this.#pending = 0;
    return count;
  }
}
