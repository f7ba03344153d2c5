/**
 * A token bucket: `burst` tokens at most, refilled continuously at `rate`.
 * Each event takes a token; an event that finds the bucket empty is over the
 * limit. Time comes from the caller (a monotonic ms clock), so tests can
 * drive it.
 *
 * @module
 */

import type { Rate } from "./units.ts";

/** Options for {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Refill rate, e.g. `{ count: 20, perMs: 1000 }` for 20 per second. */
  rate: Rate;
  /** Capacity: how many events may come at once after a quiet spell. */
  burst: number;
  /** The current time in ms; the bucket starts full at this time. */
  now: number;
}

/**
 * Limits the rate of events.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * const bucket = new TokenBucket({ rate: { count: 1, perMs: 1000 }, burst: 2, now: 0 });
 * const taken = [bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(1000)];
 * if (taken.join() !== "true,true,false,true") throw new Error(taken.join());
 * ```
 */
export class TokenBucket {
  #perMs: number;
  #capacity: number;
  #tokens: number;
  #last: number;

  /**
   * Creates a full bucket.
   * @param options rate, burst and the current time
   * @throws {RangeError} when the rate or the burst is not positive
   */
  constructor(options: TokenBucketOptions) {
    this.#perMs = 0;
    this.#capacity = 0;
    this.configure(options.rate, options.burst);
    this.#tokens = this.#capacity;
    this.#last = options.now;
  }

  /**
   * Changes the rate and capacity, keeping the tokens there are (capped).
   * @param rate the new refill rate
   * @param burst the new capacity
   * @throws {RangeError} when the rate or the burst is not positive
   */
  configure(rate: Rate, burst: number): void {
    if (!(rate.count > 0 && rate.perMs > 0)) {
      throw new RangeError(`Rate must be positive, got ${rate.count}/${rate.perMs}ms`);
    }
    if (!(burst >= 1)) throw new RangeError(`Burst must be at least 1, got ${burst}`);
    this.#perMs = rate.count / rate.perMs;
    this.#capacity = burst;
    if (this.#tokens > burst) this.#tokens = burst;
  }

  /**
   * Takes one token if there is one.
   * @param now the current time in ms (a clock that went back adds nothing)
   * @returns true when the event is within the limit
   */
  take(now: number): boolean {
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      const tokens = this.#tokens + elapsed * this.#perMs;
      this.#tokens = tokens < this.#capacity ? tokens : this.#capacity;
      this.#last = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  /** The tokens left (fractional), as of the last {@linkcode TokenBucket.take}. */
  get tokens(): number {
    return this.#tokens;
  }
}
