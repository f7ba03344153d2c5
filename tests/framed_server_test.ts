import assert from "node:assert/strict";
import { encodeFrame, encodeHeader, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { RequestError, serveFrames } from "../lib/framed_server.ts";
import { LogThrottle } from "../lib/log_throttle.ts";
import { defineService, type Service } from "../lib/service.ts";
import { writeAll } from "../lib/write_all.ts";
import { readToEnd, startServer, waitFor } from "./_helpers.ts";

/**
 * A framed test service: `ping` answers `pong`; `sum` reads its body and
 * answers its length; `refuse` refuses with `forbidden` (body unread).
 */
const framed: Service = defineService<{ token?: string }>({
  name: "framed",
  transports: ["tcp"],
  defaultPort: 9,
  parseOptions: (reader) => ({ token: reader.string("token") }),
  open: (options) => {
    // One throttle per listener, as the real services keep.
    const malformedLog = new LogThrottle();
    return {
      stream: (conn, context) =>
        serveFrames(conn, context, {
          token: options.token,
          malformedLog,
          operations: {
            ping: async ({ send }) => await send({ op: "pong" }),
            sum: async ({ frames, send }) => {
              const buffer = new Uint8Array(65536);
              let total = 0;
              for (
                let n = await frames.readBody(buffer);
                n !== null;
                n = await frames.readBody(buffer)
              ) {
                total += n;
              }
              await send({ op: "sum", length: total });
            },
            refuse: () => Promise.reject(new RequestError("forbidden", "Not today")),
          },
        }),
    };
  },
});

async function open(toml: string): Promise<{ server: AsyncDisposable; port: number }> {
  const server = await startServer(
    `[[listener]]\nname = "f"\nservice = "framed"\nlisten = "127.0.0.1:0"\n${toml}`,
    { services: [framed] },
  );
  return { server, port: server.port("f") };
}

async function exchange(
  conn: Deno.Conn,
  reader: FrameReader,
  bytes: Uint8Array,
): Promise<FrameHeader | null> {
  await writeAll(conn, bytes);
  return await reader.readHeader();
}

Deno.test("requests on one connection are answered in order, sticky or not", async () => {
  const { server, port } = await open("");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  const both = new Uint8Array([
    ...encodeFrame({ op: "ping" }),
    ...encodeFrame({ op: "sum" }, new Uint8Array(5)),
  ]);
  await writeAll(conn, both);
  assert.deepEqual(await reader.readHeader(), { op: "pong" });
  assert.deepEqual(await reader.readHeader(), { op: "sum", length: 5 });
});

Deno.test("request-level errors get an error frame and the connection stays usable", async (t) => {
  const { server, port } = await open("");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ["missing op", { path: "x" }, "bad_request", /Missing "op"/],
    ["non-string op", { op: 7 }, "bad_request", /"op" must be a string/],
    [
      "unknown op",
      { op: "dance" },
      "bad_request",
      /Unknown op "dance" \(expected "ping", "sum", "refuse"\)/,
    ],
    ["refused by the operation", { op: "refuse" }, "forbidden", /Not today/],
  ];
  for (const [name, header, code, message] of cases) {
    await t.step(name, async () => {
      // Written by hand: encodeFrame itself refuses headers without a string op.
      const reply = await exchange(conn, reader, encodeHeaderRaw(JSON.stringify(header)));
      assert.equal(reply?.op, "error");
      assert.equal(reply?.code, code);
      assert.match(String(reply?.message), message);
      assert.deepEqual(await exchange(conn, reader, encodeFrame({ op: "ping" })), { op: "pong" });
    });
  }
});

Deno.test("a refused request's body up to 1 MiB is discarded and the connection kept", async () => {
  const { server, port } = await open("");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  const body = new Uint8Array(1024 * 1024).fill(0x70);
  const reply = await exchange(conn, reader, encodeFrame({ op: "refuse" }, body));
  assert.equal(reply?.code, "forbidden");
  assert.deepEqual(await exchange(conn, reader, encodeFrame({ op: "ping" })), { op: "pong" });
});

Deno.test("a refused request with a body over 1 MiB gets the error, then the connection closes", async () => {
  const { server, port } = await open("");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  // Only the header is sent: the server must not wait for 5 MiB it will not read.
  const reply = await exchange(conn, reader, encodeHeader({ op: "refuse", size: 5 * 1024 * 1024 }));
  assert.equal(reply?.code, "forbidden");
  assert.equal(await reader.readHeader(), null);
});

Deno.test("a malformed frame gets bad_frame and the connection closes", async (t) => {
  const cases: [string, Uint8Array][] = [
    ["length zero", new Uint8Array([0, 0, 0, 0])],
    ["length over the limit", new Uint8Array([0, 1, 0, 1])],
    ["invalid JSON", new Uint8Array([0, 0, 0, 3, 0x7b, 0x7b, 0x7d])],
    ["not an object", new Uint8Array([0, 0, 0, 2, 0x5b, 0x5d])],
    ["invalid UTF-8", new Uint8Array([0, 0, 0, 4, 0x22, 0xff, 0xfe, 0x22])],
    ["bad size", encodeHeaderRaw('{"op":"sum","size":-1}')],
  ];
  const { server, port } = await open("");
  await using _ = server;
  for (const [name, bytes] of cases) {
    await t.step(name, async () => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const reader = new FrameReader(conn);
      const reply = await exchange(conn, reader, bytes);
      assert.equal(reply?.op, "error");
      assert.equal(reply?.code, "bad_frame");
      assert.equal(typeof reply?.message, "string");
      assert.equal(await reader.readHeader(), null);
    });
  }
});

Deno.test("with a token, a missing or wrong one is unauthorized and nothing is done", async () => {
  const { server, port } = await open('token = "s3cret"');
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  for (const header of [{ op: "ping" }, { op: "ping", token: "wrong" }, { op: "ping", token: 1 }]) {
    const reply = await exchange(conn, reader, encodeFrame(header));
    assert.equal(reply?.code, "unauthorized");
  }
  const body = new Uint8Array(1000);
  const refused = await exchange(conn, reader, encodeFrame({ op: "sum", token: "nope" }, body));
  assert.equal(refused?.code, "unauthorized");
  assert.deepEqual(await exchange(conn, reader, encodeFrame({ op: "ping", token: "s3cret" })), {
    op: "pong",
  });
});

function encodeHeaderRaw(json: string): Uint8Array {
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(4 + text.length);
  new DataView(out.buffer).setUint32(0, text.length);
  out.set(text, 4);
  return out;
}

Deno.test("a refused request whose body never arrives is a malformed frame logged at info, throttled", async () => {
  const server = await startServer(
    `[[listener]]\nname = "f"\nservice = "framed"\nlisten = "127.0.0.1:0"\ntoken = "s3cret"\n`,
    { services: [framed] },
  );
  await using _ = server;
  const port = server.port("f");
  // Wrong token, unknown op, no token: each announces 1000 body bytes, sends 10, and leaves.
  const refused = [
    { op: "sum", token: "wrong", size: 1000 },
    { op: "nope", token: "s3cret", size: 1000 },
    { op: "sum", size: 1000 },
  ];
  for (const header of [...refused, ...refused]) {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(conn, encodeHeader(header));
    await writeAll(conn, new Uint8Array(10));
    await conn.closeWrite();
    const reply = await new FrameReader(conn).readHeader();
    assert.equal(reply?.op, "error");
    await readToEnd(conn, 2000);
  }
  await waitFor(() => server.supervisor.listeners[0]!.stats.active === 0);
  const malformed = server.lines.filter((l) => l.includes("Malformed frame"));
  // Six in well under a second: the first is logged, the rest wait for the next line's count.
  assert.equal(malformed.length, 1, server.lines.join("\n"));
  assert.match(
    malformed[0]!,
    /INFO +Malformed frame: Cannot read frame: stream ended with 990 body bytes missing/,
  );
  assert.ok(
    !server.lines.some((l) => /WARN|ERROR|Handler failed/.test(l)),
    server.lines.join("\n"),
  );
  await new Promise((resolve) => setTimeout(resolve, 1100));
  using last = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(last, new Uint8Array([0, 0, 0, 0]));
  await readToEnd(last, 2000);
  await waitFor(() => server.lines.filter((l) => l.includes("Malformed frame")).length === 2);
  assert.match(server.lines.filter((l) => l.includes("Malformed frame"))[1]!, / count=6( |$)/);
});
