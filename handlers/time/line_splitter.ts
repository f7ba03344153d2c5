/**
 * Splits a byte stream into lines with a hard cap on line length, for
 * line-based request/reply protocols: memory stays bounded however long a
 * line is, and an over-long line is reported once, then skipped up to its
 * newline.
 *
 * @module
 */

/** Marks a line that was over the cap (its bytes are discarded). */
export const OVER_LIMIT: unique symbol = Symbol("over limit");

/** What {@linkcode LineSplitter.next} yields. */
export type LineEvent = Uint8Array | typeof OVER_LIMIT;

/**
 * Feed it chunks, then take lines with `next()` until it returns undefined.
 *
 * @example
 * ```ts
 * import { LineSplitter, OVER_LIMIT } from "./line_splitter.ts";
 * const splitter = new LineSplitter(4);
 * splitter.feed(new TextEncoder().encode("ab\r\ntoo long\nc"));
 * const seen = [];
 * for (let e = splitter.next(); e !== undefined; e = splitter.next()) {
 *   seen.push(e === OVER_LIMIT ? "!" : new TextDecoder().decode(e));
 * }
 * const rest = splitter.finish();
 * if (seen.join("|") !== "ab|!" || !(rest instanceof Uint8Array) || rest[0] !== 99) {
 *   throw new Error(seen.join("|"));
 * }
 * ```
 */
export class LineSplitter {
  #maxLine: number;
  #pending: Uint8Array;
  #pendingLength = 0;
  #discarding = false;
  #chunk: Uint8Array = new Uint8Array(0);
  #position = 0;

  /**
   * @param maxLine the longest line accepted, in bytes, without its `\n` or `\r\n`
   */
  constructor(maxLine: number) {
    this.#maxLine = maxLine;
    // Room for the line and a "\r" whose "\n" has not arrived yet.
    this.#pending = new Uint8Array(maxLine + 1);
  }

  /**
   * Whether a line has begun and not ended yet (bytes kept, or an over-long
   * line being skipped up to its newline): its rest is still to come.
   */
  get pending(): boolean {
    return this.#pendingLength > 0 || this.#discarding;
  }

  /**
   * Hands over the next chunk. It must stay unchanged until `next()` has
   * returned undefined; the lines returned may be views of it.
   * @param chunk bytes read from the stream
   */
  feed(chunk: Uint8Array): void {
    this.#chunk = chunk;
    this.#position = 0;
  }

  /**
   * The next complete line of the current chunk (without `\n` or `\r\n`),
   * {@linkcode OVER_LIMIT} once for a line over the cap (as soon as that is
   * known), or undefined when the chunk is used up.
   * @returns the event; a line is valid until the next call
   */
  next(): LineEvent | undefined {
    const chunk = this.#chunk;
    while (this.#position < chunk.length) {
      const start = this.#position;
      const newline = chunk.indexOf(10, start);
      const end = newline < 0 ? chunk.length : newline;
      this.#position = newline < 0 ? chunk.length : newline + 1;
      if (this.#discarding) {
        if (newline >= 0) this.#discarding = false;
        continue;
      }
      const piece = chunk.subarray(start, end);
      if (newline >= 0 && this.#pendingLength === 0) {
        const line = withoutCr(piece);
        if (line.length <= this.#maxLine) return line;
        return OVER_LIMIT;
      }
      if (this.#pendingLength + piece.length > this.#pending.length) {
        this.#pendingLength = 0;
        this.#discarding = newline < 0;
        return OVER_LIMIT;
      }
      this.#pending.set(piece, this.#pendingLength);
      this.#pendingLength += piece.length;
      if (newline >= 0) {
        const line = withoutCr(this.#pending.subarray(0, this.#pendingLength));
        this.#pendingLength = 0;
        if (line.length <= this.#maxLine) return line;
        return OVER_LIMIT;
      }
    }
    return undefined;
  }

  /**
   * Ends the stream: the last line if it had no newline, {@linkcode OVER_LIMIT}
   * if that line is over the cap, or null when there is none (or it was
   * over the cap and already reported).
   * @returns the unterminated last line, or null
   */
  finish(): LineEvent | null {
    const length = this.#pendingLength;
    this.#pendingLength = 0;
    this.#discarding = false;
    if (length === 0) return null;
    return length > this.#maxLine ? OVER_LIMIT : this.#pending.slice(0, length);
  }
}

function withoutCr(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line;
}
