/**
 * The fixed wire formats of the classic time services: RFC 868 (4 bytes,
 * seconds since 1900-01-01 UTC) and RFC 867 daytime (one ASCII line).
 *
 * @module
 */

/** Seconds from 1900-01-01 to 1970-01-01 (RFC 868's epoch to Unix's). */
export const RFC868_EPOCH_OFFSET = 2_208_988_800;

const TWO_32 = 2 ** 32;

/** The strftime format of a daytime line (as `ctime`, in the C locale). */
export const DAYTIME_FORMAT = "%a %b %e %H:%M:%S %Y";

/**
 * Encodes an instant as RFC 868 does: big-endian seconds since 1900-01-01
 * UTC, modulo 2^32 (so it wraps in 2036, as the RFC's clients expect).
 * @param epochMilliseconds the instant
 * @returns 4 bytes
 */
export function encodeRfc868(epochMilliseconds: number): Uint8Array {
  const seconds = Math.floor(epochMilliseconds / 1000) + RFC868_EPOCH_OFFSET;
  const wrapped = ((seconds % TWO_32) + TWO_32) % TWO_32;
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, wrapped);
  return bytes;
}

/**
 * Decodes RFC 868 bytes, choosing the 2^32-second era closest to a
 * reference time (so replies after the 2036 wrap decode correctly).
 *
 * @example
 * ```ts
 * import { decodeRfc868, encodeRfc868 } from "./wire.ts";
 * const t = Date.UTC(2040, 0, 1);
 * if (decodeRfc868(encodeRfc868(t), t) !== t) throw new Error("era");
 * ```
 *
 * @param bytes exactly 4 bytes
 * @param referenceMilliseconds a time near the answer, e.g. `Date.now()`
 * @returns the instant in ms since the Unix epoch (whole seconds)
 * @throws {RangeError} when `bytes` is not 4 bytes long
 */
export function decodeRfc868(bytes: Uint8Array, referenceMilliseconds: number): number {
  if (bytes.length !== 4) {
    throw new RangeError(`Cannot decode RFC 868 time: expected 4 bytes, got ${bytes.length}`);
  }
  const value = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  const reference = Math.floor(referenceMilliseconds / 1000) + RFC868_EPOCH_OFFSET;
  const era = Math.round((reference - value) / TWO_32);
  return (value + era * TWO_32 - RFC868_EPOCH_OFFSET) * 1000;
}
