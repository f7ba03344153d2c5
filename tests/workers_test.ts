/**
 * `[daemon] workers`: real daemons with worker processes on loopback. The
 * workers exist, share each port, hold the limits together, follow reloads
 * and stops, leave nothing behind, are replaced when they die, and their
 * counters are summed.
 */

import assert from "node:assert/strict";
import type { TLSSocket } from "node:tls";
import { connectTls } from "../cli/tls_client.ts";
import type { NodeStreamConn } from "../lib/node_stream_conn.ts";
import { makeCert } from "./_tls_helpers.ts";
import {
  BUILT,
  checkConfig,
  type Daemon,
  readBytes,
  spawnDaemon,
  tempConfig,
  waitFor,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function stat(pid: number): { state: string; ppid: number; cmdline: string } | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
    return { state: fields[0]!, ppid: Number(fields[1]), cmdline };
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (an unreaped zombie counts as gone). */
function alive(pid: number): boolean {
  const found = stat(pid);
  return found !== undefined && found.state !== "Z";
}

/** The daemon's worker processes: its children running `serve`. */
function workerPids(daemon: Daemon): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const found = stat(pid);
    if (
      found?.ppid === daemon.child.pid && found.state !== "Z" && found.cmdline.includes("serve")
    ) {
      pids.push(pid);
    }
  }
  return pids.sort((a, b) => a - b);
}

/** Which workers logged a closed connection of `listener` (their numbers). */
function servingWorkers(daemon: Daemon, listener: string): Set<string> {
  const numbers = new Set<string>();
  for (const line of daemon.lines) {
    const match = / worker=(\d+)$/.exec(line);
    if (match && line.includes("Connection closed") && line.includes(`listener=${listener} `)) {
      numbers.add(match[1]!);
    }
  }
  return numbers;
}

/** Sends a line to an echo listener; true when it came back, false when the connection was closed. */
async function echoes(conn: Deno.Conn, text = "hi\n"): Promise<boolean> {
  await conn.write(encoder.encode(text)).catch(() => 0);
  const back = await readBytes(conn, text.length, 5000).catch(() => new Uint8Array());
  return decoder.decode(back) === text;
}

/** Opens `count` connections (kept in `conns`) and says which echoed a line. */
async function openEchoes(port: number, count: number, conns: Deno.Conn[]): Promise<boolean[]> {
  const results: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(conn);
    results.push(await echoes(conn));
  }
  return results;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function workerDaemon(
  body: string,
  run: (daemon: Daemon, path: string) => Promise<void>,
): Promise<void> {
  await using config = await tempConfig(`[daemon]\nworkers = 2\n${body}`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  await run(daemon, config.path);
}

const ECHO = `
[[listener]]
name = "echo"
service = "echo"
listen = "127.0.0.1:0"
`;

/** The echo listener with `max_connections = max` (and any more lines). */
function limitedEcho(max: number, more = ""): string {
  return `${ECHO}max_connections = ${max}\n${more}`;
}

/**
 * Runs `run` on a daemon with 2 workers serving {@linkcode limitedEcho},
 * once both workers listen.
 */
async function echoWorkers(
  max: number,
  run: (daemon: Daemon, port: number, path: string) => Promise<void>,
): Promise<void> {
  await workerDaemon(limitedEcho(max), async (daemon, path) => {
    const port = daemon.port("echo");
    await waitFor(() => daemon.lines.filter((l) => /Listening on .*worker=/.test(l)).length === 2);
    await run(daemon, port, path);
  });
}

Deno.test("workers = 2 runs two worker processes that share the port and both serve", async () => {
  await workerDaemon(ECHO, async (daemon) => {
    await waitFor(() => workerPids(daemon).length === 2, 10_000);
    const port = daemon.port("echo");
    // Each worker logs its own "Listening on" line, on the one port.
    const ports = daemon.lines.filter((l) => /Listening on .*listener=echo .*worker=\d$/.test(l))
      .map((l) => /:(\d+)\/tcp/.exec(l)![1]);
    assert.deepEqual(ports, [String(port), String(port)]);
    // The kernel spreads connections by their source port: some reach each worker.
    for (let i = 0; i < 64 && servingWorkers(daemon, "echo").size < 2; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      assert.ok(await echoes(conn));
      conn.close();
      await waitFor(() => daemon.lines.filter((l) => l.includes("Connection closed")).length > i);
    }
    assert.deepEqual([...servingWorkers(daemon, "echo")].sort(), ["1", "2"]);
  });
});

Deno.test("max_connections holds across workers, exactly", async () => {
  await echoWorkers(
    3,
    async (daemon, port) => {
      const conns: Deno.Conn[] = [];
      try {
        const results = await openEchoes(port, 10, conns);
        assert.equal(results.filter(Boolean).length, 3, `admitted: ${results}`);
        // One closed: one more is admitted, and no more.
        conns[results.indexOf(true)]!.close();
        conns.splice(results.indexOf(true), 1);
        await waitFor(() => daemon.lines.filter((l) => l.includes("Connection closed")).length > 0);
        let admitted = 0;
        for (let i = 0; i < 4; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(conn);
          if (await echoes(conn)) admitted++;
        }
        assert.equal(admitted, 1);
        assert.ok(daemon.lines.some((l) => l.includes("max_connections (3) reached")));
      } finally {
        closeAll(conns);
      }
    },
  );
});

Deno.test("max_connections holds exactly while workers serve from leased blocks of slots", async () => {
  await echoWorkers(
    40,
    async (daemon, port) => {
      const conns: Deno.Conn[] = [];
      try {
        // 30 served and closed leave both workers with spare leased slots.
        for (let i = 0; i < 30; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          assert.ok(await echoes(conn));
          conn.close();
        }
        const closed = () => daemon.lines.filter((l) => l.includes("Connection closed")).length;
        await waitFor(() => closed() === 30);
        // Each of the next 40 is served, whichever worker takes it: a worker
        // whose lease is used up gets the other's spare slots, revoked.
        const first = await openEchoes(port, 40, conns);
        assert.deepEqual(first.filter((ok) => !ok), []);
        let admitted = 0;
        for (let i = 0; i < 16; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(conn);
          if (await echoes(conn)) admitted++;
        }
        assert.equal(admitted, 0);
        const refusals = daemon.lines.filter((l) => l.includes("max_connections (40) reached"));
        assert.ok(refusals.length > 0);
      } finally {
        closeAll(conns);
      }
      await waitFor(() => daemon.lines.filter((l) => l.includes("Connection closed")).length >= 70);
      assert.deepEqual(
        [
          ...new Set(
            daemon.lines.filter((l) => l.includes("Connection closed")).map((l) =>
              / worker=(\d)$/.exec(l)?.[1]
            ),
          ),
        ].sort(),
        ["1", "2"],
      );
    },
  );
});

Deno.test("after a reload adds max_per_source, leased spare slots do not block connections", async () => {
  await echoWorkers(20, async (daemon, port, path) => {
    const closed = () => daemon.lines.filter((l) => l.includes("Connection closed")).length;
    // Served and closed: both workers keep spare slots of their leases.
    for (let i = 0; i < 30; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      assert.ok(await echoes(conn));
      conn.close();
    }
    await waitFor(() => closed() === 30);
    assert.deepEqual([...servingWorkers(daemon, "echo")].sort(), ["1", "2"]);
    await Deno.writeTextFile(
      path,
      `[daemon]\nworkers = 2\n${limitedEcho(20, "max_per_source = 100\n")}`,
    );
    daemon.child.kill("SIGHUP");
    await daemon.waitForLine(/INFO {2}Reloaded/);
    // Asked of the supervisor each time now: all 20 are served, whichever worker takes each.
    const conns: Deno.Conn[] = [];
    try {
      const served = await openEchoes(port, 20, conns);
      assert.equal(served.filter(Boolean).length, 20, `served: ${served}`);
      assert.deepEqual(await openEchoes(port, 1, conns), [false], "the 21st is refused");
    } finally {
      closeAll(conns);
    }
  });
});

Deno.test("max_concurrent holds across workers, exactly", async () => {
  await workerDaemon(
    `
[[listener]]
name = "run"
service = "exec"
listen = "127.0.0.1:0"
argv = ["/bin/sh", "-c", "echo started; sleep 30"]
max_concurrent = 2
eof_grace = "100ms"
`,
    async (daemon) => {
      const port = daemon.port("run");
      await waitFor(() =>
        daemon.lines.filter((l) => /Listening on .*worker=/.test(l)).length === 2
      );
      const conns: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 8; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        const replies = await Promise.all(
          conns.map(async (conn) => decoder.decode(await readBytes(conn, 8, 5000))),
        );
        assert.equal(replies.filter((r) => r === "started\n").length, 2, `${replies}`);
        assert.equal(replies.filter((r) => r === "").length, 6);
      } finally {
        closeAll(conns);
      }
    },
  );
});

Deno.test("a reload reaches every worker and keeps the port", async () => {
  await workerDaemon(ECHO, async (daemon, path) => {
    const port = daemon.port("echo");
    await waitFor(() => workerPids(daemon).length === 2, 10_000);
    const pids = workerPids(daemon);
    await Deno.writeTextFile(
      path,
      `[daemon]\nworkers = 2\n${
        ECHO.replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:0"\ntransform = "upper"`)
      }`,
    );
    daemon.child.kill("SIGHUP");
    await daemon.waitForLine(/INFO {2}Reloaded/);
    const changed = daemon.lines.filter((l) => l.includes("Settings changed; socket kept"));
    assert.deepEqual(changed.map((l) => / worker=(\d)$/.exec(l)?.[1]).sort(), ["1", "2"]);
    assert.deepEqual(workerPids(daemon), pids);
    // Whichever worker takes a connection, it serves the new settings on the old port.
    for (let i = 0; i < 16; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(encoder.encode("abc\n"));
      assert.equal(decoder.decode(await readBytes(conn, 4)), "ABC\n");
      conn.close();
    }
  });
});

Deno.test("TLS rotation reaches every worker", async () => {
  await using first = await makeCert({ name: "first" });
  await using second = await makeCert({ name: "second" });
  const toml = `[daemon]\nworkers = 2\n[[listener]]\nname = "tls"\nservice = "echo"\n` +
    `listen = "127.0.0.1:0"\ntls = { cert = "${first.cert}", key = "${first.key}" }\n`;
  await using config = await tempConfig(toml);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const port = daemon.port("tls");
  const tls = { caFile: `${config.dir}/bundle.pem`, insecure: false };
  await Deno.writeTextFile(tls.caFile, first.pem + second.pem);
  await Deno.copyFile(second.cert, first.cert);
  await Deno.copyFile(second.key, first.key);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/INFO {2}Reloaded/);
  const changed = daemon.lines.filter((l) => l.includes("Settings changed; socket kept"));
  assert.deepEqual(changed.map((l) => / worker=(\d)$/.exec(l)?.[1]).sort(), ["1", "2"]);
  for (let i = 0; i < 12; i++) {
    const conn = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;
    try {
      const seen = (conn.socket as TLSSocket).getPeerCertificate().fingerprint256;
      assert.equal(seen, second.fingerprint);
    } finally {
      conn.close();
    }
  }
});

// Handing systemd's sockets on takes FFI (fcntl): the offline executable
// serves them in the supervisor, as docs/workers.md says.
Deno.test("socket activation: a socket systemd passed is served by every worker (deno run)", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await using config = await tempConfig(
    `[daemon]\nworkers = 2\n[[listener]]\nname = "web"\nservice = "echo"\nlisten = "fd:web"\n`,
  );
  await using daemon = await spawnDaemon(["-c", config.path], {
    waitReady: false,
    wrapper: ["systemd-socket-activate", "-l", `127.0.0.1:${port}`, "--fdname=web"],
  });
  await daemon.waitForLine(/Listening on 127\.0\.0\.1:\d+ as 3/);
  // The first connection makes systemd-socket-activate start the daemon.
  const first = await Deno.connect({ hostname: "127.0.0.1", port });
  const served = echoes(first);
  await daemon.waitForLine(/switchboard \S+ ready/);
  assert.ok(await served);
  first.close();
  for (let i = 0; i < (BUILT ? 8 : 64) && servingWorkers(daemon, "web").size < 2; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.ok(await echoes(conn));
    conn.close();
    await waitFor(() => daemon.lines.filter((l) => l.includes("Connection closed")).length > i);
  }
  assert.deepEqual([...servingWorkers(daemon, "web")].sort(), BUILT ? [] : ["1", "2"]);
  assert.ok(!daemon.lines.some((l) => l.includes("is not used by any listener")));
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("SIGTERM stops every worker, and the supervisor exits after them", async () => {
  await using config = await tempConfig(`[daemon]\nworkers = 2\n${ECHO}`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  await waitFor(() => workerPids(daemon).length === 2, 10_000);
  const pids = workerPids(daemon);
  daemon.child.kill("SIGTERM");
  const status = await daemon.exit();
  assert.equal(status.code, 0);
  // Reaped by the supervisor before it exited: already gone, not orphaned.
  assert.deepEqual(pids.filter(alive), []);
  assert.ok(daemon.lines.some((l) => l.includes("INFO  Stopped")));
});

Deno.test("a SIGKILLed supervisor leaves no worker behind", async () => {
  await using config = await tempConfig(`[daemon]\nworkers = 2\n${ECHO}`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  await waitFor(() => workerPids(daemon).length === 2, 10_000);
  const pids = workerPids(daemon);
  daemon.child.kill("SIGKILL");
  await daemon.exit();
  await waitFor(() => pids.every((pid) => !alive(pid)), 10_000);
});

Deno.test("a worker that dies is logged and replaced", async () => {
  await workerDaemon(ECHO, async (daemon) => {
    const port = daemon.port("echo");
    await waitFor(() => workerPids(daemon).length === 2, 10_000);
    const [first] = workerPids(daemon);
    Deno.kill(first!, "SIGKILL");
    await daemon.waitForLine(/Worker \d exited \(killed by SIGKILL\); restarting it in \d+ms/);
    await daemon.waitForLine(/Worker \d restarted/, 15_000);
    await waitFor(() => workerPids(daemon).length === 2, 10_000);
    assert.ok(!workerPids(daemon).includes(first!));
    for (let i = 0; i < 8; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      assert.ok(await echoes(conn));
      conn.close();
    }
  });
});

Deno.test("metrics sum the workers' counters", async () => {
  await workerDaemon(
    `metrics = "127.0.0.1:0"\n${ECHO}`,
    async (daemon) => {
      const port = daemon.port("echo");
      const line = await daemon.waitForLine(/Metrics on http:/);
      const url = /(http:\/\/\S+)/.exec(line)![1]!;
      await waitFor(() =>
        daemon.lines.filter((l) => /Listening on .*worker=/.test(l)).length === 2
      );
      for (let i = 0; i < 12; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        assert.ok(await echoes(conn, "12345\n"));
        conn.close();
      }
      await waitFor(() =>
        daemon.lines.filter((l) => l.includes("Connection closed")).length === 12
      );
      const text = await (await fetch(url)).text();
      assert.match(text, /switchboard_connections_accepted_total\{listener="echo"[^}]*\} 12\n/);
      assert.match(text, /switchboard_received_bytes_total\{listener="echo"[^}]*\} 72\n/);
      const page = await (await fetch(url.replace(/metrics$/, ""))).text();
      assert.match(page, /echo/);
    },
  );
});

Deno.test("a chat room stays one room: the supervisor serves chat", async () => {
  await workerDaemon(
    `
[[listener]]
name = "room"
service = "chat"
transport = "tcp"
listen = "127.0.0.1:0"
`,
    async (daemon) => {
      const port = daemon.port("room");
      const listening = daemon.lines.filter((l) => l.includes("listener=room"));
      assert.ok(listening.every((l) => !l.includes("worker=")), listening.join("\n"));
      const first = await Deno.connect({ hostname: "127.0.0.1", port });
      const others: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 6; i++) {
          others.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        }
        let text = "";
        const buffer = new Uint8Array(4096);
        const timer = setTimeout(() => first.close(), 5000);
        try {
          while ((text.match(/ joined\n/g) ?? []).length < 6) {
            const n = await first.read(buffer);
            if (n === null) break;
            text += decoder.decode(buffer.subarray(0, n));
          }
        } finally {
          clearTimeout(timer);
        }
        assert.equal((text.match(/ joined\n/g) ?? []).length, 6, text);
      } finally {
        closeAll([first, ...others]);
      }
    },
  );
});

Deno.test("a listener moving between the supervisor and the workers keeps its address bound", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const text = (service: string) =>
    `[daemon]\nworkers = 2\n[[listener]]\nname = "a"\nservice = "${service}"\n` +
    `transport = "tcp"\nlisten = "127.0.0.1:${port}"\n`;
  await using config = await tempConfig(text("chat"));
  await using daemon = await spawnDaemon(["-c", config.path]);
  // Connects over and over while the reloads run: none is refused for want of a socket.
  let probing = true;
  let refused = 0;
  const prober = (async () => {
    for (let i = 0; probing && i < 100_000; i++) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionRefused) refused++;
      }
    }
  })();
  try {
    for (const [service, reloads] of [["echo", 1], ["chat", 2]] as const) {
      await Deno.writeTextFile(config.path, text(service));
      daemon.child.kill("SIGHUP");
      await waitFor(
        () => daemon.lines.filter((l) => /INFO {2}Reloaded/.test(l)).length === reloads,
        10_000,
      );
      const reloaded = daemon.lines.filter((l) => /INFO {2}Reloaded/.test(l)).at(-1)!;
      assert.match(reloaded, /added=0 changed=1 kept=0 removed=0/);
    }
    // Back with the supervisor: a chat room, one for all.
    const conns: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 2; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      const text = decoder.decode(await readBytes(conns[0]!, 8, 5000));
      assert.match(text, /./);
    } finally {
      closeAll(conns);
    }
  } finally {
    probing = false;
    await prober;
  }
  assert.equal(refused, 0);
  assert.ok(!daemon.lines.some((l) => /refused|AddrInUse|in use/i.test(l) && l.includes("Reload")));
});

Deno.test("a bad workers value is refused with file, line and key (exit 78)", async () => {
  for (const value of ["0", '"many"', "1.5", "true"]) {
    const result = await checkConfig(`[daemon]\nlog_level = "info"\nworkers = ${value}\n${ECHO}`);
    assert.equal(result.code, 78, `${value}: ${result.stdout}${result.stderr}`);
    assert.match(result.stdout + result.stderr, /switchboard\.toml:3: daemon\.workers: /);
  }
  await using config = await tempConfig(`[daemon]\nworkers = -2\n${ECHO}`);
  await using daemon = await spawnDaemon(["-c", config.path], { waitReady: false });
  const status = await daemon.exit();
  assert.equal(status.code, 78);
  assert.ok(daemon.lines.some((l) => /switchboard\.toml:2: daemon\.workers: /.test(l)));
});
