import assert from "node:assert/strict";
import { echoStream } from "../handlers/echo/mod.ts";
import type { Connection, ConnectionContext } from "../lib/service.ts";
import { captureLog } from "./_helpers.ts";

/** A fake connection: each read takes the next scripted size (clamped to the buffer). */
class ScriptedConn implements Connection {
  readonly remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 9 };
  readonly localAddr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 7 };
  /** The length of the buffer offered to each read, in order. */
  readonly offered: number[] = [];
  /** Everything written back. */
  readonly written: number[] = [];
  /** Everything "received". */
  readonly sent: number[] = [];
  #script: number[];
  #next = 0;

  /** @param script bytes per read; "full" (-1) fills whatever buffer is offered */
  constructor(script: number[]) {
    this.#script = script;
  }

  read(p: Uint8Array): Promise<number | null> {
    this.offered.push(p.length);
    const want = this.#script.shift();
    if (want === undefined) return Promise.resolve(null);
    const n = want < 0 ? p.length : Math.min(want, p.length);
    for (let i = 0; i < n; i++) {
      p[i] = 97 + (this.#next++ % 26);
      this.sent.push(p[i]!);
    }
    return Promise.resolve(n);
  }

  write(p: Uint8Array): Promise<number> {
    this.written.push(...p);
    return Promise.resolve(p.length);
  }

  async writeAll(p: Uint8Array): Promise<void> {
    await this.write(p);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    throw new TypeError("Not used by echo");
  }

  get writable(): WritableStream<Uint8Array> {
    throw new TypeError("Not used by echo");
  }
}

function context(busy: boolean[] = []): ConnectionContext {
  return {
    signal: new AbortController().signal,
    log: captureLog().log,
    peer: "127.0.0.1:9",
    setBusy: (value) => busy.push(value),
    note: () => {},
    closing: new AbortController().signal,
    setHeaderPending: () => {},
  };
}

const FULL = -1;

Deno.test("an echo connection waits for its first bytes with a buffer of at most 512 bytes", async () => {
  const conn = new ScriptedConn([]);
  await echoStream(conn, context(), { transform: "none" });
  assert.equal(conn.offered.length, 1);
  assert.ok(conn.offered[0]! <= 512, `first read offered ${conn.offered[0]} bytes`);
});

Deno.test("an echo connection stays on its small buffer while reads are small", async () => {
  const conn = new ScriptedConn([64, 64, 100, 64]);
  await echoStream(conn, context(), { transform: "none" });
  assert.deepEqual(conn.offered, [512, 512, 512, 512, 512]);
  assert.deepEqual(conn.written, conn.sent);
});

Deno.test("full reads grow the echo buffer ×4 up to 64 KiB and four small reads give it back", async () => {
  const conn = new ScriptedConn([FULL, FULL, FULL, FULL, FULL, FULL, 10, 10, 10, 10, 10]);
  const busy: boolean[] = [];
  await echoStream(conn, context(busy), { transform: "none" });
  assert.deepEqual(conn.offered, [
    512,
    2048,
    8192,
    32768,
    65536,
    65536,
    65536,
    65536,
    65536,
    65536,
    512, // after the fourth small read
    512, // end of stream
  ]);
  assert.deepEqual(conn.written, conn.sent);
  assert.deepEqual(busy, Array.from({ length: 22 }, (_, i) => i % 2 === 0));
});

Deno.test("a mid-sized read between small ones keeps the large echo buffer", async () => {
  const conn = new ScriptedConn([FULL, FULL, 10, 10, 10, 4000, 10, 10, 10]);
  await echoStream(conn, context(), { transform: "none" });
  assert.deepEqual(conn.offered, [512, 2048, 8192, 8192, 8192, 8192, 8192, 8192, 8192, 8192]);
});

Deno.test("upper-casing works across reads of every size", async () => {
  const conn = new ScriptedConn([FULL, 3, FULL, 700]);
  await echoStream(conn, context(), { transform: "upper" });
  assert.deepEqual(conn.written, conn.sent.map((byte) => byte - 32));
});

/** A connection whose socket takes at most `takes[i]` bytes at once on the i-th `writeNow`. */
class DirectConn extends ScriptedConn {
  readonly now: number[] = [];
  #takes: number[];

  constructor(script: number[], takes: number[]) {
    super(script);
    this.#takes = takes;
  }

  writeNow(p: Uint8Array): number {
    const n = Math.min(p.length, this.#takes.shift() ?? p.length);
    this.now.push(n);
    this.written.push(...p.subarray(0, n));
    return n;
  }
}

Deno.test("echo sends at once what the socket takes and waits (busy) only for the rest", async () => {
  // Taken whole, then nothing (would block), then half.
  const conn = new DirectConn([100, 100, 100], [100, 0, 50]);
  const busy: boolean[] = [];
  await echoStream(conn, context(busy), { transform: "upper" });
  assert.deepEqual(conn.now, [100, 0, 50]);
  assert.deepEqual(conn.written, conn.sent.map((byte) => byte - 32));
  // Only the two reads that had to wait for the socket were busy.
  assert.deepEqual(busy, [true, false, true, false]);
});
