import assert from "node:assert/strict";
import { directSocket } from "../lib/direct_send.ts";
import { MeteredConn } from "../lib/metered_conn.ts";

/** A connected loopback pair: the accepted side and the client side. */
async function pair(): Promise<{ server: Deno.TcpConn; client: Deno.TcpConn; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  return {
    server,
    client,
    close() {
      for (const conn of [server, client]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(out.subarray(got));
    if (n === null) throw new Error(`end of stream after ${got} of ${length} bytes`);
    got += n;
  }
  return out;
}

Deno.test("direct send: a look-alike TcpConn class (the executable's adapter) has none, and spoils nothing (first: nothing found yet)", async () => {
  class TcpConn {}
  assert.equal(directSocket(new TcpConn()), undefined);
  const { server, close } = await pair();
  try {
    assert.ok(directSocket(server), "a real connection after the look-alike");
  } finally {
    close();
  }
});

Deno.test("direct send: a plain TCP connection sends at once under deno run with FFI", async () => {
  const { server, client, close } = await pair();
  try {
    const send = directSocket(server);
    assert.ok(send, "no direct path for a Deno.TcpConn with --allow-all");
    assert.equal(send(new TextEncoder().encode("hello")), 5);
    assert.equal(new TextDecoder().decode(await readExactly(client, 5)), "hello");
    assert.equal(send(new Uint8Array(0)), 0);
  } finally {
    close();
  }
});

Deno.test("direct send: anything but a plain TCP connection has none", () => {
  assert.equal(directSocket({}), undefined);
  assert.equal(directSocket({ read() {}, write() {} }), undefined);
});

Deno.test("metered writes: bytes the socket cannot take now follow in order, counted once", async () => {
  const { server, client, close } = await pair();
  try {
    const conn = new MeteredConn(server, server.remoteAddr as Deno.NetAddr);
    // More than the socket buffers hold while the peer does not read: the
    // direct send takes part, the async write waits for the rest, and the
    // writes issued meanwhile must not overtake it.
    const chunks = Array.from({ length: 40 }, (_, i) => new Uint8Array(256 * 1024).fill(i));
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const writes = chunks.map((chunk) => conn.writeAll(chunk));
    const received = readExactly(client, total);
    await Promise.all(writes);
    const bytes = await received;
    for (let i = 0; i < chunks.length; i++) {
      const start = i * 256 * 1024;
      assert.equal(bytes[start], i, `chunk ${i} out of order`);
      assert.equal(bytes[start + 256 * 1024 - 1], i, `chunk ${i} out of order`);
    }
    assert.equal(conn.bytesOut, total);
  } finally {
    close();
  }
});

Deno.test("metered writes: a write after the peer is gone rejects", async () => {
  const { server, client, close } = await pair();
  try {
    const conn = new MeteredConn(server, server.remoteAddr as Deno.NetAddr);
    client.close();
    await assert.rejects(async () => {
      // The first sends may still be accepted; the reset comes within a few.
      for (let i = 0; i < 100; i++) {
        await conn.writeAll(new Uint8Array(64 * 1024));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    });
  } finally {
    close();
  }
});
