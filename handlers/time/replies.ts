/**
 * Turns one time request (a format string as bytes) into exactly one reply:
 * the formatted current time, or `error: <why>`. This is the hot path of the
 * time service, so compiled formats are kept in a small LRU cache, and each
 * one remembers its encoded output for the current second (or millisecond
 * when it shows milliseconds): a burst of identical requests costs a
 * decode, a map lookup and a clock read each.
 *
 * @module
 */

import type { CompiledTimeFormat } from "./dialect.ts";
import { compileTimeFormat } from "./format.ts";
import type { ZonedClock } from "../../lib/zoned_time.ts";

/** The longest format accepted, in bytes. */
export const MAX_FORMAT_BYTES = 256;

/** The largest reply sent, in bytes. */
export const MAX_REPLY_BYTES = 1024;

/** The default format of a listener. */
export const DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes `error: <why>`, kept under `limit` bytes.
 * @param why what is wrong
 * @param limit the largest reply allowed
 * @returns the reply bytes
 */
export function errorReply(why: string, limit: number = MAX_REPLY_BYTES): Uint8Array {
  const bytes = encoder.encode(`error: ${why}`);
  return bytes.length <= limit ? bytes : encoder.encode("error: invalid format");
}

/**
 * Strips one trailing `\n` or `\r\n` (what `nc` and `echo` add).
 * @param bytes the request
 * @returns a view without the line ending
 */
export function stripLineEnd(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 10) {
    end--;
    if (end > 0 && bytes[end - 1] === 13) end--;
  }
  return end === bytes.length ? bytes : bytes.subarray(0, end);
}

/**
 * Checks a format for use as a listener's `default_format`.
 * @param format the format
 * @param maxReply the listener's reply limit in bytes
 * @returns what is wrong, or undefined when it is fine
 */
export function checkDefaultFormat(format: string, maxReply: number): string | undefined {
  if (format === "") return "must not be empty";
  const bytes = encoder.encode(format).length;
  if (bytes > MAX_FORMAT_BYTES) {
    return `is ${bytes} bytes, over the ${MAX_FORMAT_BYTES}-byte format limit`;
  }
  let compiled: CompiledTimeFormat;
  try {
    compiled = compileTimeFormat(format);
  } catch (error) {
    return (error as Error).message;
  }
  if (compiled.maxBytes > maxReply) {
    return `can expand to ${compiled.maxBytes} bytes, over the ${maxReply}-byte reply limit`;
  }
  return undefined;
}

/** One cached format: compiled, or the error reply it always gets. */
interface Entry {
  compiled: CompiledTimeFormat | undefined;
  /** The second (or millisecond) `bytes` were made for; NaN when never. */
  stamp: number;
  /** The reply for `stamp` (or the error reply). */
  bytes: Uint8Array;
}

/** Options for {@linkcode TimeReplier}. */
export interface TimeReplierOptions {
  /** The listener's zone. */
  clock: ZonedClock;
  /** The format an empty request gets (already validated). */
  defaultFormat: string;
  /** The wall clock in ms since the epoch. @default {Date.now} */
  now?: () => number;
  /** The largest reply, in bytes. @default {MAX_REPLY_BYTES} */
  maxReply?: number;
  /** How many distinct formats stay compiled. @default {64} */
  cacheSize?: number;
}

/** Answers format requests for one listener. */
export class TimeReplier {
  #clock: ZonedClock;
  #now: () => number;
  #maxReply: number;
  #cacheSize: number;
  #cache = new Map<string, Entry>();
  #newest: string | undefined;
  #default: Entry;
  #tooLong: Uint8Array;
  // The last request's bytes and entry: a repeated format skips the decode.
  #lastRequest = new Uint8Array(MAX_FORMAT_BYTES);
  #lastLength = -1;
  #lastEntry: Entry | undefined;

  /**
   * @param options zone, default format, clock and limits
   * @throws {SyntaxError} when the default format is invalid
   */
  constructor(options: TimeReplierOptions) {
    this.#clock = options.clock;
    this.#now = options.now ?? Date.now;
    this.#maxReply = options.maxReply ?? MAX_REPLY_BYTES;
    this.#cacheSize = options.cacheSize ?? 64;
    this.#default = this.#entry(compileTimeFormat(options.defaultFormat));
    this.#tooLong = errorReply(`format is over the ${MAX_FORMAT_BYTES}-byte limit`);
  }

  /** The reply to a format that is too long (a TCP line over the cap). */
  get tooLong(): Uint8Array {
    return this.#tooLong;
  }

  #entry(compiled: CompiledTimeFormat | undefined, error?: Uint8Array): Entry {
    return { compiled, stamp: NaN, bytes: error ?? new Uint8Array(0) };
  }

  /**
   * The reply to one request. The returned bytes may be shared with later
   * replies: send them, do not change them.
   * @param request the format, without its line ending
   * @returns the reply (never longer than the reply limit)
   */
  reply(request: Uint8Array): Uint8Array {
    let entry: Entry;
    if (request.length === 0) {
      entry = this.#default;
    } else if (request.length > MAX_FORMAT_BYTES) {
      return errorReply(
        `format is ${request.length} bytes, over the ${MAX_FORMAT_BYTES}-byte limit`,
        this.#maxReply,
      );
    } else if (this.#lastEntry !== undefined && this.#isLastRequest(request)) {
      entry = this.#lastEntry;
    } else {
      let key: string;
      try {
        key = decoder.decode(request);
      } catch {
        return errorReply("format is not valid UTF-8", this.#maxReply);
      }
      entry = this.#lookup(key);
      this.#lastRequest.set(request);
      this.#lastLength = request.length;
      this.#lastEntry = entry;
    }
    const compiled = entry.compiled;
    if (compiled === undefined) return entry.bytes;
    const now = this.#now();
    const stamp = compiled.usesMilliseconds ? now : Math.floor(now / 1000);
    if (stamp !== entry.stamp) {
      const text = compiled.format(
        this.#clock.fieldsAt(compiled.usesMilliseconds ? now : stamp * 1000),
      );
      let bytes: Uint8Array = encoder.encode(text);
      if (bytes.length > this.#maxReply) {
        bytes = errorReply(
          `reply would be ${bytes.length} bytes, over the ${this.#maxReply}-byte limit`,
          this.#maxReply,
        );
      }
      entry.stamp = stamp;
      entry.bytes = bytes;
    }
    return entry.bytes;
  }

  #isLastRequest(request: Uint8Array): boolean {
    const length = request.length;
    if (length !== this.#lastLength) return false;
    const last = this.#lastRequest;
    for (let i = 0; i < length; i++) if (request[i] !== last[i]) return false;
    return true;
  }

  #lookup(key: string): Entry {
    const cache = this.#cache;
    let entry = cache.get(key);
    if (entry !== undefined) {
      if (this.#newest !== key) {
        // Least recently used first: move to the end.
        cache.delete(key);
        cache.set(key, entry);
        this.#newest = key;
      }
      return entry;
    }
    try {
      entry = this.#entry(compileTimeFormat(key));
    } catch (error) {
      entry = this.#entry(undefined, errorReply((error as Error).message, this.#maxReply));
    }
    if (cache.size >= this.#cacheSize) cache.delete(cache.keys().next().value!);
    cache.set(key, entry);
    this.#newest = key;
    return entry;
  }
}
