import assert from "node:assert/strict";
import { LookaheadConnection } from "../handlers/cmd/lookahead_conn.ts";
import { MeteredConn } from "../lib/metered_conn.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connected pair over real loopback TCP: the wrapped server side and the client. */
async function pair(capacity?: number): Promise<{
  server: LookaheadConnection;
  raw: MeteredConn;
  client: Deno.TcpConn;
  [Symbol.dispose](): void;
}> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, accepted] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  const raw = new MeteredConn(accepted, accepted.remoteAddr);
  return {
    server: new LookaheadConnection(raw, capacity),
    raw,
    client,
    [Symbol.dispose]() {
      raw.close();
      try {
        client.close();
      } catch {
        // Already closed.
      }
    },
  };
}

async function readText(conn: LookaheadConnection, size = 100): Promise<string | null> {
  const buffer = new Uint8Array(size);
  const n = await conn.read(buffer);
  return n === null ? null : decoder.decode(buffer.subarray(0, n));
}

/** Rejects when `promise` does not settle in time (the regression hung forever). */
async function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("Did not settle in time")), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("look-ahead keeps bytes read while watching for later reads, in order", async () => {
  using p = await pair();
  await p.client.write(encoder.encode("first "));
  assert.equal(await p.server.watch(), "data");
  await p.client.write(encoder.encode("second"));
  assert.equal(await p.server.watch(), "data");
  let got = "";
  while (got.length < 12) got += await readText(p.server, 4);
  assert.equal(got, "first second");
});

Deno.test("look-ahead serves buffered bytes while another look-ahead read is pending", async () => {
  using p = await pair();
  await p.client.write(encoder.encode("request"));
  assert.equal(await p.server.watch(), "data");
  // The watcher reads ahead again; nothing more will come until we answer.
  const watching = p.server.watch();
  assert.equal(await within(readText(p.server)), "request");
  p.client.close();
  assert.equal(await within(watching), "closed");
});

Deno.test("look-ahead reports the peer closing, after which reads end", async () => {
  using p = await pair();
  await p.client.write(encoder.encode("last words"));
  p.client.close();
  let seen = await p.server.watch();
  if (seen === "data") seen = await p.server.watch();
  assert.equal(seen, "closed");
  assert.equal(await readText(p.server), "last words");
  assert.equal(await readText(p.server), null);
});

Deno.test("look-ahead stops at its capacity until a read makes room", async () => {
  using p = await pair(4);
  await p.client.write(encoder.encode("abcdefgh"));
  let seen = await p.server.watch();
  while (seen === "data") seen = await p.server.watch();
  assert.equal(seen, "full");
  let roomy = false;
  const space = p.server.space().then(() => roomy = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(roomy, false);
  assert.equal(await readText(p.server, 2), "ab");
  await within(space);
  let rest = "";
  while (rest.length < 6) rest += await readText(p.server);
  assert.equal(rest, "cdefgh");
});

Deno.test("look-ahead passes reads and writes through when nobody watches", async () => {
  using p = await pair();
  await p.server.writeAll(encoder.encode("hello"));
  const buffer = new Uint8Array(5);
  let got = 0;
  while (got < 5) got += (await p.client.read(buffer.subarray(got)))!;
  assert.equal(decoder.decode(buffer), "hello");
  await p.client.write(encoder.encode("back"));
  assert.equal(await readText(p.server), "back");
  assert.equal(p.raw.bytesIn, 4);
});

Deno.test("look-ahead starts small and grows to its full capacity, bytes in order", async () => {
  using p = await pair(8192);
  const data = new Uint8Array(8192);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const sending = p.client.write(data);
  let seen = "data";
  for (let i = 0; i < 1000 && seen === "data"; i++) seen = await within(p.server.watch());
  assert.equal(seen, "full");
  assert.equal(p.raw.bytesIn, 8192, "full only once all 8192 bytes are held");
  await sending;
  const back = new Uint8Array(8192);
  let got = 0;
  while (got < back.length) got += (await p.server.read(back.subarray(got)))!;
  assert.deepEqual(back, data);
});
