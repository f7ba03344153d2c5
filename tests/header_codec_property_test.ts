/**
 * Property tests of the header codec: random frames come back as they went
 * at any split of the stream; random and mutated bytes give headers, a clean
 * end or a FrameError (bad_frame) — never another exception — and the reader
 * never holds more than the header limit allows.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeFrame, FrameError, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { concatBytes } from "./_helpers.ts";

const MAX_HEADER = 2048;
const BUFFER_SIZE = 64;
const RUNS = Number(Deno.env.get("SWITCHBOARD_PROPERTY_RUNS") ?? 300);

/** A source handing out `data` in reads of the given sizes (cycled), recording each view. */
class SplitSource {
  #data: Uint8Array;
  #sizes: number[];
  #at = 0;
  #turn = 0;
  /** The largest buffer (the view's whole ArrayBuffer) the reader asked to fill, bodies excepted. */
  largestBuffer = 0;
  #body: ArrayBufferLike | undefined;

  constructor(data: Uint8Array, sizes: number[], body?: ArrayBufferLike) {
    this.#data = data;
    this.#sizes = sizes.length > 0 ? sizes : [1];
    this.#body = body;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (p.buffer !== this.#body) {
      this.largestBuffer = Math.max(this.largestBuffer, p.buffer.byteLength);
    }
    if (this.#at === this.#data.length) return Promise.resolve(null);
    const size = this.#sizes[this.#turn++ % this.#sizes.length]!;
    const n = Math.min(p.length, size, this.#data.length - this.#at);
    p.set(this.#data.subarray(this.#at, this.#at + n));
    this.#at += n;
    return Promise.resolve(n);
  }
}

/** Reads frames until the end, a FrameError, or a limit; any other exception escapes. */
async function drain(
  reader: FrameReader,
  body: Uint8Array,
): Promise<{ frames: { header: FrameHeader; body: Uint8Array }[]; error?: FrameError }> {
  const frames: { header: FrameHeader; body: Uint8Array }[] = [];
  try {
    for (let i = 0; i < 1000; i++) {
      const header = await reader.readHeader();
      if (header === null) return { frames };
      const parts: number[] = [];
      for (let n = await reader.readBody(body); n !== null; n = await reader.readBody(body)) {
        parts.push(...body.subarray(0, n));
      }
      frames.push({ header, body: new Uint8Array(parts) });
    }
    throw new Error("More than 1000 frames");
  } catch (error) {
    if (error instanceof FrameError) {
      assert.equal(error.code, "bad_frame");
      return { frames, error };
    }
    throw error;
  }
}

const key = fc.string({ maxLength: 12 }).filter((k) => k !== "size" && k !== "__proto__");
const header = fc.record({
  op: fc.string({ maxLength: 20 }),
  fields: fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }),
}).map(({ op, fields }) => ({ ...fields, op }));
const frame = fc.record({
  header,
  body: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
}).filter(({ header }) => new TextEncoder().encode(JSON.stringify(header)).length <= MAX_HEADER);
const splits = fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 });

Deno.test("property: random frames read back exactly at any split of the stream", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(frame, { maxLength: 6 }), splits, async (list, sizes) => {
      const bytes = concatBytes(list.map((f) => encodeFrame(f.header, f.body)));
      const body = new Uint8Array(37);
      const source = new SplitSource(bytes, sizes, body.buffer);
      const reader = new FrameReader(source, { maxHeaderLength: MAX_HEADER, bufferSize: 64 });
      const { frames, error } = await drain(reader, body);
      assert.equal(error, undefined);
      assert.equal(frames.length, list.length);
      frames.forEach((got, i) => {
        const sent = list[i]!;
        const expected = JSON.parse(
          JSON.stringify(sent.body ? { ...sent.header, size: sent.body.length } : sent.header),
        );
        assert.deepEqual(got.header, expected);
        assert.deepEqual(got.body, sent.body ?? new Uint8Array(0));
      });
    }),
    { numRuns: RUNS },
  );
});

/** Random bytes, half of the time starting with a plausible length prefix. */
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 600 })).map(
    ([length, rest]) => {
      const out = new Uint8Array(4 + rest.length);
      new DataView(out.buffer).setUint32(0, length % 3 === 0 ? length % 700 : length);
      out.set(rest, 4);
      return out;
    },
  ),
);

/** Valid frames with a few bytes overwritten, inserted or cut. */
const mutated = fc.tuple(
  fc.array(frame, { minLength: 1, maxLength: 3 }),
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "cut")), {
    minLength: 1,
    maxLength: 6,
  }),
).map(([list, edits]) => {
  let bytes = Array.from(concatBytes(list.map((f) => encodeFrame(f.header, f.body))));
  for (const [at, value, kind] of edits) {
    const index = at % Math.max(1, bytes.length);
    if (kind === "set") bytes[index] = value;
    else bytes = bytes.slice(0, index).concat(bytes.slice(index + 1));
  }
  return new Uint8Array(bytes);
});

Deno.test("property: random or mutated bytes give frames or bad_frame, within the header limit", async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(garbage, mutated), splits, async (bytes, sizes) => {
      const body = new Uint8Array(37);
      const source = new SplitSource(bytes, sizes, body.buffer);
      const reader = new FrameReader(source, {
        maxHeaderLength: MAX_HEADER,
        bufferSize: BUFFER_SIZE,
      });
      const { frames, error } = await drain(reader, body);
      // The reader's buffer never grows past one whole header at the limit.
      assert.ok(source.largestBuffer <= MAX_HEADER + 4, `buffer of ${source.largestBuffer}`);
      for (const { header } of frames) {
        assert.equal(typeof header, "object");
        if (header.size !== undefined) assert.ok(Number.isSafeInteger(header.size));
      }
      if (error) {
        // Once out of step, the reader stays failed with the same error.
        await assert.rejects(reader.readHeader(), (e) => e === error);
      }
    }),
    { numRuns: RUNS },
  );
});
