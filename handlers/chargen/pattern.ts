/**
 * RFC 864's recommended pattern: lines of 72 characters taken from the 95
 * printable ASCII characters (space to `~`), each line starting one
 * character further on, each ended by CRLF. After 95 lines it repeats, so
 * one period of 95 × 74 = 7,030 bytes describes the whole stream.
 *
 * @module
 */

/** Characters per line, before CRLF. */
export const LINE_LENGTH = 72;
/** How many printable ASCII characters there are (0x20 … 0x7e). */
export const PRINTABLE = 95;
/** Bytes in one period of the stream (95 lines of 72 characters and CRLF). */
export const PERIOD = PRINTABLE * (LINE_LENGTH + 2);

/**
 * Builds `periods` whole periods of the stream, starting with the line that
 * begins with a space.
 *
 * @example
 * ```ts
 * import { chargenPeriods } from "./pattern.ts";
 * const text = new TextDecoder().decode(chargenPeriods(1));
 * const lines = text.split("\r\n");
 * if (lines[0] !== ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg') {
 *   throw new Error(lines[0]);
 * }
 * if (!lines[1]!.startsWith('!"#') || lines.length !== 96) throw new Error("wrong shape");
 * ```
 *
 * @param periods how many periods (at least 1)
 * @returns the bytes
 */
export function chargenPeriods(periods: number): Uint8Array {
  const out = new Uint8Array(PERIOD * periods);
  let at = 0;
  for (let line = 0; line < PRINTABLE * periods; line++) {
    for (let column = 0; column < LINE_LENGTH; column++) {
      out[at++] = 0x20 + (line + column) % PRINTABLE;
    }
    out[at++] = 0x0d;
    out[at++] = 0x0a;
  }
  return out;
}
