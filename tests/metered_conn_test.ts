import assert from "node:assert/strict";
import { MeteredConn, type RawConn } from "../lib/metered_conn.ts";

const PEER: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 9 };

/** A fake socket: reads return scripted counts, writes take at most `writeLimit` bytes. */
function fakeConn(options: { reads?: (number | null | Error)[]; writeLimit?: number } = {}): {
  raw: RawConn;
  writes: number[];
} {
  const reads = [...(options.reads ?? [])];
  const writes: number[] = [];
  const raw: RawConn = {
    localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 7 },
    read: async (p) => {
      await Promise.resolve();
      const next = reads.shift() ?? null;
      if (next instanceof Error) throw next;
      return next === null ? null : Math.min(next, p.length);
    },
    write: async (p) => {
      await Promise.resolve();
      const n = Math.min(p.length, options.writeLimit ?? Infinity);
      writes.push(n);
      return n;
    },
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  return { raw, writes };
}

Deno.test("reads are counted by the time the caller sees them, end of stream adds nothing", async () => {
  const { raw } = fakeConn({ reads: [5, 64, null] });
  const conn = new MeteredConn(raw, PEER);
  const buffer = new Uint8Array(32);
  assert.equal(await conn.read(buffer), 5);
  assert.equal(conn.bytesIn, 5);
  assert.equal(await conn.read(buffer), 32);
  assert.equal(conn.bytesIn, 37);
  assert.equal(await conn.read(buffer), null);
  assert.equal(conn.bytesIn, 37);
  assert.equal(conn.bytesOut, 0);
});

Deno.test("a failed read rejects with the socket's error and counts nothing", async () => {
  const { raw } = fakeConn({ reads: [new Deno.errors.ConnectionReset("reset")] });
  const conn = new MeteredConn(raw, PEER);
  await assert.rejects(conn.read(new Uint8Array(8)), Deno.errors.ConnectionReset);
  assert.equal(conn.bytesIn, 0);
});

Deno.test("writeAll loops on short writes and counts every byte once", async () => {
  const { raw, writes } = fakeConn({ writeLimit: 4 });
  const conn = new MeteredConn(raw, PEER);
  await conn.writeAll(new Uint8Array(10));
  assert.deepEqual(writes, [4, 4, 2]);
  assert.equal(conn.bytesOut, 10);
  await conn.writeAll(new Uint8Array(0));
  assert.deepEqual(writes, [4, 4, 2], "an empty write does not reach the socket");
  assert.equal(await conn.write(new Uint8Array(3)), 3);
  assert.equal(conn.bytesOut, 13);
});
