import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { NodeStreamConn } from "../lib/node_stream_conn.ts";
import { readBytes } from "./_helpers.ts";

const encoder = new TextEncoder();

async function pair(): Promise<{ server: Server; conn: NodeStreamConn; peer: Deno.TcpConn }> {
  const accepted = Promise.withResolvers<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => accepted.resolve(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const peer = await Deno.connect({ hostname: "127.0.0.1", port });
  return { server, conn: new NodeStreamConn(await accepted.promise), peer };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

Deno.test("node stream conn: reads fill small buffers in order, writes may reuse their buffer", async () => {
  const { server, conn, peer } = await pair();
  try {
    assert.equal(conn.remoteAddr.hostname, "127.0.0.1");
    assert.equal(conn.localAddr.port, (server.address() as { port: number }).port);
    await peer.write(encoder.encode("abcdefgh"));
    const small = new Uint8Array(3);
    let text = "";
    while (text.length < 8) {
      const n = await conn.read(small);
      text += new TextDecoder().decode(small.subarray(0, n!));
    }
    assert.equal(text, "abcdefgh");
    const buffer = encoder.encode("first");
    await conn.write(buffer);
    buffer.set(encoder.encode("XXXXX"));
    await conn.write(buffer);
    assert.equal(new TextDecoder().decode(await readBytes(peer, 10)), "firstXXXXX");
    // Half-close both ways: each side reads end of stream, and can still write.
    await peer.closeWrite();
    assert.equal(await conn.read(small), null);
    await conn.write(encoder.encode("late"));
    await conn.closeWrite();
    assert.equal(new TextDecoder().decode(await readBytes(peer, 10)), "late");
  } finally {
    conn.close();
    peer.close();
    await close(server);
  }
});

Deno.test("node stream conn: a closed connection says so to a pending and a later read", async () => {
  const { server, conn, peer } = await pair();
  try {
    const pending = conn.read(new Uint8Array(4));
    conn.close();
    conn.close();
    await assert.rejects(pending, Deno.errors.BadResource);
    await assert.rejects(conn.read(new Uint8Array(4)), Deno.errors.BadResource);
    await assert.rejects(conn.write(encoder.encode("x")), Deno.errors.BadResource);
    assert.equal((await readBytes(peer, 1)).length, 0);
  } finally {
    peer.close();
    await close(server);
  }
});

Deno.test("node stream conn: a write held up by a peer that does not read fails when the connection closes", async () => {
  const { server, conn, peer } = await pair();
  try {
    // Far more than the socket buffers hold: the write waits for the peer.
    const pending = conn.write(new Uint8Array(64 * 1024 * 1024));
    const settled = await Promise.race([
      pending.then(() => "written", () => "failed"),
      new Promise((resolve) => setTimeout(() => resolve("waiting"), 200)),
    ]);
    assert.equal(settled, "waiting");
    conn.close();
    await assert.rejects(pending, Deno.errors.BadResource);
  } finally {
    peer.close();
    await close(server);
  }
});
