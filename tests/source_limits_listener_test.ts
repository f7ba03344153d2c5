import assert from "node:assert/strict";
import { connect } from "node:net";
import { NodeStreamConn } from "../lib/node_stream_conn.ts";
import {
  readBytes,
  spawnDaemon,
  startServer,
  tempConfig,
  udpReceive,
  waitFor,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A TCP connection from a chosen loopback address (Deno.connect cannot bind one). */
function connectFrom(
  localAddress: string,
  port: number,
  host = "127.0.0.1",
): Promise<NodeStreamConn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress }, () => {
      socket.off("error", reject);
      resolve(new NodeStreamConn(socket));
    });
    socket.once("error", reject);
  });
}

/** Whether the server serves the connection (echoes) or closed it at once. */
async function served(conn: NodeStreamConn): Promise<boolean> {
  try {
    await conn.write(encoder.encode("ping\n"));
    return decoder.decode(await readBytes(conn, 5, 3000)) === "ping\n";
  } catch {
    return false;
  }
}

function echo(keys: string, listen = "127.0.0.1:0", transport = "tcp"): string {
  return `[[listener]]
name = "echo"
service = "echo"
transport = "${transport}"
listen = "${listen}"
${keys}
`;
}

Deno.test("limits: max_per_source holds per source address; other sources are served", async () => {
  await using server = await startServer(echo("max_per_source = 2"));
  const port = server.port("echo");
  using a1 = await connectFrom("127.0.0.2", port);
  using a2 = await connectFrom("127.0.0.2", port);
  assert.ok(await served(a1));
  assert.ok(await served(a2));
  using a3 = await connectFrom("127.0.0.2", port);
  assert.equal(await served(a3), false, "the third from 127.0.0.2 is closed");
  using b1 = await connectFrom("127.0.0.3", port);
  assert.ok(await served(b1), "127.0.0.3 is not affected");
  a1.close();
  await waitFor(() => server.supervisor.listeners[0]!.stats.active === 2);
  using a4 = await connectFrom("127.0.0.2", port);
  assert.ok(await served(a4), "a slot freed is a slot again");
  const stats = server.supervisor.listeners[0]!.stats;
  assert.equal(stats.limited?.max_per_source, 1);
  assert.equal(stats.limited?.rate, 0);
  assert.ok(server.lines.some((l) => /max_per_source \(2\) reached.* source=127\.0\.0\.2/.test(l)));
});

Deno.test("limits: rate and burst refuse new connections per source, at once, and log once", async () => {
  await using server = await startServer(echo('rate = "1/m"\nburst = 2'));
  const port = server.port("echo");
  const results: boolean[] = [];
  for (let i = 0; i < 6; i++) {
    using conn = await connectFrom("127.0.0.4", port);
    results.push(await served(conn));
  }
  assert.deepEqual(results, [true, true, false, false, false, false]);
  using other = await connectFrom("127.0.0.5", port);
  assert.ok(await served(other), "the service is never switched off as a whole");
  assert.equal(server.supervisor.listeners[0]!.stats.limited?.rate, 4);
  const lines = server.lines.filter((l) => /Connection refused: rate/.test(l));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /rate \(1\/m, burst 2\) exceeded.* source=127\.0\.0\.4/);
});

Deno.test("limits: a UDP rate drops a source's excess datagrams; others are answered", async () => {
  await using server = await startServer(echo('rate = "1/m"\nburst = 2', "127.0.0.1:0", "udp"));
  const port = server.port("echo");
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
  const greedy = Deno.listenDatagram({ hostname: "127.0.0.6", port: 0, transport: "udp" });
  const polite = Deno.listenDatagram({ hostname: "127.0.0.7", port: 0, transport: "udp" });
  try {
    for (let i = 0; i < 5; i++) await greedy.send(encoder.encode(`g${i}`), to);
    const replies: string[] = [];
    for (let reply = await udpReceive(greedy, 500); reply; reply = await udpReceive(greedy, 300)) {
      replies.push(decoder.decode(reply));
    }
    assert.deepEqual(replies, ["g0", "g1"]);
    await polite.send(encoder.encode("p"), to);
    assert.equal(decoder.decode((await udpReceive(polite, 2000))!), "p");
    const stats = server.supervisor.listeners[0]!.stats;
    assert.equal(stats.limited?.rate, 3);
    assert.equal(stats.dropped, 3);
    assert.equal(stats.sources, 2);
    assert.equal(server.lines.filter((l) => /Datagrams dropped: rate/.test(l)).length, 1);
  } finally {
    greedy.close();
    polite.close();
  }
});

Deno.test("limits: on ::1 and on a dual-stack listener (IPv4-mapped counts as IPv4)", async () => {
  await using v6 = await startServer(echo("max_per_source = 1", "[::1]:0"));
  using first = await connectFrom("::1", v6.port("echo"), "::1");
  assert.ok(await served(first));
  using second = await connectFrom("::1", v6.port("echo"), "::1");
  assert.equal(await served(second), false);
  assert.ok(v6.lines.some((l) => /max_per_source \(1\) reached.* source=::\/64/.test(l)));

  await using dual = await startServer(echo("max_per_source = 1", ":0"));
  using mapped = await connectFrom("127.0.0.8", dual.port("echo"));
  assert.ok(await served(mapped));
  using again = await connectFrom("127.0.0.8", dual.port("echo"));
  assert.equal(await served(again), false);
  assert.ok(dual.lines.some((l) => /reached.* peer=127\.0\.0\.8:\d+ source=127\.0\.0\.8 /.test(l)));
  using ipv6 = await connectFrom("::1", dual.port("echo"), "::1");
  assert.ok(await served(ipv6));
});

Deno.test("limits: a flood from 110,000 source addresses cannot grow the source table past 100,000", async () => {
  await using config = await tempConfig(`[daemon]
metrics = "127.0.0.1:0"
[[listener]]
name = "echo"
service = "echo"
transport = "udp"
listen = "127.0.0.1:0"
rate = "1/h"
`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const port = daemon.port("echo");
  const metrics = Number(
    /Metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(
      await daemon.waitForLine(/Metrics on/),
    )![1],
  );
  const rss = async (): Promise<number> =>
    Number(
      /VmRSS:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${daemon.child.pid}/status`))![1],
    );
  const table = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    return Number(/^switchboard_limit_sources\{listener="echo"[^}]*\} (\d+)$/m.exec(text)![1]);
  };
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
  const payload = encoder.encode("x");
  const send = async (from: number, count: number): Promise<void> => {
    for (let i = from; i < from + count; i++) {
      // 127.1.0.0 upwards: each datagram from an address never seen before.
      const hostname = `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
      const socket = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
      try {
        await socket.send(payload, to);
      } finally {
        socket.close();
      }
    }
  };
  await send(0, 2000);
  await waitFor(() => true);
  const before = await rss();
  await send(2000, 108_000);
  // Wait until the daemon has taken every datagram in (the table stops growing or is full).
  let size = 0;
  for (let i = 0; i < 100; i++) {
    const now = await table();
    if (now === size && now > 0) break;
    size = now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  size = await table();
  const after = await rss();
  assert.ok(size <= 100_000, `table holds ${size}`);
  assert.ok(size >= 90_000, `the flood reached the daemon (${size})`);
  // About 200 bytes per source: the bound is tens of MiB, whatever the flood.
  assert.ok(after - before < 96 * 1024, `RSS grew by ${after - before} kB`);
  // Still serving: a new source is answered.
  const probe = Deno.listenDatagram({ hostname: "127.0.0.9", port: 0, transport: "udp" });
  try {
    await probe.send(encoder.encode("probe"), to);
    assert.equal(decoder.decode((await udpReceive(probe, 3000))!), "probe");
  } finally {
    probe.close();
  }
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});
