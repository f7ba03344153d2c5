import assert from "node:assert/strict";
import { parseTarget } from "../handlers/redirect/target.ts";
import { renderMetrics } from "../lib/metrics.ts";
import { writeAll } from "../lib/write_all.ts";
import {
  checkConfig,
  exchange,
  listenerProblems,
  listenerToml,
  readBytes,
  readToEnd,
  startServer,
  type TestServer,
  waitFor,
  waitForStall,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function redirectTo(port: number, keys: Record<string, unknown> = {}, host = "127.0.0.1") {
  return startServer(
    listenerToml({
      name: "r",
      service: "redirect",
      listen: "127.0.0.1:0",
      target: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
      ...keys,
    }),
  );
}

function connect(server: TestServer): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port: server.port("r") });
}

async function lastLine(server: TestServer): Promise<string> {
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")), 10_000);
  return server.lines.find((l) => l.includes("Connection closed"))!;
}

/** A one-connection target server run by the test. */
class TargetServer implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly accepted: Promise<Deno.TcpConn>;

  constructor(hostname = "127.0.0.1") {
    this.listener = Deno.listen({ hostname, port: 0 });
    this.accepted = this.listener.accept();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.listener.close();
    const peer = await this.accepted.catch(() => undefined);
    try {
      peer?.close();
    } catch {
      // The test closed it already.
    }
  }
}

Deno.test("redirect relays to a local echo: every byte both ways, the half-close passed on", async () => {
  await using echo = await startServer(
    listenerToml({ name: "echo", service: "echo", listen: "127.0.0.1:0" }),
  );
  await using server = await redirectTo(echo.port("echo"));
  using conn = await connect(server);
  const { sent, received } = await exchange(conn, 4 << 20);
  assert.deepEqual(received, sent);
  assert.match(
    await lastLine(server),
    /listener=r peer=127\.0\.0\.1:\d+ ms=\d+ in=4194304 out=4194304 outcome=closed target=127\.0\.0\.1:\d+$/,
  );
});

Deno.test("redirect to a server that answers only after EOF: the client's half-close reaches it", async () => {
  await using target = new TargetServer();
  const answering = (async () => {
    const peer = await target.accepted;
    const got = await readToEnd(peer);
    await writeAll(peer, encoder.encode(`got ${got.length} bytes: ${decoder.decode(got)}`));
    peer.closeWrite();
  })();
  await using server = await redirectTo(target.port);
  using conn = await connect(server);
  await writeAll(conn, encoder.encode("question"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "got 8 bytes: question");
  await answering;
  // The bytes each way, in the last line and in metrics.
  assert.match(await lastLine(server), / in=8 out=21 outcome=closed target=/);
  const metrics = renderMetrics(server.supervisor.listeners, {
    version: "t",
    reloads: 0,
    failedReloads: 0,
    startedAt: 0,
  });
  assert.match(
    metrics,
    /switchboard_received_bytes_total\{listener="r",service="redirect",[^}]*\} 8\n/,
  );
  assert.match(
    metrics,
    /switchboard_sent_bytes_total\{listener="r",service="redirect",[^}]*\} 21\n/,
  );
});

Deno.test("redirect passes the target's half-close on, and the client can still send", async () => {
  await using target = new TargetServer();
  const serving = (async () => {
    const peer = await target.accepted;
    await writeAll(peer, encoder.encode("hello, then silence\n"));
    await peer.closeWrite();
    return decoder.decode(await readToEnd(peer));
  })();
  await using server = await redirectTo(target.port);
  using conn = await connect(server);
  assert.equal(decoder.decode(await readToEnd(conn)), "hello, then silence\n", "EOF came through");
  await writeAll(conn, encoder.encode("late words"));
  await conn.closeWrite();
  assert.equal(await serving, "late words");
  await lastLine(server);
});

Deno.test("redirect to an IPv6 target", async () => {
  await using target = new TargetServer("::1");
  const serving = (async () => {
    const peer = await target.accepted;
    await writeAll(peer, encoder.encode(peer.remoteAddr.hostname));
    await peer.closeWrite();
  })();
  await using server = await redirectTo(target.port, {}, "::1");
  using conn = await connect(server);
  assert.equal(decoder.decode(await readToEnd(conn)), "::1");
  await serving;
});

Deno.test("a target that refuses closes the client at once and is logged", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close(); // nothing listens there now
  await using server = await redirectTo(port, { connect_timeout: "1m" });
  using conn = await connect(server);
  // Well before connect_timeout: the refusal itself closes the client.
  assert.equal((await readToEnd(conn, 5000)).length, 0);
  assert.match(await lastLine(server), / in=0 out=0 outcome="target refused" target=/);
  assert.ok(
    server.lines.some((l) =>
      /WARN {2}Cannot reach target 127\.0\.0\.1:\d+: ConnectionRefused/.test(l)
    ),
    server.lines.join("\n"),
  );
});

Deno.test("a target that does not answer is given up after connect_timeout", async () => {
  // A listener nobody accepts on, its backlog filled: the next SYN goes unanswered.
  const blackhole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const queued: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 4096; i++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 1000);
      try {
        queued.push(
          await Deno.connect({
            hostname: "127.0.0.1",
            port: blackhole.addr.port,
            signal: controller.signal,
          }),
        );
      } catch {
        break; // the backlog is full
      } finally {
        clearTimeout(timer);
      }
    }
    await using server = await redirectTo(blackhole.addr.port, { connect_timeout: "300ms" });
    using conn = await connect(server);
    assert.equal((await readToEnd(conn, 5000)).length, 0);
    assert.match(await lastLine(server), /outcome="target timeout"/);
    assert.ok(
      server.lines.some((l) => l.includes("no answer within connect_timeout (300ms)")),
      server.lines.join("\n"),
    );
  } finally {
    for (const conn of queued) conn.close();
    blackhole.close();
  }
});

Deno.test("redirect back-pressure: a target that does not read stops the client, nothing is lost", async () => {
  await using target = new TargetServer();
  await using server = await redirectTo(target.port);
  using conn = await connect(server);
  const peer = await target.accepted;
  const size = 64 << 20;
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) payload[i] = (i / 4096) & 0xff;
  const sending = writeAll(conn, payload).then(() => conn.closeWrite());
  const received = await waitForStall(() => server.supervisor.listeners[0]!.stats.bytesIn);
  assert.ok(
    received < size / 2,
    `the daemon took ${received} of ${size} bytes for a stalled target`,
  );
  const all = await readToEnd(peer, 30_000);
  await sending;
  assert.equal(all.length, size);
  assert.ok(all.every((byte, i) => byte === payload[i]), "in order, intact");
  peer.close();
});

Deno.test("redirect back-pressure: a client that does not read stops the target", async () => {
  await using target = new TargetServer();
  await using server = await redirectTo(target.port);
  using conn = await connect(server);
  const peer = await target.accepted;
  const size = 64 << 20;
  const sending = writeAll(peer, new Uint8Array(size)).then(() => peer.closeWrite());
  const sent = await waitForStall(() => server.supervisor.listeners[0]!.stats.bytesOut);
  assert.ok(sent < size / 2, `the daemon sent ${sent} of ${size} bytes to a client not reading`);
  assert.equal((await readToEnd(conn, 30_000)).length, size);
  await sending;
});

Deno.test("redirect: a relay stuck on a target that does not read is cut by idle_timeout", async () => {
  await using target = new TargetServer();
  await using server = await redirectTo(target.port, { idle_timeout: "300ms" });
  const conn = await connect(server);
  const peer = await target.accepted;
  const sending = writeAll(conn, new Uint8Array(64 << 20)).catch(() => {});
  assert.match(await lastLine(server), /outcome=idle target=/);
  // The target's side is closed too: reading it reaches the end.
  await readToEnd(peer, 30_000).catch(() => {});
  conn.close();
  await sending;
});

Deno.test("targets parse as host:port, [v6]:port or a name", async (t) => {
  const good: [string, string, number, boolean][] = [
    ["10.0.0.2:80", "10.0.0.2", 80, true],
    ["[fd00::1]:8080", "fd00::1", 8080, true],
    ["localhost:25", "127.0.0.1", 25, true],
    ["db.internal:5432", "db.internal", 5432, false],
    ["example.com.:443", "example.com.", 443, false],
  ];
  for (const [text, hostname, port, literal] of good) {
    await t.step(text, () => assert.deepEqual(parseTarget(text), { hostname, port, literal }));
  }
  for (const bad of ["10.0.0.2", ":80", "host:0", "host:65536", "[::1:80", "fd00::1:80", "a_b:1"]) {
    await t.step(`refuses ${bad}`, () => assert.throws(() => parseTarget(bad), SyntaxError));
  }
});

Deno.test("check validates redirect's keys (exit 78)", async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /listener\[0\]\.target: is required/],
    [{ target: "nowhere" }, /target: "nowhere" is not a target/],
    [{ target: "127.0.0.1:7120" }, /target: 127\.0\.0\.1:7120 is this listener's own address/],
    [{ target: "10.0.0.1:80", connect_timeout: "fast" }, /connect_timeout: /],
    [{ target: "10.0.0.1:80", transport: "udp" }, /"udp" is not supported by the "redirect"/],
  ];
  for (const [keys, expected] of cases) {
    await t.step(JSON.stringify(keys), () => {
      const found = listenerProblems({ service: "redirect", listen: "127.0.0.1:7120", ...keys });
      assert.ok(found.some((line) => expected.test(line)), `${expected} not in ${found}`);
    });
  }
  const bad = await checkConfig(listenerToml({ service: "redirect", listen: "127.0.0.1:7120" }));
  assert.equal(bad.code, 78, bad.stderr);
  const result = await checkConfig(
    listenerToml({ service: "redirect", listen: ":7120", target: "backend.internal:80" }),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /target=backend\.internal:80 connect_timeout=5s/);
});

Deno.test("redirect: the banner goes to the client before the relay starts", async () => {
  await using target = new TargetServer();
  const serving = (async () => {
    const peer = await target.accepted;
    await writeAll(peer, encoder.encode("from target"));
    await peer.closeWrite();
    await readToEnd(peer);
  })();
  await using server = await redirectTo(target.port, { banner: "relay> " });
  using conn = await connect(server);
  assert.equal(decoder.decode(await readBytes(conn, 7)), "relay> ");
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "from target");
  await serving;
});
