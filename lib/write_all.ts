/**
 * Writing a whole byte array to a writer that may accept fewer bytes per call
 * (a TCP connection, a pipe).
 *
 * @module
 */

/** Anything with a Deno-style `write`, such as `Deno.Conn` or `Deno.FsFile`. */
export interface ByteWriter {
  /** Writes some prefix of `p`; resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes all of `data`, calling `writer.write` again after each short write.
 *
 * @example
 * ```ts
 * import { writeAll } from "./write_all.ts";
 * const chunks: number[] = [];
 * // A writer that accepts at most 2 bytes per call.
 * const writer = {
 *   write(p: Uint8Array): Promise<number> {
 *     chunks.push(...p.subarray(0, 2));
 *     return Promise.resolve(Math.min(2, p.length));
 *   },
 * };
 * await writeAll(writer, new Uint8Array([1, 2, 3, 4, 5]));
 * if (chunks.join() !== "1,2,3,4,5") throw new Error("short write lost bytes");
 * ```
 *
 * @param writer where to write
 * @param data the bytes to write; an empty array writes nothing
 * @returns when every byte has been accepted by the writer
 * @throws {Error} when the writer makes no progress (returns 0) or reports an
 *   impossible count; errors from `writer.write` propagate unchanged
 */
export async function writeAll(writer: ByteWriter, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const rest = data.length - offset;
    const n = await writer.write(offset === 0 ? data : data.subarray(offset));
    if (!Number.isInteger(n) || n <= 0 || n > rest) {
      throw new Error(`Cannot write: writer returned ${n} for ${rest} bytes`);
    }
    offset += n;
  }
}
