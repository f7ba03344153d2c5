import assert from "node:assert/strict";
import { join } from "node:path";
import { liveGroupMembers } from "../lib/process_group.ts";
import { DEFAULT_PATH } from "../lib/command_options.ts";
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
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function execServer(keys: Record<string, unknown>): Promise<TestServer> {
  return startServer(
    listenerToml({ name: "x", service: "exec", listen: "127.0.0.1:0", ...keys }),
  );
}

function connect(server: TestServer, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port: server.port("x") });
}

/** The connection's last log line (waits for it). */
async function lastLine(server: TestServer, index = 0, timeoutMs = 10_000): Promise<string> {
  const closed = (): string[] => server.lines.filter((l) => l.includes("Connection closed"));
  await waitFor(() => closed().length > index, timeoutMs);
  return closed()[index]!;
}

function pidOf(line: string): number {
  const match = / pid=(\d+)/.exec(line);
  assert.ok(match, `no pid in ${line}`);
  return Number(match[1]);
}

Deno.test("exec runs cat on the socket: every byte comes back, EOF ends it, exit 0 is logged", async () => {
  await using server = await execServer({ argv: ["cat"] });
  using conn = await connect(server);
  // Read while writing: cat's output must flow back while its input arrives.
  const { sent, received } = await exchange(conn, 1 << 20);
  assert.deepEqual(received, sent, "the same bytes, in order");
  const last = await lastLine(server);
  assert.match(
    last,
    /listener=x peer=127\.0\.0\.1:\d+ ms=\d+ in=1048576 out=1048576 outcome=exited pid=\d+ exit=0/,
  );
});

Deno.test("exec: sort behind a half-closed client (nc -N) gets its input's end and answers", async () => {
  await using server = await execServer({ argv: ["sort"] });
  using conn = await connect(server);
  await writeAll(conn, encoder.encode("pear\napple\nfig\n"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "apple\nfig\npear\n");
  assert.match(await lastLine(server), /outcome=exited pid=\d+ exit=0/);
});

Deno.test("exec: a program that exits early closes the connection, its output intact", async () => {
  await using server = await execServer({ argv: ["head", "-c", "10"] });
  using conn = await connect(server);
  // The client goes on sending long after head has gone: its output and a
  // clean end of stream still arrive (no reset destroys them).
  const sending = (async () => {
    const chunk = new Uint8Array(65536).fill(0x41);
    try {
      for (let i = 0; i < 64; i++) await writeAll(conn, chunk);
    } catch {
      // The daemon closes after its linger.
    }
  })();
  const got = await readToEnd(conn, 10_000);
  assert.equal(decoder.decode(got), "AAAAAAAAAA");
  await sending;
  assert.match(await lastLine(server), /outcome=exited pid=\d+ exit=0/);
});

Deno.test("exec: output still queued when the program exits reaches a client that is still sending", async () => {
  // The program never reads stdin and the client never stops sending, so the
  // daemon holds unread input when the program is done. Closing then would
  // send a reset, and a reset throws away output still queued: the daemon
  // half-closes, drains the input for a moment, and only then closes.
  const size = 50_000_000;
  await using server = await execServer({ argv: ["head", "-c", String(size), "/dev/zero"] });
  using conn = await connect(server);
  let reading = true;
  const sending = (async () => {
    const chunk = new Uint8Array(65536);
    try {
      while (reading) await writeAll(conn, chunk);
    } catch {
      // Closed.
    }
  })();
  // A reader a little slower than the program, so output is queued in the
  // daemon's socket when the program exits.
  let got = 0;
  const buffer = new Uint8Array(65536);
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      got += n;
      if (got % (1 << 20) < n) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    reading = false;
  }
  await sending;
  assert.equal(got, size);
  assert.match(await lastLine(server), /outcome=exited pid=\d+ exit=0/);
});

Deno.test("exec: after the client's EOF a program that does not finish is ended eof_grace later", async () => {
  await using server = await execServer({ argv: ["sleep", "30"], eof_grace: "300ms" });
  using conn = await connect(server);
  await conn.closeWrite();
  assert.equal((await readToEnd(conn, 10_000)).length, 0);
  const last = await lastLine(server);
  assert.match(last, /outcome=eof_grace pid=\d+ signal=SIGTERM/);
  assert.deepEqual(liveGroupMembers(pidOf(last)), []);
});

Deno.test("exec: a program that ignores the closing client and SIGTERM is killed", async () => {
  // trap '' makes TERM ignored by the shell and by the sleep it starts.
  await using server = await execServer({
    argv: ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
    eof_grace: "100ms",
  });
  using conn = await connect(server);
  assert.equal(decoder.decode(await readBytes(conn, 6)), "ready\n");
  conn.close();
  const last = await lastLine(server);
  assert.match(last, /pid=\d+ signal=SIGKILL/);
  assert.deepEqual(liveGroupMembers(pidOf(last)), [], "nothing of the group is left");
});

Deno.test("exec: a failed write to the client ends the group at once", async () => {
  await using server = await execServer({ argv: ["yes"], eof_grace: "1h" });
  const conn = await connect(server);
  await readBytes(conn, 100_000);
  conn.close(); // unread data: the close is a reset, the next write fails
  const last = await lastLine(server);
  assert.match(last, /outcome="client disconnected" pid=\d+ signal=SIG(TERM|PIPE)/);
  assert.deepEqual(liveGroupMembers(pidOf(last)), []);
});

Deno.test("exec: a program that neither reads nor writes is ended when its connection goes idle", async () => {
  await using server = await execServer({ argv: ["sleep", "30"], idle_timeout: "300ms" });
  const conn = await connect(server);
  // More than the pipe and socket buffers hold: the daemon's feeder waits on
  // the program's full stdin, not on the socket, when the idle timer fires.
  const sending = writeAll(conn, new Uint8Array(16 << 20)).catch(() => {});
  const last = await lastLine(server);
  conn.close();
  await sending;
  assert.match(last, /outcome=idle pid=\d+ signal=SIGTERM/);
  assert.deepEqual(liveGroupMembers(pidOf(last)), []);
});

Deno.test("exec: timeout ends a program that runs too long", async () => {
  await using server = await execServer({ argv: ["sleep", "30"], timeout: "300ms" });
  using conn = await connect(server);
  assert.equal((await readToEnd(conn, 10_000)).length, 0);
  assert.match(await lastLine(server), /outcome=timeout pid=\d+ signal=SIGTERM/);
});

Deno.test("exec: the program's environment is env, pass_env, PATH and the connection's addresses", async () => {
  Deno.env.set("SWITCHBOARD_EXEC_TEST", "passed");
  try {
    await using server = await startServer(
      listenerToml({
        name: "x",
        service: "exec",
        listen: "127.0.0.1:0",
        argv: ["env"],
        pass_env: ["SWITCHBOARD_EXEC_TEST", "HOME"],
      }) + 'env = { LANG = "C.UTF-8" }\n',
    );
    using conn = await connect(server);
    await conn.closeWrite();
    const lines = decoder.decode(await readToEnd(conn)).trim().split("\n").sort();
    const expected = [
      `HOME=${Deno.env.get("HOME")}`,
      "LANG=C.UTF-8",
      `LOCAL_ADDR=127.0.0.1`,
      `LOCAL_PORT=${server.port("x")}`,
      `PATH=${DEFAULT_PATH}`,
      `REMOTE_ADDR=127.0.0.1`,
      `REMOTE_PORT=${conn.localAddr.port}`,
      "SWITCHBOARD_EXEC_TEST=passed",
    ].filter((line) => !line.startsWith("HOME=undefined")).sort();
    assert.deepEqual(lines, expected);
  } finally {
    Deno.env.delete("SWITCHBOARD_EXEC_TEST");
  }
});

Deno.test("exec sees IPv6 peers as they are and IPv4 peers of a dual-stack listener unmapped", async () => {
  const script = 'echo "$REMOTE_ADDR $LOCAL_ADDR"';
  {
    await using six = await startServer(
      listenerToml({ name: "x", service: "exec", listen: "[::1]:0", argv: ["sh", "-c", script] }),
    );
    using conn = await connect(six, "::1");
    assert.equal(decoder.decode(await readToEnd(conn)), "::1 ::1\n");
  }
  await using dual = await startServer(
    listenerToml({ name: "x", service: "exec", listen: "[::]:0", argv: ["sh", "-c", script] }),
  );
  using conn = await connect(dual);
  assert.equal(decoder.decode(await readToEnd(conn)), "127.0.0.1 127.0.0.1\n");
});

Deno.test("exec stderr: to the log by default, to the client, or nowhere", async (t) => {
  const argv = ["sh", "-c", "echo out; echo 'err one' >&2; printf 'err two' >&2"];
  for (const mode of ["log", "socket", "null"] as const) {
    await t.step(mode, async () => {
      await using server = await execServer({ argv, stderr: mode });
      using conn = await connect(server);
      const got = decoder.decode(await readToEnd(conn));
      const last = await lastLine(server);
      const logged = server.lines.filter((l) => l.includes("stderr: "));
      if (mode === "socket") {
        assert.deepEqual(got.split("\n").sort(), ["err one", "err two", "out"]);
      } else {
        assert.equal(got, "out\n");
      }
      if (mode === "log") {
        assert.equal(logged.length, 2, server.lines.join("\n"));
        assert.match(
          logged[0]!,
          new RegExp(`INFO  stderr: err one listener=x peer=\\S+ pid=${pidOf(last)}`),
        );
        assert.match(logged[1]!, /stderr: err two /, "an unfinished last line is logged too");
        assert.match(last, / stderr_lines=2/);
      } else {
        assert.deepEqual(logged, []);
      }
    });
  }
});

Deno.test("exec: max_concurrent refuses a connection at once while the programs run", async () => {
  await using server = await execServer({ argv: ["cat"], max_concurrent: 1 });
  using first = await connect(server);
  await writeAll(first, encoder.encode("one"));
  assert.equal(decoder.decode(await readBytes(first, 3)), "one");
  {
    using second = await connect(server);
    assert.equal((await readToEnd(second)).length, 0, "closed without running anything");
  }
  assert.match(await lastLine(server), /outcome=busy$/);
  assert.ok(server.lines.some((l) => l.includes("1 programs are running (max_concurrent)")));
  await first.closeWrite();
  await readToEnd(first);
  await lastLine(server, 1);
  using third = await connect(server);
  await writeAll(third, encoder.encode("three"));
  await third.closeWrite();
  assert.equal(decoder.decode(await readToEnd(third)), "three", "the slot is free again");
});

Deno.test("exec: a program that cannot be run is logged and the connection closed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = join(dir, "hello");
    await Deno.writeTextFile(program, "#!/bin/sh\necho hello\n", { mode: 0o755 });
    await using server = await execServer({ argv: [program], workdir: dir });
    {
      using conn = await connect(server);
      assert.equal(decoder.decode(await readToEnd(conn)), "hello\n");
    }
    assert.match(await lastLine(server), /outcome=exited pid=\d+ exit=0/);
    await Deno.remove(program);
    using conn = await connect(server);
    assert.equal((await readToEnd(conn)).length, 0);
    assert.match(await lastLine(server, 1), /outcome="cannot run" exit=127$/);
    assert.ok(
      server.lines.some((l) =>
        l.includes(`WARN  Cannot run program: ${program}: No such file or directory`)
      ),
      server.lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exec runs in workdir, and as another user when the daemon is root", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    {
      await using server = await execServer({ argv: ["pwd"], workdir: dir });
      using conn = await connect(server);
      assert.equal(decoder.decode(await readToEnd(conn)), `${dir}\n`);
    }
    if (Deno.uid() !== 0) return; // dropping to another user needs root
    await using server = await execServer({ argv: ["id", "-u"], user: "nobody" });
    using conn = await connect(server);
    assert.equal(decoder.decode(await readToEnd(conn)), "65534\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check validates exec's keys, the program included (exit 78)", async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /listener\[0\]\.argv: is required/],
    [{ argv: [] }, /argv: must name a program/],
    [{ argv: ["no-such-program-xyz"] }, /argv\[0\]: no-such-program-xyz: command not found/],
    [{ argv: ["/etc/passwd"] }, /argv\[0\]: \/etc\/passwd: Permission denied/],
    [{ argv: ["cat"], stderr: "file" }, /stderr: unknown value "file"/],
    [{ argv: ["cat"], eof_grace: "soon" }, /eof_grace: /],
    [{ argv: ["cat"], transport: "udp" }, /transport: "udp" is not supported by the "exec"/],
    [{ argv: ["cat"], shell: ["/bin/sh"] }, /shell: unknown key/],
  ];
  for (const [keys, expected] of cases) {
    await t.step(JSON.stringify(keys), () => {
      const found = listenerProblems({ service: "exec", listen: "127.0.0.1:7110", ...keys });
      assert.ok(found.some((line) => expected.test(line)), `${expected} not in ${found}`);
    });
  }
  const bad = await checkConfig(listenerToml({ service: "exec", listen: "127.0.0.1:7110" }));
  assert.equal(bad.code, 78, bad.stderr);
  const result = await checkConfig(
    listenerToml({ service: "exec", listen: "127.0.0.1:7110", argv: ["sort", "-r"] }),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /exec-tcp-7110 +exec +tcp +127\.0\.0\.1:7110 .*argv=\["sort","-r"\] stderr=log eof_grace=2s timeout=none max_concurrent=16/,
  );
});
