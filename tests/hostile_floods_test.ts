/**
 * Floods against a real daemon subprocess: a TCP connection flood against
 * `max_connections` (exactly that many held and served, the rest closed at
 * once, descriptors back to baseline), and a UDP flood on chat and time
 * during which a probe is answered in every window and after which RSS is
 * bounded. `SWITCHBOARD_HOSTILE=long` runs them ten times bigger.
 *
 * @module
 */

import assert from "node:assert/strict";
import { listenerToml, readBytes, spawnDaemon, tempConfig } from "./_helpers.ts";
import { fdCount, reaches, rssKiB, scaled, settle, steady, within } from "./_hostile.ts";

const encoder = new TextEncoder();
const FLOODER = new URL("./testdata/udp_flood.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

async function echoes(conn: Deno.Conn, text: string): Promise<boolean> {
  try {
    await conn.write(encoder.encode(text));
    return decoder.decode(await readBytes(conn, text.length, 3000)) === text;
  } catch {
    return false;
  }
}

/** Resolves true when the peer closes (end of stream or reset) within `ms`. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const reading = conn.read(new Uint8Array(16)).then((n) => n === null, () => true);
  const closed = await within(reading, ms);
  return closed === true;
}

Deno.test("a connection flood against max_connections: that many served, the rest closed at once, fds back", async () => {
  const max = scaled(50);
  const flood = scaled(400);
  await using config = await tempConfig(
    listenerToml({
      name: "echo",
      service: "echo",
      listen: "127.0.0.1:0",
      max_connections: max,
      idle_timeout: "1m",
    }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const pid = daemon.child.pid;
  const port = daemon.port("echo");
  // One served connection first: whatever a first connection sets up lazily is then part of the baseline.
  {
    using warm = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.ok(await echoes(warm, "warm"));
  }
  const baseline = await steady(() => fdCount(pid), { timeoutMs: 2000 });

  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < max; i++) held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const served = await Promise.all(held.map((conn, i) => echoes(conn, `held ${i}`)));
    assert.equal(served.filter(Boolean).length, max, "every held connection is served");

    let refused = 0;
    for (let batch = 0; batch < flood; batch += 100) {
      const conns = await Promise.all(
        Array.from(
          { length: Math.min(100, flood - batch) },
          () => Deno.connect({ hostname: "127.0.0.1", port }),
        ),
      );
      const closed = await Promise.all(conns.map((conn) => closedWithin(conn, 3000)));
      refused += closed.filter(Boolean).length;
      for (const conn of conns) conn.close();
    }
    assert.equal(refused, flood, "every connection over the limit is closed at once");
    // The held ones never noticed.
    const still = await Promise.all(held.map((conn, i) => echoes(conn, `still ${i}`)));
    assert.equal(still.filter(Boolean).length, max);
  } finally {
    for (const conn of held) conn.close();
  }
  // Their slots are free again: a probe is served.
  const probeServed = await (async () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      using probe = await Deno.connect({ hostname: "127.0.0.1", port });
      if (await echoes(probe, "probe")) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  })();
  assert.ok(probeServed, "a probe is served once the held connections are gone");
  const after = await reaches(() => fdCount(pid), baseline);
  assert.equal(after, baseline, `fds: ${baseline} before, ${after} after`);
  assert.ok(
    daemon.lines.some((l) => l.includes(`max_connections (${max}) reached`)),
    "the refusals are logged",
  );
  const refusalLines = daemon.lines.filter((l) => l.includes("max_connections")).length;
  assert.ok(refusalLines < flood / 4, `refusals are throttled in the log (${refusalLines} lines)`);
  console.log(`held ${max}, refused ${flood} at once, fds ${baseline} → ${after}`);
});

Deno.test("a UDP flood on chat and time: a probe is answered in every window and RSS stays bounded", async () => {
  const seconds = scaled(4);
  await using config = await tempConfig(
    listenerToml({ name: "chat", service: "chat", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "time", service: "time", listen: "127.0.0.1:0" }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const pid = daemon.child.pid;
  const chatPort = daemon.port("chat");
  const timePort = daemon.port("time");
  // A first short flood grows the heap to what flood traffic needs: the
  // bound is on growth under a sustained flood, not on a fresh daemon's.
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", FLOODER, "1", String(timePort), String(chatPort)],
    stdout: "null",
  }).output();
  const before = await settle(pid);
  let sent = 0;

  const probe = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const chatProbe = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const to = (port: number): Deno.NetAddr => ({ transport: "udp", hostname: "127.0.0.1", port });
  await chatProbe.send(new Uint8Array(0), to(chatPort));
  const flooder = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", FLOODER, String(seconds), String(timePort), String(chatPort)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const flooded = flooder.output();
  const started = performance.now();
  // Replies are collected by time; probes go out every 50 ms all along (under
  // a flood the kernel drops datagrams, probes included: each window has many).
  const answers = { time: [] as number[], chat: [] as number[] };
  const collect = async (socket: Deno.DatagramConn, kind: "time" | "chat"): Promise<void> => {
    try {
      for (;;) {
        const [data] = await socket.receive();
        if (kind === "time" || decoder.decode(data).startsWith("* members:")) {
          answers[kind].push(performance.now() - started);
        }
      }
    } catch {
      // Closed at the end.
    }
  };
  const collecting = [collect(probe, "time"), collect(chatProbe, "chat")];
  const windows: string[] = [];
  try {
    while (performance.now() - started < seconds * 1000) {
      await probe.send(new Uint8Array(0), to(timePort));
      await chatProbe.send(encoder.encode("/who"), to(chatPort));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let window = 0; window < seconds; window++) {
      const inWindow = (t: number): boolean => t >= window * 1000 && t < (window + 1) * 1000;
      windows.push(
        `${answers.time.some(inWindow) ? "T" : "-"}${answers.chat.some(inWindow) ? "C" : "-"}`,
      );
    }
  } finally {
    const output = await flooded;
    sent = Number(new TextDecoder().decode(output.stdout).trim());
    probe.close();
    chatProbe.close();
    await Promise.all(collecting);
  }
  const rate = Math.round(sent / seconds);
  const after = await settle(pid);
  assert.deepEqual(windows, windows.map(() => "TC"), `answered per 1 s window (T time, C chat)`);
  assert.ok(sent > 0, "the flooder sent");
  assert.ok(after - before < 32 * 1024, `RSS ${before} KiB before, ${after} KiB after`);
  assert.ok(rssKiB(pid) > 0, "the daemon is still running");
  console.log(`UDP flood: ${sent} datagrams (~${rate}/s), RSS ${before} → ${after} KiB`);
});
