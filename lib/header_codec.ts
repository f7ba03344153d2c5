/**
 * The header codec shared by the `cmd` and `file` services and their clients:
 * a frame is a 4-byte big-endian header length, a UTF-8 JSON object (the
 * header), and, when the header has `size`, exactly that many body bytes.
 *
 * ```
 * frame  = length header [body]
 * length = 4 bytes, unsigned, big-endian: byte length of header (1 .. 65536)
 * header = UTF-8 JSON text of one object
 * body   = exactly header.size bytes, present only when header has "size"
 * ```
 *
 * The codec only checks framing. A missing or unknown `op` is left to the
 * service (it is a request-level `bad_request`, not a `bad_frame`).
 *
 * @module
 */

import { type ByteWriter, writeAll } from "./write_all.ts";

export type { ByteWriter };

/** The default limit on the byte length of a header (the JSON text). */
export const DEFAULT_MAX_HEADER_LENGTH = 65536;

/** The default size of a {@linkcode FrameReader}'s internal buffer (16 KiB). */
export const DEFAULT_BUFFER_SIZE = 16384;

/** The largest limit the 4-byte length prefix can express. */
const MAX_PREFIX_VALUE = 0xffff_ffff;

/** Bodies up to this length are copied behind the header so a frame is one write. */
const COALESCE_LIMIT = 65536;

/**
 * A decoded header: one JSON object. `size`, when present, has been checked to
 * be a non-negative safe integer; every other field is as the peer sent it.
 */
export type FrameHeader = { op?: unknown; size?: number; [key: string]: unknown };

/** Why a frame was rejected (see {@linkcode FrameError}). */
export type FrameErrorReason = "length" | "utf8" | "json" | "not_object" | "size" | "truncated";

/**
 * A malformed frame. Services answer it with an error frame carrying
 * {@linkcode FrameError.code} and close the connection: the stream cannot be
 * resynchronised.
 */
export class FrameError extends Error {
  /** The protocol error code; always `bad_frame`. */
  readonly code: "bad_frame" = "bad_frame";
  /** What was wrong with the frame. */
  readonly reason: FrameErrorReason;

  /**
   * @param reason what was wrong with the frame
   * @param message a sentence-case description without a final period
   * @param options the underlying error, if any
   */
  constructor(reason: FrameErrorReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrameError";
    this.reason = reason;
  }
}

/** Options for {@linkcode encodeFrame}, {@linkcode encodeHeader} and {@linkcode writeFrame}. */
export interface EncodeOptions {
  /** The largest header (JSON text) in bytes. @default {65536} */
  maxHeaderLength?: number;
}

/** Options for {@linkcode FrameReader}. */
export interface FrameReaderOptions {
  /** The largest header (JSON text) in bytes a peer may send. @default {65536} */
  maxHeaderLength?: number;
  /**
   * The size of the internal buffer kept between frames. It grows for a larger
   * header (up to `maxHeaderLength + 4`) and shrinks back once that header has
   * been consumed, so an idle connection pins only this much. @default {16384}
   */
  bufferSize?: number;
  /**
   * Told `true` when a header has begun arriving but is incomplete, so the
   * reader must wait for the rest of it, and `false` once that header is
   * complete or has failed: what a header timeout measures. A header that
   * arrives in one read (the usual case) makes no call.
   */
  onPartialHeader?: (pending: boolean) => void;
}

/** Anything with a Deno-style `read`, such as `Deno.Conn` or `Deno.FsFile`. */
export interface ByteReader {
  /** Reads into `p`; resolves with the count, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
}

const encoder = new TextEncoder();
// ignoreBOM keeps a leading BOM in the text, so JSON.parse rejects it: senders
// must not add one (RFC 8259 §8.1).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function checkMaxHeaderLength(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_HEADER_LENGTH;
  if (!Number.isInteger(value) || value < 1 || value > MAX_PREFIX_VALUE) {
    throw new RangeError(
      `Cannot use header limit "${value}": expected an integer from 1 to ${MAX_PREFIX_VALUE}`,
    );
  }
  return value;
}

function isValidSize(size: unknown): size is number {
  return typeof size === "number" && Number.isSafeInteger(size) && size >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Checks `header` and returns its JSON text, with `size` set to the body length. */
function headerJson(header: Record<string, unknown>, bodyLength: number | undefined): string {
  if (!isPlainObject(header)) {
    throw new TypeError("Cannot encode frame: header is not a plain object");
  }
  if (typeof header.op !== "string") {
    throw new TypeError(`Cannot encode frame: "op" is ${describe(header.op)}, not a string`);
  }
  const size = header.size;
  if (size !== undefined) {
    if (typeof size !== "number") {
      throw new TypeError(`Cannot encode frame: "size" is ${describe(size)}, not a number`);
    }
    if (!isValidSize(size)) {
      throw new RangeError(
        `Cannot encode frame: "size" is ${size}, not a non-negative safe integer`,
      );
    }
  }
  if (bodyLength !== undefined && size !== undefined && size !== bodyLength) {
    throw new RangeError(
      `Cannot encode frame: "size" ${size} does not match body length ${bodyLength}`,
    );
  }
  const json: unknown = JSON.stringify(
    bodyLength !== undefined && size === undefined ? { ...header, size: bodyLength } : header,
  );
  // A toJSON method could turn the header into something other than an object.
  if (typeof json !== "string" || json[0] !== "{") {
    throw new TypeError("Cannot encode frame: header does not serialise to a JSON object");
  }
  return json;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "undefined" ? "missing" : `a ${typeof value}`;
}

/**
 * Lays out prefix + header + body in one array with a single allocation when
 * the JSON text is ASCII (the usual case).
 */
function encode(
  header: Record<string, unknown>,
  body: Uint8Array | undefined,
  options: EncodeOptions | undefined,
  bodyLength: number | undefined,
): Uint8Array {
  const max = checkMaxHeaderLength(options?.maxHeaderLength);
  const json = headerJson(header, bodyLength);
  // A UTF-8 encoding has at least as many bytes as the UTF-16 text has code
  // units, so this bound needs no encoding.
  if (json.length > max) throw tooLong(json.length, max, true);
  const bodyBytes = body?.length ?? 0;
  let out = new Uint8Array(4 + json.length + bodyBytes);
  const { read, written } = encoder.encodeInto(json, out.subarray(4, 4 + json.length));
  let headerLength = written;
  if (read !== json.length) {
    // Non-ASCII text: encode separately, then lay out at the exact length.
    const bytes = encoder.encode(json);
    if (bytes.length > max) throw tooLong(bytes.length, max, false);
    headerLength = bytes.length;
    out = new Uint8Array(4 + headerLength + bodyBytes);
    out.set(bytes, 4);
  }
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(0, headerLength);
  if (body !== undefined && bodyBytes > 0) out.set(body, 4 + headerLength);
  return out;
}

function tooLong(length: number, max: number, atLeast: boolean): RangeError {
  const what = atLeast ? `at least ${length}` : `${length}`;
  return new RangeError(`Cannot encode frame: header length ${what} exceeds limit ${max}`);
}

/**
 * Encodes one frame: length prefix, header and, when given, the body. With a
 * body, `size` is set to the body's length (or checked against it when the
 * header already has one); the caller's object is not modified. Without a
 * body this is {@linkcode encodeHeader}.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader } from "./header_codec.ts";
 *
 * const frame = encodeFrame({ op: "stdout" }, new TextEncoder().encode("hi\n"));
 * // An in-memory source that hands out at most 3 bytes per read.
 * let offset = 0;
 * const source = {
 *   read(p: Uint8Array): Promise<number | null> {
 *     if (offset === frame.length) return Promise.resolve(null);
 *     const n = Math.min(p.length, 3, frame.length - offset);
 *     p.set(frame.subarray(offset, offset + n));
 *     offset += n;
 *     return Promise.resolve(n);
 *   },
 * };
 * const reader = new FrameReader(source);
 * const header = await reader.readHeader();
 * if (header?.op !== "stdout" || header.size !== 3) throw new Error("wrong header");
 * const body = new Uint8Array(header.size);
 * let got = 0;
 * while (got < body.length) got += (await reader.readBody(body.subarray(got))) ?? 0;
 * if (new TextDecoder().decode(body) !== "hi\n") throw new Error("wrong body");
 * if (await reader.readHeader() !== null) throw new Error("expected end of stream");
 * ```
 *
 * @param header a plain object with a string `op`; other fields are kept
 * @param body the body bytes, if the frame has a body
 * @param options the header length limit
 * @returns the encoded frame
 * @throws {TypeError} when `header` is not a plain object, `op` is not a
 *   string, `size` is not a number, or a field cannot be serialised to JSON
 * @throws {RangeError} when the encoded header exceeds the limit, `size` is not
 *   a non-negative safe integer, or `size` differs from the body's length
 */
export function encodeFrame(
  header: Record<string, unknown>,
  body?: Uint8Array,
  options?: EncodeOptions,
): Uint8Array {
  return encode(header, body, options, body?.length);
}

/**
 * Encodes only the length prefix and the header, for a body the caller streams
 * afterwards: the header's `size` announces that many bytes, which the caller
 * must then write exactly.
 *
 * @example
 * ```ts
 * import { encodeHeader } from "./header_codec.ts";
 * const bytes = encodeHeader({ op: "file", size: 5_000_000_000 });
 * if (bytes[3] !== bytes.length - 4) throw new Error("wrong length prefix");
 * ```
 *
 * @param header a plain object with a string `op`, and `size` if a body follows
 * @param options the header length limit
 * @returns the length prefix followed by the header
 * @throws {TypeError} as {@linkcode encodeFrame}
 * @throws {RangeError} as {@linkcode encodeFrame}
 */
export function encodeHeader(header: Record<string, unknown>, options?: EncodeOptions): Uint8Array {
  return encode(header, undefined, options, undefined);
}

/**
 * Encodes and writes one frame. A body up to 64 KiB is sent in the same write
 * as its header; a larger one is written after the header without copying.
 *
 * @param writer where to write, e.g. a `Deno.Conn`
 * @param header a plain object with a string `op`
 * @param body the body bytes, if the frame has a body
 * @param options the header length limit
 * @returns when the writer has accepted the whole frame
 * @throws {TypeError} as {@linkcode encodeFrame}
 * @throws {RangeError} as {@linkcode encodeFrame}
 */
export async function writeFrame(
  writer: ByteWriter,
  header: Record<string, unknown>,
  body?: Uint8Array,
  options?: EncodeOptions,
): Promise<void> {
  if (body === undefined || body.length <= COALESCE_LIMIT) {
    await writeAll(writer, encode(header, body, options, body?.length));
    return;
  }
  await writeAll(writer, encode(header, undefined, options, body.length));
  await writeAll(writer, body);
}

/**
 * Reads frames from a byte stream. Several frames in one read and one frame
 * spread over many reads are handled alike. Body bytes are never buffered as a
 * whole: {@linkcode FrameReader.readBody} serves what is already buffered, then
 * reads straight into the caller's array.
 *
 * A body must be consumed (by `readBody`, `skipBody` or `bodyChunks`) before
 * the next `readHeader`; calling `readHeader` with body bytes unread is a
 * programming error and throws a plain `Error`. After a {@linkcode FrameError}
 * the stream is out of step and every later call throws the same error.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader } from "./header_codec.ts";
 *
 * // Two frames arriving in one read ("sticky packets").
 * const a = encodeFrame({ op: "stdin" }, new Uint8Array([1, 2, 3]));
 * const b = encodeFrame({ op: "eof" });
 * const data = new Uint8Array([...a, ...b]);
 * let done = false;
 * const source = {
 *   read(p: Uint8Array): Promise<number | null> {
 *     if (done) return Promise.resolve(null);
 *     done = true;
 *     p.set(data);
 *     return Promise.resolve(data.length);
 *   },
 * };
 *
 * const reader = new FrameReader(source);
 * const ops: unknown[] = [];
 * for (let h = await reader.readHeader(); h !== null; h = await reader.readHeader()) {
 *   ops.push(h.op);
 *   for await (const chunk of reader.bodyChunks()) ops.push(chunk.length);
 * }
 * if (ops.join() !== "stdin,3,eof") throw new Error(`got ${ops}`);
 * ```
 */
export class FrameReader {
  #source: ByteReader;
  #maxHeaderLength: number;
  #bufferSize: number;
  #buf: Uint8Array;
  /** Buffered, unconsumed bytes are `#buf[#start..#end)`. */
  #start = 0;
  #end = 0;
  #bodyRemaining = 0;
  #error: FrameError | undefined;
  #onPartialHeader: ((pending: boolean) => void) | undefined;
  #partial = false;

  /**
   * @param source the stream to read, e.g. a `Deno.Conn`
   * @param options the header limit and the internal buffer size
   * @throws {RangeError} when an option is not a positive integer in range
   */
  constructor(source: ByteReader, options: FrameReaderOptions = {}) {
    this.#source = source;
    this.#maxHeaderLength = checkMaxHeaderLength(options.maxHeaderLength);
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(bufferSize) || bufferSize < 1 || bufferSize > 2 ** 30) {
      throw new RangeError(
        `Cannot use buffer size "${bufferSize}": expected an integer from 1 to ${2 ** 30}`,
      );
    }
    this.#bufferSize = bufferSize;
    this.#buf = new Uint8Array(bufferSize);
    this.#onPartialHeader = options.onPartialHeader;
  }

  /** The number of bytes of the current body not yet read. */
  get bodyRemaining(): number {
    return this.#bodyRemaining;
  }

  /**
   * Reads the next header.
   *
   * @returns the header, or `null` when the stream ends cleanly between frames
   * @throws {FrameError} when the frame is malformed or the stream ends inside it
   * @throws {Error} when the previous frame's body has not been fully consumed
   */
  async readHeader(): Promise<FrameHeader | null> {
    if (this.#error) throw this.#error;
    if (this.#bodyRemaining > 0) {
      throw new Error(
        `Cannot read header: ${this.#bodyRemaining} body bytes of the previous frame are unread`,
      );
    }
    if (this.#end === this.#start && !(await this.#fillOnce())) return null;
    try {
      if (!(await this.#fill(4))) {
        throw this.#fail("truncated", "Cannot read frame: stream ended inside the length prefix");
      }
      const view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
      const length = view.getUint32(this.#start);
      if (length === 0) {
        throw this.#fail("length", "Cannot read frame: header length 0 is below minimum 1");
      }
      if (length > this.#maxHeaderLength) {
        throw this.#fail(
          "length",
          `Cannot read frame: header length ${length} exceeds limit ${this.#maxHeaderLength}`,
        );
      }
      if (!(await this.#fill(4 + length))) {
        throw this.#fail(
          "truncated",
          `Cannot read frame: stream ended after ${
            this.#end - this.#start - 4
          } of ${length} header bytes`,
        );
      }
      const begin = this.#start + 4;
      const bytes = this.#buf.subarray(begin, begin + length);
      this.#start = begin + length;
      const header = this.#parse(bytes);
      this.#bodyRemaining = header.size ?? 0;
      this.#shrink();
      return header;
    } finally {
      if (this.#partial) {
        this.#partial = false;
        this.#onPartialHeader?.(false);
      }
    }
  }

  /**
   * Reads up to `p.length` bytes of the current body into `p`. Never reads
   * past the body: the next frame's bytes stay buffered.
   *
   * @param p where to put the bytes
   * @returns the number of bytes read (0 when `p` is empty or the source read
   *   0 bytes), or `null` when the body is finished
   * @throws {FrameError} with reason `truncated` when the stream ends mid-body
   */
  async readBody(p: Uint8Array): Promise<number | null> {
    if (this.#error) throw this.#error;
    if (this.#bodyRemaining === 0) return null;
    if (p.length === 0) return 0;
    const want = Math.min(p.length, this.#bodyRemaining);
    if (this.#end === this.#start) {
      if (want >= this.#buf.length) {
        // Large request: read straight into the caller's array, no copy.
        const n = await this.#source.read(want === p.length ? p : p.subarray(0, want));
        if (n === null) throw this.#truncatedBody();
        this.#bodyRemaining -= n;
        return n;
      }
      if (!(await this.#fillOnce())) throw this.#truncatedBody();
    }
    const n = Math.min(want, this.#end - this.#start);
    p.set(this.#buf.subarray(this.#start, this.#start + n));
    this.#start += n;
    this.#bodyRemaining -= n;
    return n;
  }

  /**
   * Reads and discards the rest of the current body. Bytes after it stay
   * buffered for the next {@linkcode FrameReader.readHeader}.
   *
   * @returns when the body has been consumed
   * @throws {FrameError} with reason `truncated` when the stream ends mid-body
   */
  async skipBody(): Promise<void> {
    if (this.#error) throw this.#error;
    while (this.#bodyRemaining > 0) {
      if (this.#end === this.#start && !(await this.#fillOnce())) throw this.#truncatedBody();
      const n = Math.min(this.#bodyRemaining, this.#end - this.#start);
      this.#start += n;
      this.#bodyRemaining -= n;
    }
  }

  /**
   * Iterates over the rest of the current body in chunks. Each chunk is a view
   * of the internal buffer, valid only until the next iteration step; copy it to
   * keep it. Stopping early leaves the rest of the body unread.
   *
   * @returns an async iterator of body chunks
   * @throws {FrameError} with reason `truncated` when the stream ends mid-body
   */
  async *bodyChunks(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#error) throw this.#error;
    while (this.#bodyRemaining > 0) {
      if (this.#end === this.#start && !(await this.#fillOnce())) throw this.#truncatedBody();
      const n = Math.min(this.#bodyRemaining, this.#end - this.#start);
      const chunk = this.#buf.subarray(this.#start, this.#start + n);
      this.#start += n;
      this.#bodyRemaining -= n;
      yield chunk;
    }
  }

  #parse(bytes: Uint8Array): FrameHeader {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (cause) {
      throw this.#fail("utf8", "Cannot read frame: header is not valid UTF-8", { cause });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw this.#fail("json", "Cannot read frame: header is not valid JSON", { cause });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw this.#fail(
        "not_object",
        `Cannot read frame: header is ${describe(value)}, not an object`,
      );
    }
    const header = value as FrameHeader;
    if (Object.hasOwn(header, "size")) {
      const size: unknown = header.size;
      if (!isValidSize(size)) {
        const shown = typeof size === "number" ? String(size) : describe(size);
        throw this.#fail(
          "size",
          `Cannot read frame: "size" is ${shown}, not a non-negative safe integer`,
        );
      }
      if (Object.is(size, -0)) header.size = 0;
    }
    return header;
  }

  /** Makes sure at least `count` bytes are buffered; false if the stream ends first. */
  async #fill(count: number): Promise<boolean> {
    while (this.#end - this.#start < count) {
      if (!this.#partial && this.#onPartialHeader) {
        this.#partial = true;
        this.#onPartialHeader(true);
      }
      if (this.#buf.length - this.#start < count) this.#makeRoom(count);
      if (!(await this.#fillOnce())) return false;
    }
    return true;
  }

  /** One read into the free tail of the buffer; false at end of stream. */
  async #fillOnce(): Promise<boolean> {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      if (this.#buf.length > this.#bufferSize) this.#buf = new Uint8Array(this.#bufferSize);
    } else if (this.#end === this.#buf.length) {
      this.#makeRoom(this.#end - this.#start + 1);
    }
    const n = await this.#source.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** Moves the buffered bytes to the front, growing the buffer to hold `count` bytes. */
  #makeRoom(count: number): void {
    const buffered = this.#buf.subarray(this.#start, this.#end);
    if (count > this.#buf.length) {
      // count never exceeds maxHeaderLength + 4 (checked before any growth).
      const size = Math.min(
        Math.max(this.#buf.length * 2, count),
        Math.max(this.#maxHeaderLength + 4, this.#bufferSize),
      );
      const grown = new Uint8Array(size);
      grown.set(buffered);
      this.#buf = grown;
    } else {
      this.#buf.copyWithin(0, this.#start, this.#end);
    }
    this.#end -= this.#start;
    this.#start = 0;
  }

  /** Returns to the configured buffer size once a large header has been consumed. */
  #shrink(): void {
    if (this.#buf.length <= this.#bufferSize) return;
    const buffered = this.#end - this.#start;
    if (buffered > this.#bufferSize) return;
    const small = new Uint8Array(this.#bufferSize);
    small.set(this.#buf.subarray(this.#start, this.#end));
    this.#buf = small;
    this.#start = 0;
    this.#end = buffered;
  }

  #truncatedBody(): FrameError {
    return this.#fail(
      "truncated",
      `Cannot read frame: stream ended with ${this.#bodyRemaining} body bytes missing`,
    );
  }

  #fail(reason: FrameErrorReason, message: string, options?: ErrorOptions): FrameError {
    this.#error = new FrameError(reason, message, options);
    return this.#error;
  }
}
