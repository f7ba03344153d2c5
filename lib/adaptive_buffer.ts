/**
 * A read buffer that fits the traffic: an idle connection holds only a small
 * one (a waiting read pins it), bulk traffic grows it ×4 on each full read up
 * to the maximum (512 B, 2 KiB, 8 KiB, 32 KiB, 64 KiB by default), and a run
 * of reads that would have fit the small one (interactive use after a
 * transfer) gives the large one back. Measured for echo in
 * bench/history/echo.md; used by the byte-stream services (echo, discard,
 * redirect).
 *
 * @module
 */

/** Options for {@linkcode AdaptiveBuffer}. */
export interface AdaptiveBufferOptions {
  /** The size an idle connection holds. @default {512} */
  initial?: number;
  /** The largest size. @default {65536} */
  max?: number;
  /** Small reads in a row that shrink it back. @default {4} */
  shrinkAfter?: number;
}

/** One connection's read buffer. */
export class AdaptiveBuffer {
  #buffer: Uint8Array;
  #initial: number;
  #max: number;
  #shrinkAfter: number;
  #smallReads = 0;

  /**
   * @param options sizes and the shrink rule
   */
  constructor(options: AdaptiveBufferOptions = {}) {
    this.#initial = options.initial ?? 512;
    this.#max = options.max ?? 65536;
    this.#shrinkAfter = options.shrinkAfter ?? 4;
    this.#buffer = new Uint8Array(this.#initial);
  }

  /** The buffer to read into next. */
  get bytes(): Uint8Array {
    return this.#buffer;
  }

  /**
   * Takes the result of a read into {@linkcode AdaptiveBuffer.bytes} and
   * sizes the buffer for the next one.
   *
   * @example
   * ```ts
   * import { AdaptiveBuffer } from "./adaptive_buffer.ts";
   * const buffer = new AdaptiveBuffer();
   * const chunk = buffer.filled(buffer.bytes.length); // a full read
   * if (chunk.length !== 512 || buffer.bytes.length !== 2048) throw new Error("no growth");
   * ```
   *
   * @param n how many bytes the read put at the start of the buffer
   * @returns those bytes: still valid after the call (a grown or shrunk
   *   buffer is a new one), until the next read into the same buffer
   */
  filled(n: number): Uint8Array {
    const buffer = this.#buffer;
    const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
    if (n === buffer.length) {
      this.#smallReads = 0;
      if (buffer.length < this.#max) {
        this.#buffer = new Uint8Array(Math.min(buffer.length * 4, this.#max));
      }
    } else if (buffer.length > this.#initial && n <= this.#initial) {
      if (++this.#smallReads >= this.#shrinkAfter) {
        this.#smallReads = 0;
        this.#buffer = new Uint8Array(this.#initial);
      }
    } else {
      this.#smallReads = 0;
    }
    return chunk;
  }
}
