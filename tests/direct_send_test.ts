import assert from "node:assert/strict";
import { directSendAvailable, directSocket } from "../lib/direct_send.ts";
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
    const conn = new MeteredConn(server, server.remoteAddr as Deno.NetAddr, { direct: true });
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
    const conn = new MeteredConn(server, server.remoteAddr as Deno.NetAddr, { direct: true });
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The descriptor Deno keeps under its internal symbol (as direct_send finds it). */
function fdOf(conn: object): number | undefined {
  for (const symbol of Object.getOwnPropertySymbols(conn)) {
    if (symbol.description === "Deno.internal.fd") {
      return (conn as unknown as Record<symbol, number>)[symbol];
    }
  }
  return undefined;
}

/**
 * Asserts the first bytes each side of `pair` reads are the other side's
 * marker: nothing stray (a direct send into a reused descriptor) came before.
 */
async function assertNothingStray(
  p: { server: Deno.TcpConn; client: Deno.TcpConn },
): Promise<void> {
  for (const [from, to] of [[p.client, p.server], [p.server, p.client]] as const) {
    await from.write(encoder.encode("MARK"));
    assert.equal(decoder.decode(await readExactly(to, 4)), "MARK", "bytes before the marker");
  }
}

Deno.test("metered writes: only a connection made with direct: true sends at once", async () => {
  const { server, client, close } = await pair();
  try {
    const plain = new MeteredConn(server, server.remoteAddr as Deno.NetAddr);
    assert.equal(plain.writeNow(encoder.encode("no")), 0, "not asked for");
    const direct = new MeteredConn(server, server.remoteAddr as Deno.NetAddr, {
      direct: true,
      localAddr: server.localAddr,
    });
    assert.equal(direct.localAddr, server.localAddr);
    assert.equal(direct.writeNow(encoder.encode("yes")), 3);
    assert.equal(direct.bytesOut, 3);
    assert.equal(decoder.decode(await readExactly(client, 3)), "yes");
  } finally {
    close();
  }
});

Deno.test("metered writes: after close, writeNow sends nothing, even when the descriptor is reused", async () => {
  const a = await pair();
  const conn = new MeteredConn(a.server, a.server.remoteAddr as Deno.NetAddr, { direct: true });
  const fd = fdOf(a.server);
  assert.equal(typeof fd, "number");
  conn.close();
  assert.equal(conn.writeNow(encoder.encode("LEAK")), 0, "closed");
  // New sockets may take the freed descriptor: still nothing.
  const b = await pair();
  try {
    assert.equal(conn.writeNow(encoder.encode("LEAK")), 0, "closed, new sockets open");
    assert.equal(conn.bytesOut, 0);
    await assertNothingStray(b);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("metered writes: a raw connection closed behind the wrapper's back gets no direct send (the wrapper did not own it)", async () => {
  const c = await pair();
  // Not made with direct: true, as everywhere but the TCP listener (which
  // owns its raw connections and closes them through the wrapper).
  const conn = new MeteredConn(c.server, c.server.remoteAddr as Deno.NetAddr);
  c.server.close();
  const d = await pair();
  try {
    assert.equal(conn.writeNow(encoder.encode("LEAK")), 0);
    await assertNothingStray(d);
  } finally {
    c.close();
    d.close();
  }
});

Deno.test("SWITCHBOARD_TCP=portable turns the direct path off for a whole process", async () => {
  assert.equal(directSendAvailable(), true, "on under deno test --allow-all");
  const script = `import { directSendAvailable } from "${
    new URL("../lib/direct_send.ts", import.meta.url).href
  }"; console.log(directSendAvailable());`;
  for (
    const [env, expected] of [[{ SWITCHBOARD_TCP: "portable" }, "false"], [{}, "true"]] as const
  ) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: { ...env, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(output.code, 0, decoder.decode(output.stderr));
    assert.equal(decoder.decode(output.stdout).trim(), expected, JSON.stringify(env));
  }
});
