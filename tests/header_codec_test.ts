import {
  type ByteReader,
  DEFAULT_MAX_HEADER_LENGTH,
  encodeFrame,
  encodeHeader,
  FrameError,
  type FrameErrorReason,
  type FrameHeader,
  FrameReader,
  type FrameReaderOptions,
  writeFrame,
} from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";

// ---------------------------------------------------------------------------
// Helpers

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertSame(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert(
    bytesEqual(actual, expected),
    `${what}: expected ${expected.length} bytes, got ${actual.length} different bytes`,
  );
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Builds a frame from a raw header text (which may be malformed on purpose). */
function rawFrame(headerText: string | Uint8Array, body = new Uint8Array(0)): Uint8Array {
  const header = typeof headerText === "string" ? new TextEncoder().encode(headerText) : headerText;
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, header.length);
  return concat(prefix, header, body);
}

function prefixOf(length: number): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, length);
  return prefix;
}

/**
 * A reader that hands out `chunks` one after another; a read never crosses a
 * chunk boundary, and returns less when the caller's array is smaller.
 */
class ChunkReader implements ByteReader {
  #chunks: Uint8Array[];
  #index = 0;
  #offset = 0;
  reads = 0;

  constructor(chunks: Uint8Array[]) {
    this.#chunks = chunks.filter((c) => c.length > 0);
  }

  read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    const chunk = this.#chunks[this.#index];
    if (chunk === undefined) return Promise.resolve(null);
    const n = Math.min(p.length, chunk.length - this.#offset);
    p.set(chunk.subarray(this.#offset, this.#offset + n));
    this.#offset += n;
    if (this.#offset === chunk.length) {
      this.#index++;
      this.#offset = 0;
    }
    return Promise.resolve(n);
  }
}

/** Cuts `data` into chunks whose sizes cycle through `sizes`. */
function cut(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

type Frame = { header: Record<string, unknown>; body?: Uint8Array };

/** Reads every frame until a clean end, reading bodies `bodyReadSize` bytes at a time. */
async function readFrames(
  reader: FrameReader,
  bodyReadSize = 4096,
): Promise<{ header: FrameHeader; body: Uint8Array | undefined }[]> {
  const frames: { header: FrameHeader; body: Uint8Array | undefined }[] = [];
  const scratch = new Uint8Array(bodyReadSize);
  for (
    let header = await reader.readHeader();
    header !== null;
    header = await reader.readHeader()
  ) {
    let body: Uint8Array | undefined;
    if (header.size !== undefined) {
      body = new Uint8Array(header.size);
      let got = 0;
      for (let n = await reader.readBody(scratch); n !== null; n = await reader.readBody(scratch)) {
        body.set(scratch.subarray(0, n), got);
        got += n;
        assert(reader.bodyRemaining === header.size - got, "bodyRemaining out of step");
      }
      assert(got === header.size, `body: expected ${header.size} bytes, got ${got}`);
    }
    frames.push({ header, body });
  }
  return frames;
}

function expectedHeader(frame: Frame): Record<string, unknown> {
  return frame.body === undefined ? frame.header : { ...frame.header, size: frame.body.length };
}

function checkFrames(
  actual: { header: FrameHeader; body: Uint8Array | undefined }[],
  expected: Frame[],
  what: string,
): void {
  assert(actual.length === expected.length, `${what}: expected ${expected.length} frames`);
  expected.forEach((frame, i) => {
    const got = actual[i];
    assert(got !== undefined, `${what}: frame ${i} missing`);
    assertSame(got.header, expectedHeader(frame), `${what}: header ${i}`);
    if (frame.body === undefined) {
      assert(got.body === undefined, `${what}: frame ${i} has an unexpected body`);
    } else {
      assert(got.body !== undefined, `${what}: frame ${i} has no body`);
      assertBytes(got.body, frame.body, `${what}: body ${i}`);
    }
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("Expected a rejection");
}

function throwsSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("Expected an exception");
}

function assertFrameError(error: unknown, reason: FrameErrorReason, what: string): void {
  assert(error instanceof FrameError, `${what}: expected FrameError, got ${error}`);
  assert(error.code === "bad_frame", `${what}: code ${error.code}`);
  assert(error.reason === reason, `${what}: expected reason ${reason}, got ${error.reason}`);
}

/** Reads frames (discarding bodies) until a FrameError, which is returned. */
async function frameErrorOf(source: ByteReader, options?: FrameReaderOptions): Promise<unknown> {
  const reader = new FrameReader(source, options);
  const error = await rejection((async () => {
    while (await reader.readHeader() !== null) await reader.skipBody();
  })());
  // The reader stays failed: the stream cannot be resynchronised.
  assert(await rejection(reader.readHeader()) === error, "error is not sticky");
  return error;
}

function binary(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

/** A header whose JSON text is exactly `length` bytes, `size` (if given) included. */
function headerOfLength(length: number, size?: number): Record<string, unknown> {
  const base = JSON.stringify({ op: "x", pad: "", size }).length;
  const header: Record<string, unknown> = { op: "x", pad: "a".repeat(length - base) };
  if (size !== undefined) header.size = size;
  return header;
}

// ---------------------------------------------------------------------------
// Cases

const VALID: { name: string; frame: Frame }[] = [
  { name: "no body", frame: { header: { op: "ping" } } },
  { name: "empty body", frame: { header: { op: "put", path: "a" }, body: new Uint8Array(0) } },
  { name: "binary body", frame: { header: { op: "stdout" }, body: binary(1000) } },
  {
    name: "UTF-8 header with Chinese text",
    frame: {
      header: { op: "消息", text: "你好，世界 🎉", path: "目录/文件.txt" },
      body: binary(17),
    },
  },
  {
    name: "unknown fields are kept",
    frame: { header: { op: "exec", extra: { nested: [1, null, "x"] }, flag: true, n: -1.5 } },
  },
  { name: "zero-filled body", frame: { header: { op: "stdin" }, body: new Uint8Array(300) } },
];

const SEQUENCE: Frame[] = [
  { header: { op: "exec", argv: ["cat"], stdin: "stream" } },
  { header: { op: "stdin", note: "二" }, body: binary(40) },
  { header: { op: "eof" } },
];

const READ_SIZES = [1, 2, 3, 7, 16, 23, 32, 4096];
const BUFFER_SIZES: (number | undefined)[] = [undefined, 1, 5, 64];

function encodeAll(frames: Frame[]): Uint8Array {
  return concat(...frames.map((f) => encodeFrame(f.header, f.body)));
}

// ---------------------------------------------------------------------------
// Tests

Deno.test("header codec round-trips valid frames", async (t) => {
  for (const { name, frame } of VALID) {
    await t.step(name, async () => {
      const bytes = encodeFrame(frame.header, frame.body);
      const frames = await readFrames(new FrameReader(new ChunkReader([bytes])));
      checkFrames(frames, [frame], name);
    });
  }

  await t.step("header of exactly 65536 bytes is accepted", async () => {
    const header = headerOfLength(DEFAULT_MAX_HEADER_LENGTH, 3);
    const bytes = encodeFrame(header, new Uint8Array([1, 2, 3]));
    assert(new DataView(bytes.buffer).getUint32(0) === 65536, "wrong length prefix");
    for (const sizes of [[bytes.length], [1], [4096]]) {
      const frames = await readFrames(new FrameReader(new ChunkReader(cut(bytes, sizes))));
      checkFrames(frames, [{ header, body: new Uint8Array([1, 2, 3]) }], "65536 bytes");
    }
  });

  await t.step("header of 65537 bytes is rejected on both sides", async () => {
    const header = headerOfLength(DEFAULT_MAX_HEADER_LENGTH + 1);
    assert(throwsSync(() => encodeFrame(header)) instanceof RangeError, "encode accepted it");
    const raw = rawFrame(JSON.stringify(header));
    assertFrameError(await frameErrorOf(new ChunkReader([raw])), "length", "65537");
    // A raised limit accepts it.
    const reader = new FrameReader(new ChunkReader([raw]), { maxHeaderLength: 65537 });
    assertSame(await reader.readHeader(), header, "raised limit");
    const encoded = encodeFrame(header, undefined, { maxHeaderLength: 65537 });
    assertBytes(encoded, raw, "encoded with raised limit");
  });

  await t.step("a custom lower limit applies to reading", async () => {
    const raw = encodeFrame(headerOfLength(100));
    const error = await frameErrorOf(new ChunkReader([raw]), { maxHeaderLength: 99 });
    assertFrameError(error, "length", "limit 99");
    assert(
      (error as Error).message === "Cannot read frame: header length 100 exceeds limit 99",
      (error as Error).message,
    );
  });

  await t.step("a missing or odd op is left to the service", async () => {
    const texts = ['{"cmd":"ls"}', '{"op":42}', '{"op":null,"size":1}'];
    const source = new ChunkReader([
      rawFrame(texts[0]!),
      rawFrame(texts[1]!),
      rawFrame(texts[2]!, new Uint8Array([7])),
    ]);
    const frames = await readFrames(new FrameReader(source));
    assertSame(frames.map((f) => f.header), texts.map((text) => JSON.parse(text)), "headers");
  });

  await t.step("an empty stream is a clean end", async () => {
    const reader = new FrameReader(new ChunkReader([]));
    assert(await reader.readHeader() === null, "expected null");
    assert(await reader.readHeader() === null, "expected null again");
  });

  await t.step("size -0 reads as 0", async () => {
    const reader = new FrameReader(new ChunkReader([rawFrame('{"op":"x","size":-0}')]));
    const header = await reader.readHeader();
    assert(Object.is(header?.size, 0), "size is not +0");
    assert(await reader.readBody(new Uint8Array(1)) === null, "body not empty");
  });

  await t.step("largest safe size is accepted", async () => {
    const bytes = encodeHeader({ op: "file", size: Number.MAX_SAFE_INTEGER });
    const reader = new FrameReader(new ChunkReader([bytes]));
    const header = await reader.readHeader();
    assert(header?.size === Number.MAX_SAFE_INTEGER, "size lost");
    assert(reader.bodyRemaining === Number.MAX_SAFE_INTEGER, "bodyRemaining wrong");
  });
});

Deno.test("header codec reads frames split at every byte boundary", async (t) => {
  const cases = [
    ...VALID.map(({ name, frame }) => ({ name, frames: [frame] })),
    { name: "sequence of 3 frames", frames: SEQUENCE },
  ];
  for (const { name, frames } of cases) {
    await t.step(name, async () => {
      const bytes = encodeAll(frames);
      for (const bufferSize of BUFFER_SIZES) {
        for (let split = 0; split <= bytes.length; split++) {
          const source = new ChunkReader([bytes.subarray(0, split), bytes.subarray(split)]);
          const got = await readFrames(new FrameReader(source, { bufferSize }), 7);
          checkFrames(got, frames, `${name} split at ${split}, buffer ${bufferSize}`);
        }
      }
    });
  }
});

Deno.test("header codec reads frames at odd read sizes", async (t) => {
  const cases = [
    ...VALID.map(({ name, frame }) => ({ name, frames: [frame] })),
    { name: "sequence of 3 frames", frames: SEQUENCE },
  ];
  for (const { name, frames } of cases) {
    await t.step(name, async () => {
      const bytes = encodeAll(frames);
      for (const readSize of READ_SIZES) {
        for (const bufferSize of BUFFER_SIZES) {
          for (const bodyReadSize of [1, 5, 64, 65536]) {
            const source = new ChunkReader(cut(bytes, [readSize]));
            const got = await readFrames(new FrameReader(source, { bufferSize }), bodyReadSize);
            checkFrames(
              got,
              frames,
              `${name}: reads of ${readSize}, buffer ${bufferSize}, body reads ${bodyReadSize}`,
            );
          }
        }
      }
      const source = new ChunkReader(cut(bytes, READ_SIZES));
      checkFrames(await readFrames(new FrameReader(source)), frames, `${name}: mixed sizes`);
    });
  }
});

Deno.test("header codec parses several frames from one read", async () => {
  const frames = [...SEQUENCE, ...VALID.map((v) => v.frame), ...SEQUENCE];
  const source = new ChunkReader([encodeAll(frames)]);
  checkFrames(await readFrames(new FrameReader(source)), frames, "one read");
  assert(source.reads === 2, `expected 2 reads (data, then end), got ${source.reads}`);
});

Deno.test("header codec rejects malformed frames", async (t) => {
  const enc = new TextEncoder();
  const cases: { name: string; bytes: Uint8Array; reason: FrameErrorReason }[] = [
    { name: "length 0", bytes: concat(prefixOf(0), enc.encode("{}")), reason: "length" },
    { name: "length over the limit", bytes: prefixOf(65537), reason: "length" },
    { name: "length 0xffffffff", bytes: prefixOf(0xffffffff), reason: "length" },
    {
      name: "invalid UTF-8 byte",
      bytes: rawFrame(concat(enc.encode('{"op":"'), new Uint8Array([0xff]), enc.encode('"}'))),
      reason: "utf8",
    },
    {
      name: "overlong UTF-8",
      bytes: rawFrame(
        concat(enc.encode('{"op":"'), new Uint8Array([0xc0, 0xaf]), enc.encode('"}')),
      ),
      reason: "utf8",
    },
    {
      name: "UTF-8 encoded surrogate",
      bytes: rawFrame(
        concat(enc.encode('{"op":"'), new Uint8Array([0xed, 0xa0, 0x80]), enc.encode('"}')),
      ),
      reason: "utf8",
    },
    {
      name: "UTF-8 cut inside a character",
      bytes: rawFrame(concat(enc.encode('{"op":"'), new Uint8Array([0xe4, 0xbd]))),
      reason: "utf8",
    },
    { name: "unquoted key", bytes: rawFrame("{op:1}"), reason: "json" },
    { name: "unterminated object", bytes: rawFrame('{"op":"x"'), reason: "json" },
    { name: "trailing garbage", bytes: rawFrame('{"op":"x"}x'), reason: "json" },
    { name: "only whitespace", bytes: rawFrame(" "), reason: "json" },
    { name: "byte order mark", bytes: rawFrame('\ufeff{"op":"x"}'), reason: "json" },
    { name: "array", bytes: rawFrame('[{"op":"x"}]'), reason: "not_object" },
    { name: "null", bytes: rawFrame("null"), reason: "not_object" },
    { name: "number", bytes: rawFrame("42"), reason: "not_object" },
    { name: "string", bytes: rawFrame('"op"'), reason: "not_object" },
    { name: "boolean", bytes: rawFrame("true"), reason: "not_object" },
    { name: "size negative", bytes: rawFrame('{"op":"x","size":-1}'), reason: "size" },
    { name: "size fractional", bytes: rawFrame('{"op":"x","size":1.5}'), reason: "size" },
    { name: "size string", bytes: rawFrame('{"op":"x","size":"10"}'), reason: "size" },
    { name: "size null", bytes: rawFrame('{"op":"x","size":null}'), reason: "size" },
    { name: "size boolean", bytes: rawFrame('{"op":"x","size":true}'), reason: "size" },
    { name: "size object", bytes: rawFrame('{"op":"x","size":{}}'), reason: "size" },
    { name: "size 2^53", bytes: rawFrame('{"op":"x","size":9007199254740992}'), reason: "size" },
    {
      name: "size overflowing to infinity",
      bytes: rawFrame('{"op":"x","size":1e400}'),
      reason: "size",
    },
    { name: "truncated in prefix", bytes: new Uint8Array([0, 0]), reason: "truncated" },
    { name: "truncated after prefix", bytes: prefixOf(10), reason: "truncated" },
    {
      name: "truncated in header",
      bytes: concat(prefixOf(10), enc.encode('{"op"')),
      reason: "truncated",
    },
    {
      name: "truncated in body",
      bytes: rawFrame('{"op":"x","size":10}', new Uint8Array(3)),
      reason: "truncated",
    },
    {
      name: "truncated before body",
      bytes: rawFrame('{"op":"x","size":1}'),
      reason: "truncated",
    },
    {
      name: "truncated in second frame's prefix",
      bytes: concat(encodeFrame({ op: "a" }, new Uint8Array(5)), new Uint8Array([0, 0, 0])),
      reason: "truncated",
    },
  ];
  for (const { name, bytes, reason } of cases) {
    await t.step(name, async () => {
      // Also after a good frame, and fed one byte per read.
      const withLead = concat(encodeFrame({ op: "lead" }, new Uint8Array(3)), bytes);
      for (const input of [bytes, withLead]) {
        for (const sizes of [[input.length], [1], [3, 7]]) {
          const error = await frameErrorOf(new ChunkReader(cut(input, sizes)));
          assertFrameError(error, reason, `${name} in reads of ${sizes}`);
        }
      }
    });
  }
});

Deno.test("header codec error messages follow the house style", async () => {
  const error = await frameErrorOf(new ChunkReader([prefixOf(70000)]));
  assert(error instanceof FrameError, "not a FrameError");
  assert(error.name === "FrameError", error.name);
  assert(
    error.message === "Cannot read frame: header length 70000 exceeds limit 65536",
    error.message,
  );
  const size = await frameErrorOf(new ChunkReader([rawFrame('{"op":"x","size":-1}')]));
  assert(
    (size as Error).message === 'Cannot read frame: "size" is -1, not a non-negative safe integer',
    (size as Error).message,
  );
  const json = await frameErrorOf(new ChunkReader([rawFrame("{")]));
  assert((json as Error).cause instanceof SyntaxError, "JSON error has no cause");
});

Deno.test("header codec streams a 5 GiB body without buffering it", async (t) => {
  const size = 5 * 2 ** 30;
  const header = encodeHeader({ op: "file", path: "big.iso", size });

  /** Serves the header, then produces body bytes lazily, forever. */
  class LazySource implements ByteReader {
    offset = 0;
    largest = 0;
    readonly targets: ArrayBufferLike[] = [];
    read(p: Uint8Array): Promise<number | null> {
      this.largest = Math.max(this.largest, p.length);
      this.targets.push(p.buffer);
      if (this.offset < header.length) {
        const n = Math.min(p.length, header.length - this.offset);
        p.set(header.subarray(this.offset, this.offset + n));
        this.offset += n;
        return Promise.resolve(n);
      }
      p.fill(0x5a);
      this.offset += p.length;
      return Promise.resolve(p.length);
    }
  }

  await t.step("readBody reads straight into the caller's array", async () => {
    const source = new LazySource();
    const reader = new FrameReader(source);
    const got = await reader.readHeader();
    assert(got?.size === size, "size lost");
    const chunk = new Uint8Array(1 << 20);
    let read = 0;
    source.targets.length = 0;
    for (let i = 0; i < 4; i++) {
      const n = await reader.readBody(chunk);
      assert(n !== null && n > 0, "no bytes");
      read += n;
      assert(reader.bodyRemaining === size - read, "bodyRemaining math");
    }
    assert(chunk[chunk.length - 1] === 0x5a, "body bytes not delivered");
    // Every read after the header went into the caller's array, not a copy.
    assert(source.targets.every((b) => b === chunk.buffer), "a read went through a buffer");
    assert(source.largest <= chunk.length, "asked for more than the caller's array");
    assert(reader.bodyRemaining > 4 * 2 ** 30, "bodyRemaining is not beyond 4 GiB");
  });

  await t.step("skipBody keeps to the internal buffer size", async () => {
    const source = new LazySource();
    const reader = new FrameReader(source, { bufferSize: 4096 });
    await reader.readHeader();
    // A 5 GiB skip would take too long; check the bounds of a body-sized read.
    const n = await reader.readBody(new Uint8Array(100));
    assert(n === 100, `expected 100, got ${n}`);
    assert(source.largest <= 4096, `read of ${source.largest} bytes`);
    assert(reader.bodyRemaining === size - 100, "bodyRemaining math");
  });
});

Deno.test("header codec returns to a small buffer after a large header", async () => {
  const big = encodeFrame(headerOfLength(60_000, 2), new Uint8Array([1, 2]));
  const lengths: number[] = [];
  const inner = new ChunkReader(cut(big, [1000]));
  const source: ByteReader = {
    read(p: Uint8Array): Promise<number | null> {
      lengths.push(p.length);
      return inner.read(p);
    },
  };
  const reader = new FrameReader(source, { bufferSize: 4096 });
  assert((await reader.readHeader())?.size === 2, "large header");
  assert(Math.max(...lengths) > 4096, "buffer did not grow");
  await reader.skipBody();
  lengths.length = 0;
  assert(await reader.readHeader() === null, "end");
  // The read that waits for the next frame offers only the configured buffer.
  assertSame(lengths, [4096], "idle read sizes");
});

Deno.test("header codec never reads past a body", async (t) => {
  const next = encodeFrame({ op: "next" }, new Uint8Array([9, 9]));

  await t.step("when the body is buffered", async () => {
    const body = binary(10);
    const source = new ChunkReader([concat(encodeFrame({ op: "a" }, body), next)]);
    const reader = new FrameReader(source);
    await reader.readHeader();
    const p = new Uint8Array(4096);
    assert(await reader.readBody(p) === 10, "read past the body");
    assertBytes(p.subarray(0, 10), body, "body");
    assert(await reader.readBody(p) === null, "body not finished");
    assertSame(await reader.readHeader(), { op: "next", size: 2 }, "next header");
  });

  await t.step("when the body is read directly", async () => {
    const body = binary(100_000);
    const bytes = concat(encodeFrame({ op: "a" }, body), next);
    // One big chunk after the header, so a greedy read would swallow `next`.
    const headerLength = bytes.length - body.length - next.length;
    const requests: number[] = [];
    const inner = new ChunkReader([bytes.subarray(0, headerLength), bytes.subarray(headerLength)]);
    const source: ByteReader = {
      read(p: Uint8Array): Promise<number | null> {
        requests.push(p.length);
        return inner.read(p);
      },
    };
    const reader = new FrameReader(source, { bufferSize: 16 });
    const frames = await readFrames(reader, 1 << 20);
    checkFrames(frames, [{ header: { op: "a" }, body }, {
      header: { op: "next" },
      body: new Uint8Array([9, 9]),
    }], "direct");
    assert(requests.includes(100_000), `direct read not capped at the body: ${requests}`);
  });

  await t.step("bodyChunks yields only body bytes", async () => {
    const body = binary(50_000);
    const source = new ChunkReader(cut(concat(encodeFrame({ op: "a" }, body), next), [7000]));
    const reader = new FrameReader(source, { bufferSize: 1024 });
    await reader.readHeader();
    const chunks: Uint8Array[] = [];
    for await (const chunk of reader.bodyChunks()) chunks.push(chunk.slice());
    assertBytes(concat(...chunks), body, "chunks");
    assert(reader.bodyRemaining === 0, "body left");
    assertSame(await reader.readHeader(), { op: "next", size: 2 }, "next header");
  });
});

Deno.test("header codec skipBody discards only the current body", async (t) => {
  const frames: Frame[] = [
    { header: { op: "put" }, body: binary(100_000) },
    { header: { op: "stdin" }, body: binary(50) },
    { header: { op: "eof" } },
  ];
  for (const sizes of [[1 << 20], [1], [7, 4096]]) {
    await t.step(`in reads of ${sizes}`, async () => {
      const source = new ChunkReader(cut(encodeAll(frames), sizes));
      const reader = new FrameReader(source, { bufferSize: 1024 });
      assert((await reader.readHeader())?.op === "put", "first");
      await reader.skipBody();
      assert(reader.bodyRemaining === 0, "not skipped");
      assert((await reader.readHeader())?.op === "stdin", "second");
      const p = new Uint8Array(3);
      let n = 0;
      while (n < 3) n += (await reader.readBody(p.subarray(n))) ?? 0;
      assertBytes(p, binary(3), "partial body");
      await reader.skipBody();
      await reader.skipBody(); // Nothing left: a no-op.
      assertSame(await reader.readHeader(), { op: "eof" }, "third");
      assert(await reader.readHeader() === null, "end");
    });
  }

  await t.step("readHeader refuses to skip an unread body", async () => {
    const source = new ChunkReader([encodeAll(frames)]);
    const reader = new FrameReader(source);
    await reader.readHeader();
    const error = await rejection(reader.readHeader());
    assert(error instanceof Error && !(error instanceof FrameError), "expected a plain Error");
    assert(
      error.message === "Cannot read header: 100000 body bytes of the previous frame are unread",
      error.message,
    );
    await reader.skipBody();
    assert((await reader.readHeader())?.op === "stdin", "usable after skipBody");
  });

  await t.step("skipBody reports a truncated body", async () => {
    const source = new ChunkReader([rawFrame('{"op":"put","size":100}', new Uint8Array(40))]);
    const reader = new FrameReader(source);
    await reader.readHeader();
    assertFrameError(await rejection(reader.skipBody()), "truncated", "skip");
    assertFrameError(await rejection(reader.readBody(new Uint8Array(1))), "truncated", "sticky");
  });
});

Deno.test("header codec encodeFrame validates its input", async (t) => {
  const cases: { name: string; run: () => unknown; error: ErrorConstructor }[] = [
    { name: "no op", run: () => encodeFrame({ path: "a" }), error: TypeError },
    { name: "numeric op", run: () => encodeFrame({ op: 1 }), error: TypeError },
    {
      name: "array",
      run: () => encodeFrame(["op"] as unknown as Record<string, unknown>),
      error: TypeError,
    },
    {
      name: "null",
      run: () => encodeFrame(null as unknown as Record<string, unknown>),
      error: TypeError,
    },
    {
      name: "string",
      run: () => encodeFrame("op" as unknown as Record<string, unknown>),
      error: TypeError,
    },
    {
      name: "class instance",
      run: () => encodeFrame(new Map([["op", "x"]]) as unknown as Record<string, unknown>),
      error: TypeError,
    },
    {
      name: "toJSON returning a non-object",
      run: () => encodeFrame({ op: "x", toJSON: () => [1] }),
      error: TypeError,
    },
    { name: "bigint field", run: () => encodeFrame({ op: "x", n: 1n }), error: TypeError },
    {
      name: "header too long",
      run: () => encodeFrame(headerOfLength(65537)),
      error: RangeError,
    },
    {
      name: "non-ASCII header too long",
      // 30000 characters, 90000 bytes: only the encoded length exceeds the limit.
      run: () => encodeFrame({ op: "x", text: "你".repeat(30000) }),
      error: RangeError,
    },
    {
      name: "header over a custom limit",
      run: () => encodeFrame({ op: "hello" }, undefined, { maxHeaderLength: 10 }),
      error: RangeError,
    },
    {
      name: "bad limit option",
      run: () => encodeFrame({ op: "x" }, undefined, { maxHeaderLength: 0 }),
      error: RangeError,
    },
    {
      name: "size does not match body",
      run: () => encodeFrame({ op: "x", size: 3 }, new Uint8Array(4)),
      error: RangeError,
    },
    { name: "size negative", run: () => encodeHeader({ op: "x", size: -1 }), error: RangeError },
    { name: "size fractional", run: () => encodeHeader({ op: "x", size: 0.5 }), error: RangeError },
    { name: "size NaN", run: () => encodeHeader({ op: "x", size: NaN }), error: RangeError },
    { name: "size 2^53", run: () => encodeHeader({ op: "x", size: 2 ** 53 }), error: RangeError },
    { name: "size string", run: () => encodeHeader({ op: "x", size: "1" }), error: TypeError },
    {
      name: "bad reader buffer size",
      run: () => new FrameReader(new ChunkReader([]), { bufferSize: 0 }),
      error: RangeError,
    },
    {
      name: "bad reader limit",
      run: () => new FrameReader(new ChunkReader([]), { maxHeaderLength: 2 ** 32 }),
      error: RangeError,
    },
  ];
  for (const { name, run, error } of cases) {
    await t.step(name, () => {
      const thrown = throwsSync(run);
      assert(thrown instanceof error, `${name}: expected ${error.name}, got ${thrown}`);
      assert(!(thrown as Error).message.endsWith("."), "message ends with a period");
    });
  }

  await t.step("the caller's header is not modified", () => {
    const header = { op: "stdout" };
    encodeFrame(header, new Uint8Array(5));
    assertSame(header, { op: "stdout" }, "header");
  });

  await t.step("a matching size is accepted", () => {
    const a = encodeFrame({ op: "x", size: 2 }, new Uint8Array([1, 2]));
    const b = encodeFrame({ op: "x" }, new Uint8Array([1, 2]));
    assertBytes(a, b, "same frame");
  });

  await t.step("encodeFrame without a body is encodeHeader", () => {
    const header = { op: "file", size: 5 * 2 ** 30 };
    assertBytes(encodeFrame(header), encodeHeader(header), "same bytes");
    const text = new TextDecoder().decode(encodeHeader(header).subarray(4));
    assert(text === '{"op":"file","size":5368709120}', text);
  });
});

Deno.test("header codec writeFrame writes whole frames", async (t) => {
  /** A writer that accepts at most `limit` bytes per call. */
  function collector(limit: number): {
    writer: { write(p: Uint8Array): Promise<number> };
    bytes: () => Uint8Array;
    calls: () => number;
  } {
    const parts: Uint8Array[] = [];
    let calls = 0;
    return {
      writer: {
        write(p: Uint8Array): Promise<number> {
          calls++;
          const n = Math.min(limit, p.length);
          parts.push(p.slice(0, n));
          return Promise.resolve(n);
        },
      },
      bytes: () => concat(...parts),
      calls: () => calls,
    };
  }

  await t.step("a small frame is one write", async () => {
    const out = collector(Infinity);
    await writeFrame(out.writer, { op: "stdout" }, binary(65536));
    assert(out.calls() === 1, `${out.calls()} writes`);
    assertBytes(out.bytes(), encodeFrame({ op: "stdout" }, binary(65536)), "bytes");
  });

  await t.step("short writes and a large body", async () => {
    const out = collector(1000);
    const body = binary(200_000);
    await writeFrame(out.writer, { op: "put", path: "p" }, body);
    await writeFrame(out.writer, { op: "eof" });
    const frames = await readFrames(new FrameReader(new ChunkReader([out.bytes()])));
    checkFrames(
      frames,
      [{ header: { op: "put", path: "p" }, body }, { header: { op: "eof" } }],
      "written",
    );
  });

  await t.step("writeAll refuses a writer that makes no progress", async () => {
    const error = await rejection(writeAll({ write: () => Promise.resolve(0) }, new Uint8Array(3)));
    assert(error instanceof Error, "expected an Error");
    assert(error.message === "Cannot write: writer returned 0 for 3 bytes", error.message);
  });

  await t.step("writeAll of nothing does not write", async () => {
    const out = collector(10);
    await writeAll(out.writer, new Uint8Array(0));
    assert(out.calls() === 0, "wrote");
  });
});

Deno.test("header codec works over a loopback TCP connection", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames: Frame[] = [
    ...SEQUENCE,
    { header: { op: "put", path: "大.bin" }, body: binary(3 * 1024 * 1024 + 17) },
    { header: { op: "end" } },
  ];

  // The server echoes every frame back as it arrives.
  const server = (async (): Promise<void> => {
    using conn = await listener.accept();
    const reader = new FrameReader(conn);
    const scratch = new Uint8Array(64 * 1024);
    for (
      let header = await reader.readHeader();
      header !== null;
      header = await reader.readHeader()
    ) {
      if (header.size === undefined) {
        await writeFrame(conn, header);
        continue;
      }
      await writeAll(conn, encodeHeader(header));
      for (let n = await reader.readBody(scratch); n !== null; n = await reader.readBody(scratch)) {
        await writeAll(conn, scratch.subarray(0, n));
      }
    }
  })();

  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const [, echoed] = await Promise.all([
    (async (): Promise<void> => {
      await writeAll(client, encodeAll(frames)); // All frames in one write.
      await client.closeWrite();
    })(),
    readFrames(new FrameReader(client), 100_000),
  ]);
  await server;
  checkFrames(echoed, frames, "echoed over TCP");
});
