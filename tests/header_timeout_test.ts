import assert from "node:assert/strict";
import { HeaderDeadlines } from "../lib/header_deadline.ts";
import { encodeFrame, FrameError, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { listenerToml, readBytes, startServer, type TestServer } from "./_helpers.ts";
import { within } from "./_hostile.ts";

const encoder = new TextEncoder();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A source that hands out the given pieces, one per read. */
function pieces(...chunks: Uint8Array[]): { read(p: Uint8Array): Promise<number | null> } {
  let index = 0;
  let offset = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      const chunk = chunks[index];
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(p.length, chunk.length - offset);
      p.set(chunk.subarray(offset, offset + n));
      offset += n;
      if (offset === chunk.length) {
        index++;
        offset = 0;
      }
      return Promise.resolve(n);
    },
  };
}

Deno.test("the frame reader reports a header only while it waits for the rest of it", async (t) => {
  const frame = encodeFrame({ op: "stat", path: "a" });
  await t.step("a header in one read makes no call", async () => {
    const calls: boolean[] = [];
    const reader = new FrameReader(pieces(frame, frame), {
      onPartialHeader: (pending) => calls.push(pending),
    });
    assert.equal((await reader.readHeader())?.op, "stat");
    assert.equal((await reader.readHeader())?.op, "stat");
    assert.equal(await reader.readHeader(), null);
    assert.deepEqual(calls, []);
  });
  for (const split of [1, 3, 4, 7, frame.length - 1]) {
    await t.step(`a header split after ${split} bytes is pending until it is whole`, async () => {
      const calls: boolean[] = [];
      const reader = new FrameReader(pieces(frame.subarray(0, split), frame.subarray(split)), {
        onPartialHeader: (pending) => calls.push(pending),
      });
      assert.equal((await reader.readHeader())?.op, "stat");
      assert.deepEqual(calls, [true, false]);
    });
  }
  await t.step("a header cut short ends pending too", async () => {
    const calls: boolean[] = [];
    const reader = new FrameReader(pieces(frame.subarray(0, 6)), {
      onPartialHeader: (pending) => calls.push(pending),
    });
    await assert.rejects(reader.readHeader(), FrameError);
    assert.deepEqual(calls, [true, false]);
  });
});

Deno.test("header deadlines expire the oldest pending header first, and only late ones", async () => {
  const expired: string[] = [];
  using deadlines = new HeaderDeadlines<string>(150, (key) => expired.push(key));
  deadlines.start("a");
  await sleep(60);
  deadlines.start("b");
  deadlines.start("c");
  deadlines.start("a"); // already running: keeps its start
  deadlines.stop("c");
  await sleep(120);
  assert.deepEqual(expired, ["a"]);
  await sleep(120);
  assert.deepEqual(expired, ["a", "b"]);
  assert.equal(deadlines.size, 0);
});

Deno.test("header deadlines with no limit never start, and stopping the last one stops the timer", () => {
  const none = new HeaderDeadlines<number>(0, () => assert.fail("expired"));
  none.start(1);
  assert.equal(none.size, 0);
  // The resource sanitizer fails this test if a timer were left running.
  const some = new HeaderDeadlines<number>(10_000, () => assert.fail("expired"));
  some.start(1);
  some.start(2);
  some.stop(1);
  some.stop(2);
  assert.equal(some.size, 0);
});

/** Sends `bytes` one at a time every `intervalMs` until the server closes; resolves with when it closed. */
async function dribble(conn: Deno.Conn, bytes: Uint8Array, intervalMs: number): Promise<number> {
  const started = performance.now();
  let closedAt: number | undefined;
  const closed = (async () => {
    const sink = new Uint8Array(4096);
    try {
      while ((await conn.read(sink)) !== null) { /* discard what the service says */ }
    } catch {
      // A reset is a close too.
    }
    closedAt = performance.now() - started;
  })();
  for (let i = 0; i < bytes.length && closedAt === undefined; i++) {
    try {
      await conn.write(bytes.subarray(i, i + 1));
    } catch {
      break;
    }
    await within(closed, intervalMs);
  }
  await within(closed, 3000);
  if (closedAt === undefined) conn.close();
  await closed;
  return closedAt ?? Infinity;
}

interface Case {
  what: string;
  toml: (root: string) => string;
  /** A request the service would answer, sent one byte at a time. */
  request: Uint8Array;
}

const HEADER_TIMEOUT_MS = 600;

const CASES: Case[] = [
  {
    what: "file (framed)",
    toml: (root) => listenerToml({ name: "s", service: "file", root }),
    request: encodeFrame({ op: "stat", path: "", padding: "x".repeat(40) }),
  },
  {
    what: "cmd (framed)",
    toml: () => listenerToml({ name: "s", service: "cmd", auth: "none" }),
    request: encodeFrame({ op: "exec", argv: ["true"], padding: "x".repeat(40) }),
  },
  {
    what: "cmd (line protocol)",
    toml: () => listenerToml({ name: "s", service: "cmd", auth: "none", protocol: "line" }),
    request: encoder.encode("echo a line that takes a long time to arrive\n"),
  },
  {
    what: "time (tcp lines)",
    toml: () => listenerToml({ name: "s", service: "time", transport: "tcp" }),
    request: encoder.encode("%Y-%m-%d %H:%M:%S and then some more text\n"),
  },
  {
    what: "chat (tcp lines)",
    toml: () => listenerToml({ name: "s", service: "chat", transport: "tcp" }),
    request: encoder.encode("a message that takes a long time to arrive\n"),
  },
  {
    what: "file (raw protocol)",
    toml: (root) => listenerToml({ name: "s", service: "file", root, protocol: "raw" }),
    request: encoder.encode("a-long-file-name-that-takes-a-while.txt\n"),
  },
];

async function serverFor(c: Case, root: string, extra: Record<string, unknown> = {}) {
  const keys = Object.entries({
    listen: "127.0.0.1:0",
    header_timeout: `${HEADER_TIMEOUT_MS}ms`,
    ...extra,
  }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n");
  return await startServer(`${c.toml(root)}${keys}\n`);
}

for (const c of CASES) {
  Deno.test(`${c.what}: a client dribbling a request one byte at a time is cut at header_timeout`, async () => {
    const root = await Deno.makeTempDir();
    try {
      await using server = await serverFor(c, root);
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("s") });
      const closedMs = await dribble(conn, c.request, 100);
      assert.ok(
        closedMs >= HEADER_TIMEOUT_MS - 50 && closedMs < HEADER_TIMEOUT_MS + 1500,
        `closed after ${closedMs}ms, header_timeout ${HEADER_TIMEOUT_MS}ms`,
      );
      assert.ok(
        server.lines.some((l) =>
          l.includes("request header not complete within header_timeout (600ms)")
        ),
        server.lines.join("\n"),
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

async function statOnce(port: number): Promise<string | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return null;
  }
  try {
    await writeAll(conn, encodeFrame({ op: "stat", path: "" }));
    const reader = new FrameReader(conn);
    const header = await within(reader.readHeader(), 1000);
    return typeof header?.op === "string" ? header.op : null;
  } catch {
    return null;
  } finally {
    conn.close();
  }
}

Deno.test("dribbling clients filling max_connections are cut at header_timeout and a normal client is served", async () => {
  const root = await Deno.makeTempDir();
  try {
    await using server = await serverFor(CASES[0]!, root, { max_connections: 4 });
    const port = server.port("s");
    const conns = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    const started = performance.now();
    const dribbling = conns.map((conn) => dribble(conn, CASES[0]!.request, 100));
    await sleep(150);
    // The listener is full: a normal client is turned away for now.
    assert.equal(await statOnce(port), null);
    assert.ok(server.supervisor.listeners[0]!.stats.refused >= 1);
    let servedAt: number | undefined;
    for (let attempt = 0; attempt < 40 && servedAt === undefined; attempt++) {
      if ((await statOnce(port)) === "stat") servedAt = performance.now() - started;
      else await sleep(100);
    }
    const closed = await Promise.all(dribbling);
    for (const conn of conns) conn.close();
    assert.ok(servedAt !== undefined, "the normal client was never served");
    assert.ok(servedAt < HEADER_TIMEOUT_MS + 2000, `served after ${servedAt}ms`);
    for (const ms of closed) assert.ok(ms < HEADER_TIMEOUT_MS + 1500, `dribbler closed at ${ms}ms`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function withFileServer(
  extra: Record<string, unknown>,
  run: (server: TestServer, port: number) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await using server = await serverFor(CASES[0]!, root, extra);
    await run(server, server.port("s"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("header_timeout starts at a request's first byte: silence between requests is idle_timeout's", async () => {
  await withFileServer({ idle_timeout: "5s" }, async (_server, port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const reader = new FrameReader(conn);
    const frame = encodeFrame({ op: "stat", path: "" });
    for (let round = 0; round < 2; round++) {
      await sleep(HEADER_TIMEOUT_MS + 200);
      // Split, but whole well within the timeout.
      await writeAll(conn, frame.subarray(0, 5));
      await sleep(150);
      await writeAll(conn, frame.subarray(5));
      assert.equal((await reader.readHeader())?.op, "stat");
    }
  });
});

Deno.test("header_timeout = 0 lets a slow header finish", async () => {
  await withFileServer({ header_timeout: 0 }, async (_server, port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const frame = encodeFrame({ op: "stat", path: "" });
    await writeAll(conn, frame.subarray(0, 3));
    await sleep(HEADER_TIMEOUT_MS + 300);
    await writeAll(conn, frame.subarray(3));
    const head = await readBytes(conn, 4, 2000);
    assert.equal(head.length, 4);
  });
});
