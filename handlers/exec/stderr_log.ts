/**
 * A program's stderr as log lines (exec's `stderr = "log"`): split at `\n`,
 * a line longer than 4 KiB logged in pieces, invalid UTF-8 replaced, and at
 * most 20 lines a second (bursts of 100) so a chatty program cannot flood
 * the log; what is dropped is counted.
 *
 * @module
 */

import type { Logger } from "../../lib/log.ts";
import { TokenBucket } from "../../lib/token_bucket.ts";

/** The longest piece of a line in one log line, in bytes. */
export const MAX_LOG_LINE = 4096;
const RATE = { count: 20, perMs: 1000 };
const BURST = 100;

/** Turns a program's stderr bytes into log lines. */
export class StderrLog {
  #log: Logger;
  #now: () => number;
  #bucket: TokenBucket;
  #pending = new Uint8Array(MAX_LOG_LINE);
  #length = 0;
  #decoder = new TextDecoder();
  /** Lines (or pieces) logged. */
  logged = 0;
  /** Lines (or pieces) dropped by the rate limit. */
  dropped = 0;

  /**
   * @param log the connection's logger (with the program's pid)
   * @param now a monotonic clock in ms @default {performance.now}
   */
  constructor(log: Logger, now: () => number = () => performance.now()) {
    this.#log = log;
    this.#now = now;
    this.#bucket = new TokenBucket({ rate: RATE, burst: BURST, now: now() });
  }

  /**
   * Takes a chunk of stderr (only read during the call).
   * @param chunk bytes as the program wrote them
   */
  write(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      const room = MAX_LOG_LINE - this.#length;
      const take = Math.min(end - start, room);
      this.#pending.set(chunk.subarray(start, start + take), this.#length);
      this.#length += take;
      start += take;
      if (this.#length === MAX_LOG_LINE || start === newline) {
        this.#emit();
        if (start === newline) start++;
      }
    }
  }

  /** Logs what is left of an unfinished last line. */
  flush(): void {
    if (this.#length > 0) this.#emit();
  }

  #emit(): void {
    let bytes = this.#pending.subarray(0, this.#length);
    if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
    this.#length = 0;
    if (!this.#bucket.take(this.#now())) {
      this.dropped++;
      return;
    }
    this.logged++;
    this.#log.info(`stderr: ${this.#decoder.decode(bytes)}`);
  }
}
