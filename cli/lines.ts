/**
 * Splits a byte stream into lines without decoding it (non-UTF-8 bytes pass
 * through untouched).
 *
 * @module
 */

/** Something to read bytes from, like `Deno.stdin`. */
export interface LineSource {
  /** Reads into `p`; null at end of input. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Options for {@linkcode readLines}. */
export interface ReadLinesOptions {
  /** Longest line kept whole; longer ones are yielded in pieces. @default {65536} */
  maxLine?: number;
}

/**
 * Yields each line of `source` without its `\n` or `\r\n`; a last line
 * without a newline is yielded too.
 *
 * @example
 * ```ts
 * import { readLines } from "./lines.ts";
 * const bytes = new TextEncoder().encode("a\r\nb\nc");
 * let done = false;
 * const source = { read: (p: Uint8Array) => {
 *   if (done) return Promise.resolve(null);
 *   done = true; p.set(bytes); return Promise.resolve(bytes.length);
 * } };
 * const lines: string[] = [];
 * for await (const line of readLines(source)) lines.push(new TextDecoder().decode(line));
 * if (lines.join("|") !== "a|b|c") throw new Error(lines.join("|"));
 * ```
 *
 * @param source where bytes come from
 * @param options the longest line kept whole
 * @returns an async iterator of lines (each a fresh array)
 */
export async function* readLines(
  source: LineSource,
  options: ReadLinesOptions = {},
): AsyncGenerator<Uint8Array> {
  const maxLine = options.maxLine ?? 65536;
  const chunk = new Uint8Array(16384);
  let pending = new Uint8Array(0);
  for (;;) {
    const n = await source.read(chunk);
    if (n === null) break;
    const joined = new Uint8Array(pending.length + n);
    joined.set(pending);
    joined.set(chunk.subarray(0, n), pending.length);
    let start = 0;
    for (let i = joined.indexOf(10); i >= 0; i = joined.indexOf(10, start)) {
      const end = i > start && joined[i - 1] === 13 ? i - 1 : i;
      yield joined.slice(start, end);
      start = i + 1;
    }
    pending = joined.slice(start);
    while (pending.length > maxLine) {
      yield pending.slice(0, maxLine);
      pending = pending.slice(maxLine);
    }
  }
  if (pending.length > 0) yield pending;
}
