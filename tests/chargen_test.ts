import assert from "node:assert/strict";
import { ChargenDatagrams, MAX_DATAGRAM } from "../handlers/chargen/mod.ts";
import { chargenPeriods, PERIOD } from "../handlers/chargen/pattern.ts";
import {
  checkConfig,
  listenerToml,
  readBytes,
  startServer,
  udpRequest,
  waitFor,
  waitForStall,
} from "./_helpers.ts";

const decoder = new TextDecoder();

/** Checks RFC 864's shape: 72 printable characters and CRLF, each line one further on. */
function assertPattern(text: string, firstLine = 0): void {
  const lines = text.split("\r\n");
  lines.pop(); // the last, possibly partial, line
  assert.ok(lines.length > 0);
  lines.forEach((line, index) => {
    const expected = Array.from(
      { length: 72 },
      (_, column) => String.fromCharCode(0x20 + (firstLine + index + column) % 95),
    ).join("");
    assert.equal(line, expected, `line ${index}`);
  });
}

Deno.test("chargen's pattern: 95 lines of 72 printable characters, each one further on", () => {
  const text = decoder.decode(chargenPeriods(2));
  assert.equal(text.length, 2 * PERIOD);
  assertPattern(text);
  assert.ok(text.startsWith(" !\"#$%&'()*+,-./0123456789"));
  assert.equal(text.split("\r\n")[94]![0], "~", "the 95th line starts with the last character");
  assert.equal(text.split("\r\n")[95]![0], " ", "then it starts over");
});

Deno.test("chargen over TCP streams the pattern from connect, across writes, and ignores input", async () => {
  await using server = await startServer(
    listenerToml({ name: "c", service: "chargen", listen: "127.0.0.1:0" }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("c") });
  await conn.write(new TextEncoder().encode("anything\n"));
  await conn.closeWrite(); // nc -N with an empty stdin: the stream goes on
  // Well past one 63,270-byte write, so the seam between writes is checked too.
  const bytes = await readBytes(conn, 200_000);
  assert.equal(bytes.length, 200_000);
  assertPattern(decoder.decode(bytes));
  conn.close();
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")));
  assert.match(
    server.lines.find((l) => l.includes("Connection closed"))!,
    / in=9 out=\d+ outcome=closed/,
  );
  assert.ok(!server.lines.some((l) => l.includes("WARN")), server.lines.join("\n"));
});

Deno.test("chargen over TCP writes only as fast as the client reads (bounded memory)", async () => {
  await using server = await startServer(
    listenerToml({ name: "c", service: "chargen", listen: "127.0.0.1:0" }),
  );
  using _conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("c") });
  const sent = (): number => server.supervisor.listeners[0]!.stats.bytesOut;
  // The client never reads: once the socket buffers are full, the daemon stops.
  const last = await waitForStall(sent);
  assert.ok(last < 64 * 1024 * 1024, `${last} bytes went out to a client that never read`);
});

Deno.test("chargen ends its stream when the daemon stops, without waiting for the deadline", async () => {
  const server = await startServer(
    listenerToml({ name: "c", service: "chargen", listen: "127.0.0.1:0" }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("c") });
  const reading = (async () => {
    const buffer = new Uint8Array(65536);
    try {
      while ((await conn.read(buffer)) !== null);
    } catch {
      // Closed.
    }
  })();
  await waitFor(() => server.supervisor.listeners[0]!.stats.bytesOut > 100_000);
  await server.supervisor.shutdown(30_000);
  await reading;
  assert.ok(!server.lines.some((l) => l.includes("Shutdown timeout")), server.lines.join("\n"));
});

Deno.test("chargen over UDP answers each datagram with 0 to 512 characters of the pattern", async () => {
  await using server = await startServer(
    listenerToml({
      name: "cu",
      service: "chargen",
      transport: "udp",
      listen: "127.0.0.1:0",
      allow_udp: true,
    }),
  );
  let stream = "";
  for (let i = 0; i < 20; i++) {
    const reply = await udpRequest(server.port("cu"), new Uint8Array([0x0a]));
    assert.ok(reply !== null, `datagram ${i} answered`);
    assert.ok(reply.length <= MAX_DATAGRAM);
    stream += decoder.decode(reply);
  }
  // Replies continue one another: together they are the start of the stream.
  assert.equal(stream, decoder.decode(chargenPeriods(3)).slice(0, stream.length));
});

Deno.test("chargen datagram lengths cover 0 through 512 and wrap the period", () => {
  let value = 0;
  const replies = new ChargenDatagrams(() => value);
  assert.equal(replies.next().length, 0);
  value = 0.999999;
  let total = 0;
  for (let i = 0; i < 20; i++) {
    const reply = replies.next();
    assert.equal(reply.length, 512);
    total += reply.length;
  }
  assert.ok(total > PERIOD, "past one period, the offset wraps and replies stay whole");
});

Deno.test("check refuses chargen over UDP unless allow_udp = true (exit 78)", async () => {
  const bad = await checkConfig(
    listenerToml({ service: "chargen", transport: "udp", listen: "127.0.0.1:7119" }),
  );
  assert.equal(bad.code, 78, bad.stderr);
  assert.match(
    bad.stderr,
    /switchboard\.toml:3: listener\[0\]\.transport: chargen over udp .* amplifier .* allow_udp = true/,
  );
  const good = await checkConfig(listenerToml({
    service: "chargen",
    transport: "udp",
    listen: "127.0.0.1:7119",
    allow_udp: true,
  }));
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /chargen-udp-7119 +chargen +udp +127\.0\.0\.1:7119 .*allow_udp/);
  const tcp = await checkConfig(
    listenerToml({ service: "chargen", listen: "127.0.0.1:7119", allow_udp: true }),
  );
  assert.equal(tcp.code, 78);
  assert.match(tcp.stderr, /allow_udp: has no effect on a tcp listener/);
});
