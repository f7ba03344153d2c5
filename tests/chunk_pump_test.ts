import { createHash } from "node:crypto";
import { pump, ShortSourceError } from "../lib/chunk_pump.ts";
import { inlineSha256Job, Sha256Pool } from "../lib/sha256_pool.ts";
import { assert, assertEquals, patternBytes } from "./_file_helpers.ts";
import { concatBytes } from "./_helpers.ts";

/** A source handing out at most `step` bytes per read. */
function source(data: Uint8Array, step: number): (view: Uint8Array) => Promise<number | null> {
  let at = 0;
  return (view) => {
    if (at === data.length) return Promise.resolve(null);
    const n = Math.min(step, view.length, data.length - at);
    view.set(data.subarray(at, at + n));
    at += n;
    return Promise.resolve(n);
  };
}

function sink(): { write(view: Uint8Array): Promise<void>; bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    write(view) {
      parts.push(view.slice());
      return Promise.resolve();
    },
    bytes: () => concatBytes(parts),
  };
}

Deno.test("pump moves exactly the length, whatever the read sizes and chunk size", async (t) => {
  const data = patternBytes(100_003);
  for (const step of [1, 7, 4096, 65536, 200_000]) {
    for (
      const [chunkSize, fill] of [[1, true], [1000, true], [65536, true], [1 << 20, true], [
        65536,
        false,
      ], [1 << 20, false]] as const
    ) {
      if (step === 1 && chunkSize < 1000) continue;
      await t.step(
        `reads of ${step}, chunks of ${chunkSize}${fill ? "" : ", partial"}`,
        async () => {
          const out = sink();
          const job = inlineSha256Job();
          let counted = 0;
          await pump({
            length: 90_001,
            read: source(data, step),
            write: out.write,
            hash: job,
            chunkSize,
            fill,
            onChunk: (n) => counted += n,
          });
          const expected = data.subarray(0, 90_001);
          assertEquals(out.bytes().length, expected.length, "length");
          assert(out.bytes().every((b, i) => b === expected[i]), "content");
          assertEquals(counted, expected.length, "onChunk total");
          assertEquals(
            await job.digest(),
            createHash("sha256").update(expected).digest("hex"),
            "hash",
          );
        },
      );
    }
  }
});

Deno.test("pump with a synchronous source moves and hashes exactly the length", async (t) => {
  const data = patternBytes(300_001, 3);
  for (const chunkSize of [1000, 65536, 1 << 20]) {
    await t.step(`chunks of ${chunkSize}`, async () => {
      let at = 0;
      const readSync = (view: Uint8Array): number | null => {
        if (at === data.length) return null;
        const n = Math.min(5000, view.length, data.length - at);
        view.set(data.subarray(at, at + n));
        at += n;
        return n;
      };
      const out = sink();
      const job = inlineSha256Job();
      await pump({
        length: 250_000,
        read: () => Promise.reject(new Error("not used")),
        readSync,
        write: out.write,
        hash: job,
        chunkSize,
      });
      const expected = data.subarray(0, 250_000);
      assert(out.bytes().every((b, i) => b === expected[i]), "content");
      assertEquals(out.bytes().length, expected.length, "length");
      assertEquals(await job.digest(), createHash("sha256").update(expected).digest("hex"), "hash");
    });
  }
  let caught: unknown;
  try {
    await pump({
      length: 10,
      read: () => Promise.resolve(null),
      readSync: () => null,
      write: sink().write,
    });
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof ShortSourceError, "short synchronous source");
});

Deno.test("pump reports a source that ends early", async () => {
  let caught: unknown;
  try {
    await pump({
      length: 5000,
      read: source(new Uint8Array(3000), 512),
      write: sink().write,
      chunkSize: 1024,
    });
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof ShortSourceError, `got ${caught}`);
  assertEquals(caught.moved, 3000, "moved");
});

Deno.test("pump without fill writes every byte received before the source failed", async () => {
  const data = patternBytes(10_000);
  const out = sink();
  let at = 0;
  const failing = (view: Uint8Array): Promise<number | null> => {
    if (at >= 6000) return Promise.reject(new Error("connection reset"));
    const n = Math.min(1500, view.length);
    view.set(data.subarray(at, at + n));
    at += n;
    return Promise.resolve(n);
  };
  let caught: unknown;
  try {
    await pump({
      length: data.length,
      read: failing,
      write: out.write,
      chunkSize: 4096,
      fill: false,
    });
  } catch (error) {
    caught = error;
  }
  assertEquals((caught as Error).message, "connection reset", "error");
  assertEquals(out.bytes().length, 6000, "everything received was written");
});

Deno.test("pump with keepPartial writes the part of a chunk received before the source failed", async () => {
  const data = patternBytes(10_000);
  const out = sink();
  let at = 0;
  const failing = (view: Uint8Array): Promise<number | null> => {
    if (at >= 6000) return Promise.reject(new Error("connection reset"));
    const n = Math.min(1500, view.length);
    view.set(data.subarray(at, at + n));
    at += n;
    return Promise.resolve(n);
  };
  let caught: unknown;
  let counted = 0;
  try {
    await pump({
      length: data.length,
      read: failing,
      write: out.write,
      chunkSize: 4096,
      keepPartial: true,
      onChunk: (n) => counted += n,
    });
  } catch (error) {
    caught = error;
  }
  assertEquals((caught as Error).message, "connection reset", "the source's error");
  assertEquals([out.bytes().length, counted], [at, at], "everything received was written");
  assert(out.bytes().every((b, i) => b === data[i]), "in order");
});

Deno.test("pump stops on a sink error without leaving a read or rejection behind", async () => {
  let reads = 0;
  const slowRead = async (view: Uint8Array): Promise<number> => {
    reads++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (reads > 1) throw new Error("read failed too");
    return view.length;
  };
  let caught: unknown;
  try {
    await pump({
      length: 10_000,
      read: slowRead,
      write: () => Promise.reject(new Error("disk full")),
      chunkSize: 1000,
    });
  } catch (error) {
    caught = error;
  }
  assertEquals((caught as Error).message, "disk full", "the sink's error wins");
});

Deno.test("pump hashes in the worker from shared memory, as inline hashing would", async () => {
  const pool = new Sha256Pool({ workerMinBytes: 1 });
  try {
    const data = patternBytes(3 * 1024 * 1024 + 11, 5);
    const job = await pool.job(data.length);
    assert(job.shared, "expected a worker job");
    await pump({
      length: data.length,
      read: source(data, 70_000),
      write: () => Promise.resolve(),
      hash: job,
    });
    assertEquals(await job.digest(), createHash("sha256").update(data).digest("hex"), "digest");
  } finally {
    pool.close();
  }
});

Deno.test("pump keeps its chunk buffers within the memory bound, with or without a worker hash", async (t) => {
  const data = patternBytes(300_000);
  const expected = createHash("sha256").update(data).digest("hex");
  using pool = {
    pool: new Sha256Pool({ workerMinBytes: 1 }),
    [Symbol.dispose]() {
      this.pool.close();
    },
  };
  for (const variant of ["sync", "async", "async, worker hash"] as const) {
    await t.step(variant, async () => {
      let largest = 0;
      let syncAt = 0;
      const read = source(data, 7000);
      const out = sink();
      const hash = variant === "async, worker hash"
        ? await pool.pool.job(data.length)
        : inlineSha256Job();
      const seen = (view: Uint8Array): void => {
        largest = Math.max(largest, view.buffer.byteLength);
      };
      await pump({
        length: data.length,
        read: (view) => {
          seen(view);
          return read(view);
        },
        readSync: variant === "sync"
          ? (view) => {
            seen(view);
            const n = Math.min(7000, view.length, data.length - syncAt);
            if (n === 0) return null;
            view.set(data.subarray(syncAt, syncAt + n));
            syncAt += n;
            return n;
          }
          : undefined,
        write: out.write,
        hash,
        chunkSize: 1 << 20,
        memory: 40_000,
      });
      assert(largest > 0 && largest <= 40_000, `${variant}: buffers of ${largest} bytes`);
      assertEquals(out.bytes().length, data.length, "bytes moved");
      assertEquals(await hash.digest(), expected, "sha256");
    });
  }
});
