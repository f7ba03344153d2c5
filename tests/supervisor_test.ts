import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { defineService, type Service } from "../lib/service.ts";
import { StartFailure, Supervisor } from "../lib/supervisor.ts";
import { TcpListener } from "../lib/tcp_listener.ts";
import { isReflectionPort } from "../lib/udp_listener.ts";
import { SERVICES } from "../handlers/mod.ts";
import {
  captureLog,
  listenerToml,
  readBytes,
  readToEnd,
  spawnDaemon,
  startServer,
  tempConfig,
  udpReceive,
  udpRequest,
  waitFor,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A service for supervisor tests: the first byte picks a behaviour.
 * `s` works for 300 ms (busy) then answers "done"; `t` throws; `h` hangs
 * busy until its connection closes; anything else is echoed once.
 */
const probe: Service = defineService<Record<string, never>>({
  name: "probe",
  transports: ["tcp"],
  defaultPort: 9,
  parseOptions: () => ({}),
  open: () => ({
    stream: async (conn, context) => {
      const buffer = new Uint8Array(64);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return;
        const command = String.fromCharCode(buffer[0]!);
        if (command === "t") throw new Error("probe handler failure");
        context.setBusy(true);
        if (command === "s") {
          await new Promise((resolve) => setTimeout(resolve, 300));
          await conn.writeAll(encoder.encode("done"));
        } else if (command === "h") {
          await conn.read(buffer); // hangs until closed
          return;
        } else {
          await conn.writeAll(buffer.subarray(0, n));
        }
        context.setBusy(false);
      }
    },
  }),
});
const services = [...SERVICES, probe];

async function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname, port });
}

async function roundTrip(conn: Deno.Conn, text: string): Promise<string> {
  const data = encoder.encode(text);
  await conn.write(data);
  return decoder.decode(await readBytes(conn, data.length));
}

Deno.test("echo returns arbitrary bytes over TCP, including non-UTF-8", async () => {
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  );
  using conn = await connect(server.port("e"));
  const garbage = new Uint8Array(100_000).map((_, i) => (i * 7919) % 256);
  const reading = readBytes(conn, garbage.length);
  await conn.write(garbage);
  assert.deepEqual(await reading, garbage);
});

Deno.test("echo upper-cases ASCII letters only, even with UTF-8 split across writes", async () => {
  await using server = await startServer(
    listenerToml({ name: "u", service: "echo", listen: "127.0.0.1:0", transform: "upper" }),
  );
  using conn = await connect(server.port("u"));
  const text = encoder.encode("abc ünï 中文 xyz\n");
  const reading = readBytes(conn, text.length);
  // Split inside the two-byte "ü" and the three-byte "中".
  for (const part of [text.subarray(0, 5), text.subarray(5, 12), text.subarray(12)]) {
    await conn.write(part);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(decoder.decode(await reading), "ABC üNï 中文 XYZ\n");
});

Deno.test("echo half-closed by the client flushes and closes", async () => {
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  );
  using conn = await connect(server.port("e"));
  await conn.write(encoder.encode("last words"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "last words");
});

Deno.test("UDP echo answers the sender only, with the whole datagram up to 65,507 bytes", async () => {
  await using server = await startServer(
    listenerToml({
      name: "u",
      service: "echo",
      transport: "udp",
      listen: "127.0.0.1:0",
      transform: "upper",
    }),
  );
  const port = server.port("u");
  assert.equal(
    decoder.decode((await udpRequest(port, encoder.encode("hello, wörld")))!),
    "HELLO, WöRLD",
  );
  const largest = new Uint8Array(65_507).fill(0x61);
  const reply = await udpRequest(port, largest);
  assert.equal(reply!.length, 65_507);
  assert.ok(reply!.every((byte) => byte === 0x41));
  const empty = await udpRequest(port, new Uint8Array(0));
  assert.equal(empty!.length, 0);
});

Deno.test("datagrams from reflecting source ports are ignored", async () => {
  for (const port of [0, 7, 13, 19, 37]) assert.equal(isReflectionPort(port), true);
  for (const port of [1, 8, 1024, 53000]) assert.equal(isReflectionPort(port), false);
  await using server = await startServer(
    listenerToml({ name: "u", service: "echo", transport: "udp", listen: "127.0.0.1:0" }),
  );
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port("u") };
  // Binding ports below 1024 needs root; CI runs as root, so this is exercised there.
  let socket: Deno.DatagramConn | undefined;
  for (const port of [7, 13, 19, 37]) {
    try {
      socket = Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" });
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  assert.ok(socket, "no reflecting port was free to test with");
  try {
    await socket.send(encoder.encode("ping"), target);
    assert.equal(await udpReceive(socket, 300), null);
  } finally {
    socket.close();
  }
  await waitFor(() => server.supervisor.listeners[0]!.stats.dropped === 1);
});

Deno.test("the connection over max_connections is closed at once, counted and logged", async () => {
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0", max_connections: 2 }),
  );
  const port = server.port("e");
  using first = await connect(port);
  using second = await connect(port);
  assert.equal(await roundTrip(first, "1"), "1");
  assert.equal(await roundTrip(second, "2"), "2");
  using third = await connect(port);
  await third.write(encoder.encode("3")).catch(() => 0);
  assert.equal((await readToEnd(third, 2000)).length, 0);
  assert.equal(server.supervisor.listeners[0]!.stats.refused, 1);
  assert.ok(server.lines.some((l) => l.includes("max_connections (2) reached")));
  assert.equal(await roundTrip(first, "still fine"), "still fine");
  first.close();
  await waitFor(() => server.supervisor.listeners[0]!.stats.active === 1);
  using fourth = await connect(port);
  assert.equal(await roundTrip(fourth, "4"), "4");
});

Deno.test("denied peers are closed before the handler sees a byte, and logged", async () => {
  await using server = await startServer(
    listenerToml({ name: "d", service: "probe", listen: "127.0.0.1:0", deny: ["127.0.0.0/8"] }) +
      listenerToml({ name: "a", service: "probe", listen: "127.0.0.1:0", allow: ["10.0.0.0/8"] }) +
      listenerToml({
        name: "ok",
        service: "probe",
        listen: "127.0.0.1:0",
        allow: ["127.0.0.1"],
        deny: ["127.0.0.2"],
      }),
    { services },
  );
  for (const name of ["d", "a"]) {
    using conn = await connect(server.port(name));
    await conn.write(encoder.encode("t")).catch(() => 0);
    assert.equal((await readToEnd(conn, 2000)).length, 0, name);
  }
  using allowed = await connect(server.port("ok"));
  assert.equal(await roundTrip(allowed, "x"), "x");
  assert.equal(server.lines.filter((l) => l.includes("denied by access rules")).length, 2);
  assert.ok(!server.lines.some((l) => l.includes("probe handler failure")));
});

Deno.test("UDP access rules drop datagrams silently", async () => {
  await using server = await startServer(
    listenerToml({
      name: "u",
      service: "echo",
      transport: "udp",
      listen: "127.0.0.1:0",
      deny: ["127.0.0.1"],
    }),
  );
  assert.equal(await udpRequest(server.port("u"), encoder.encode("x"), { timeoutMs: 300 }), null);
  assert.equal(server.supervisor.listeners[0]!.stats.denied, 1);
});

Deno.test("dual-stack listeners see IPv4 peers as plain IPv4 for rules and logs", async () => {
  await using server = await startServer(
    listenerToml({ name: "any", service: "echo", listen: "[::]:0", allow: ["127.0.0.1"] }),
  );
  using conn = await connect(server.port("any"));
  assert.equal(await roundTrip(conn, "v4"), "v4");
  conn.close();
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")));
  assert.ok(server.lines.some((l) => /peer=127\.0\.0\.1:\d+/.test(l)), server.lines.join("\n"));
});

Deno.test("IPv6 loopback works", async () => {
  await using server = await startServer(
    listenerToml({ name: "six", service: "echo", listen: "[::1]:0" }),
  );
  using conn = await connect(server.port("six"), "::1");
  assert.equal(await roundTrip(conn, "over v6"), "over v6");
});

Deno.test("an idle connection is closed after idle_timeout; an active one is not", async () => {
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0", idle_timeout: "300ms" }),
  );
  const port = server.port("e");
  using idle = await connect(port);
  using active = await connect(port);
  const started = performance.now();
  const idleClosed = readToEnd(idle, 5000).then(() => performance.now() - started);
  for (let i = 0; i < 8; i++) {
    assert.equal(await roundTrip(active, `${i}`), `${i}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const idleMs = await idleClosed;
  assert.ok(idleMs >= 290 && idleMs < 2000, `idle closed after ${idleMs}ms`);
  assert.equal(await roundTrip(active, "alive"), "alive");
});

Deno.test("a busy connection is never cut by the idle timeout", async () => {
  await using server = await startServer(
    listenerToml({ name: "p", service: "probe", listen: "127.0.0.1:0", idle_timeout: "100ms" }),
    { services },
  );
  using conn = await connect(server.port("p"));
  await conn.write(encoder.encode("s"));
  assert.equal(decoder.decode(await readBytes(conn, 4)), "done");
});

Deno.test("a handler's exception or a client's reset affects no other connection", async () => {
  await using server = await startServer(
    listenerToml({ name: "p", service: "probe", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
    { services },
  );
  using bystander = await connect(server.port("e"));
  assert.equal(await roundTrip(bystander, "before"), "before");
  using thrower = await connect(server.port("p"));
  await thrower.write(encoder.encode("t"));
  assert.equal((await readToEnd(thrower)).length, 0);
  await waitFor(() =>
    server.lines.some((l) => l.includes("Handler failed: Error: probe handler failure"))
  );
  // Reset: send much more than is read back, then close with unread data.
  const resetter = await connect(server.port("e"));
  await resetter.write(new Uint8Array(4 * 1024 * 1024)).catch(() => 0);
  resetter.close();
  assert.equal(await roundTrip(bystander, "after"), "after");
  using fresh = await connect(server.port("p"));
  assert.equal(await roundTrip(fresh, "x"), "x");
  assert.ok(!server.lines.some((l) => l.includes("WARN") && l.includes("listener=e ")));
});

Deno.test("graceful stop closes idle connections at once and lets busy ones finish", async () => {
  const server = await startServer(
    listenerToml({ name: "p", service: "probe", listen: "127.0.0.1:0" }),
    {
      services,
    },
  );
  const port = server.port("p");
  using idle = await connect(port);
  assert.equal(await roundTrip(idle, "x"), "x");
  using busy = await connect(port);
  await busy.write(encoder.encode("s"));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const stopping = server.supervisor.shutdown(5000);
  assert.equal((await readToEnd(idle, 2000)).length, 0, "idle connection closed");
  await assert.rejects(() => connect(port), Deno.errors.ConnectionRefused);
  assert.equal(decoder.decode(await readToEnd(busy, 3000)), "done");
  await stopping;
});

Deno.test("graceful stop serves a flowing echo stream until it pauses, losing nothing", async () => {
  const server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  );
  using conn = await connect(server.port("e"));
  const chunk = new Uint8Array(4096).fill(0x61);
  let sent = 0;
  let received = 0;
  const reading = (async () => {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      received += n;
    }
  })();
  let stopping: Promise<void> | undefined;
  const started = performance.now();
  // Keep sending through the stop (bounded: 600 ms), a little at a time.
  while (performance.now() - started < 600) {
    if (!stopping && performance.now() - started > 100) {
      stopping = server.supervisor.shutdown(5000);
    }
    sent += await conn.write(chunk);
    if (sent - received > 256 * 1024) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await waitFor(() => received === sent, 3000).catch(() => {});
  assert.equal(received, sent, "every byte sent during the stop came back");
  // Now quiet, the connection is closed by the stopping daemon.
  await reading.catch(() => {});
  const stoppedAfter = performance.now() - started;
  await stopping;
  assert.ok(stoppedAfter < 4000, `closed once quiet, ${Math.round(stoppedAfter)} ms`);
});

Deno.test("graceful stop force-closes work that outlives shutdown_timeout", async () => {
  const server = await startServer(
    listenerToml({ name: "p", service: "probe", listen: "127.0.0.1:0" }),
    {
      services,
    },
  );
  using hung = await connect(server.port("p"));
  await hung.write(encoder.encode("h"));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = performance.now();
  await server.supervisor.shutdown(200);
  const took = performance.now() - started;
  assert.ok(took >= 190 && took < 3000, `shutdown took ${took}ms`);
  assert.equal((await readToEnd(hung, 2000)).length, 0);
  assert.ok(server.lines.some((l) => l.includes("Shutdown timeout: closing 1 busy connection")));
});

Deno.test("a port that cannot be bound fails the start and leaves nothing bound", async () => {
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = blocker.addr.port;
  const config = parseConfig(
    listenerToml({ name: "free", service: "echo", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "clash", service: "echo", listen: `127.0.0.1:${taken}` }) +
      listenerToml({ name: "udp", service: "echo", transport: "udp", listen: "127.0.0.1:0" }),
    "test.toml",
    { services: SERVICES },
  );
  const { log } = captureLog();
  const supervisor = new Supervisor({ log, services: SERVICES });
  const error = await supervisor.apply(config).then(() => undefined, (e) => e);
  assert.ok(error instanceof StartFailure);
  assert.equal(error.failures.length, 1);
  assert.equal(error.failures[0]!.phase, "bind");
  assert.equal(error.failures[0]!.listener, "clash");
  assert.match(
    error.failures[0]!.message,
    new RegExp(`"clash" cannot bind 127\\.0\\.0\\.1:${taken}/tcp: AddrInUse`),
  );
  assert.equal(supervisor.listeners.length, 0);
  await supervisor.shutdown(100);
});

Deno.test("reload keeps unchanged listeners and their connections, swaps changed ones in place", async () => {
  const { log, lines } = captureLog();
  const supervisor = new Supervisor({ log, services: SERVICES });
  const base = (transform: string, extra = ""): string =>
    listenerToml({ name: "kept", service: "echo", listen: "127.0.0.1:0" }) +
    listenerToml({ name: "changed", service: "echo", listen: "127.0.0.1:0", transform }) +
    extra;
  try {
    await supervisor.apply(
      parseConfig(
        base("none", listenerToml({ name: "gone", service: "echo", listen: "127.0.0.1:0" })),
        "a.toml",
        { services: SERVICES },
      ),
    );
    const port = (name: string): number =>
      supervisor.listeners.find((l) => l.name === name)!.addr.port;
    const [keptPort, changedPort, gonePort] = [port("kept"), port("changed"), port("gone")];
    using keptConn = await connect(keptPort);
    using oldChanged = await connect(changedPort);
    assert.equal(await roundTrip(oldChanged, "a"), "a");

    const summary = await supervisor.apply(parseConfig(
      base("upper", listenerToml({ name: "added", service: "echo", listen: "127.0.0.1:0" })),
      "b.toml",
      { services: SERVICES },
    ));
    assert.deepEqual(summary, {
      added: ["added"],
      changed: ["changed"],
      kept: ["kept"],
      removed: ["gone"],
    });
    assert.equal(port("kept"), keptPort);
    assert.equal(port("changed"), changedPort, "socket kept");
    assert.equal(await roundTrip(keptConn, "still here"), "still here");
    assert.equal(await roundTrip(oldChanged, "b"), "b", "old connection keeps old settings");
    using newChanged = await connect(changedPort);
    assert.equal(await roundTrip(newChanged, "c"), "C", "new connection gets new settings");
    await waitFor(() => lines.some((l) => l.includes("Listener removed")));
    await assert.rejects(() => connect(gonePort), Deno.errors.ConnectionRefused);
    using added = await connect(port("added"));
    assert.equal(await roundTrip(added, "d"), "d");
  } finally {
    await supervisor.shutdown(1000);
  }
});

Deno.test("a reload that cannot start rolls back and changes nothing", async () => {
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { log } = captureLog();
  const supervisor = new Supervisor({ log, services: SERVICES });
  try {
    await supervisor.apply(
      parseConfig(listenerToml({ name: "a", service: "echo", listen: "127.0.0.1:0" }), "a.toml", {
        services: SERVICES,
      }),
    );
    const before = supervisor.listeners.map((l) => `${l.name}:${l.addr.port}`);
    using conn = await connect(supervisor.listeners[0]!.addr.port);
    const next = parseConfig(
      listenerToml({ name: "a", service: "echo", listen: "127.0.0.1:0", transform: "upper" }) +
        listenerToml({ name: "b", service: "echo", listen: "127.0.0.1:0" }) +
        listenerToml({ name: "c", service: "echo", listen: `127.0.0.1:${blocker.addr.port}` }),
      "b.toml",
      { services: SERVICES },
    );
    await assert.rejects(() => supervisor.apply(next), StartFailure);
    assert.deepEqual(supervisor.listeners.map((l) => `${l.name}:${l.addr.port}`), before);
    assert.equal(await roundTrip(conn, "same"), "same");
    using fresh = await connect(supervisor.listeners[0]!.addr.port);
    assert.equal(await roundTrip(fresh, "lower"), "lower", "settings unchanged");
  } finally {
    await supervisor.shutdown(1000);
  }
});

Deno.test("accept errors never end the accept loop: resets are skipped, others back off", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Deno 2.9.6 reports a connection reset before accept as NotConnected (os error 107).
  const failures: Error[] = [
    new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)"),
    new Error("Too many open files (os error 24)"),
  ];
  const flaky = {
    accept: (): Promise<Deno.TcpConn> => {
      const failure = failures.shift();
      return failure ? Promise.reject(failure) : real.accept();
    },
    close: () => real.close(),
    get addr() {
      return real.addr;
    },
  } as unknown as Deno.TcpListener;
  const { log, lines } = captureLog();
  const config = parseConfig(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
    "t.toml",
    { services: SERVICES },
  )
    .listeners[0]!;
  const echo = await SERVICES[0]!.open(config.options, {} as never);
  const running = new TcpListener(flaky, config, echo, log);
  try {
    using conn = await connect(real.addr.port);
    assert.equal(await roundTrip(conn, "survived"), "survived");
    assert.equal(failures.length, 0);
    assert.ok(
      lines.some((l) => l.includes("Accept failed, retrying in 5ms: Error: Too many open files")),
    );
    assert.ok(
      !lines.some((l) => l.includes("NotConnected")),
      "a reset before accept is not worth a warning",
    );
  } finally {
    await running.stop(performance.now() + 1000);
  }
});

Deno.test("journald mode prefixes priorities and drops timestamps", async () => {
  await using config = await tempConfig(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  );
  await using daemon = await spawnDaemon(["-c", config.path], {
    env: { JOURNAL_STREAM: "8:1234" },
  });
  daemon.child.kill("SIGTERM");
  await daemon.exit();
  assert.ok(daemon.lines.length >= 3);
  for (const line of daemon.lines) assert.match(line, /^<[3-7]>(ERROR|WARN |INFO |DEBUG) /);
});
