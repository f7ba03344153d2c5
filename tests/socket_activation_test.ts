import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { parseFdListen, PassedSockets } from "../lib/socket_activation.ts";
import { SERVICES } from "../handlers/mod.ts";
import { readBytes, runCli, spawnDaemon, tempConfig } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("socket activation: LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES are read and removed", () => {
  const env = new Map([["LISTEN_FDS", "3"], ["LISTEN_PID", "4242"], [
    "LISTEN_FDNAMES",
    "web:chat:web",
  ]]);
  const marked: number[] = [];
  const passed = PassedSockets.fromEnvironment({
    env: (name) => env.get(name),
    unset: (name) => env.delete(name),
    pid: 4242,
    closeOnExec: (fds) => {
      marked.push(...fds);
      return undefined;
    },
  });
  assert.deepEqual(passed.sockets, [{ fd: 3, name: "web" }, { fd: 4, name: "chat" }, {
    fd: 5,
    name: "web",
  }]);
  assert.equal(env.size, 0, "nothing of LISTEN_* is left for commands to inherit");
  assert.deepEqual(marked, [3, 4, 5], "every passed descriptor is marked close-on-exec");
  assert.deepEqual(passed.resolve("web").map((s) => s.fd), [3, 5]);
  assert.deepEqual(passed.resolve("4").map((s) => s.name), ["chat"]);
  assert.throws(
    () => passed.resolve("db"),
    /no socket named "db": systemd passed 3 \(web\), 4 \(chat\), 5 \(web\)/,
  );
  assert.throws(() => passed.resolve("9"), /descriptor 9 was not passed/);
});

Deno.test("socket activation: sockets meant for another process, or none, are not taken", () => {
  const other = PassedSockets.fromEnvironment({
    env: (name) => ({ LISTEN_FDS: "1", LISTEN_PID: "1" } as Record<string, string>)[name],
    unset: () => {},
    pid: 4242,
    closeOnExec: () => assert.fail("not ours: nothing to mark"),
  });
  assert.deepEqual(other.sockets, []);
  assert.match(other.notes[0]!, /LISTEN_PID=1 is another process/);
  const none = PassedSockets.fromEnvironment({ env: () => undefined, unset: () => {} });
  assert.deepEqual(none.sockets, []);
  assert.throws(() => none.resolve("web"), /LISTEN_FDS is not set/);
  const unnamed = PassedSockets.fromEnvironment({
    env: (name) => ({ LISTEN_FDS: "2" } as Record<string, string>)[name],
    unset: () => {},
    closeOnExec: () => "no fcntl here",
  });
  assert.deepEqual(unnamed.sockets.map((s) => s.name), ["unknown", "unknown"]);
  assert.match(unnamed.notes[0]!, /commands run by cmd may inherit them/);
});

Deno.test("socket activation: fd: values in the config, and what check says of them", async () => {
  assert.equal(parseFdListen("fd:web").fd, "web");
  assert.equal(parseFdListen("fd:3").fd, "3");
  assert.throws(() => parseFdListen("fd:2"), /start at 3/);
  assert.throws(() => parseFdListen("fd:a/b"), /expected "fd:NAME"/);
  const parse = (toml: string) => parseConfig(toml, "sa.toml", { services: SERVICES });
  const config = parse('[[listener]]\nservice = "echo"\nlisten = "fd:web"\n');
  assert.equal(config.listeners[0]!.name, "echo-tcp-web");
  assert.throws(
    () => parse('[[listener]]\nservice = "echo"\ntransport = "udp"\nlisten = "fd:web"\n'),
    /listen: "fd:web" cannot be used on a udp listener: Deno's node:dgram cannot adopt/,
  );
  assert.throws(
    () =>
      parse(
        '[[listener]]\nname = "a"\nservice = "echo"\nlisten = "fd:web"\n' +
          '[[listener]]\nname = "b"\nservice = "time"\ntransport = "tcp"\nlisten = "fd:web"\n',
      ),
    /listener\[1\]\.listen: .* overlaps "a"/,
  );
  // A cmd listener on a passed socket is not taken for loopback.
  assert.throws(
    () => parse('[[listener]]\nservice = "cmd"\nlisten = "fd:cmd"\nauth = "none"\n'),
    /only allowed on a loopback address/,
  );
  await using file = await tempConfig('[[listener]]\nservice = "echo"\nlisten = "fd:web"\n');
  const check = await runCli(["check", "-c", file.path]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /echo-tcp-web +echo +tcp +fd:web \(socket from systemd\)/);
});

/** A port nobody listens on now (for systemd-socket-activate's -l). */
function freePort(hostname = "127.0.0.1"): number {
  const probe = Deno.listen({ hostname, port: 0 });
  const { port } = probe.addr;
  probe.close();
  return port;
}

async function echoes(port: number, text: string, hostname = "127.0.0.1"): Promise<boolean> {
  try {
    using conn = await Deno.connect({ hostname, port });
    await conn.write(encoder.encode(text));
    return decoder.decode(await readBytes(conn, text.length, 3000)) === text;
  } catch {
    return false;
  }
}

Deno.test("socket activation: systemd-socket-activate's sockets are served by name and number; commands see none of them", async () => {
  const [web, cmd] = [freePort(), freePort()];
  await using config = await tempConfig(`[[listener]]
name = "web"
service = "echo"
listen = "fd:web"
[[listener]]
name = "cmd"
service = "cmd"
listen = "fd:4"
token = "t0ken"
pass_env = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "MARK"]
`);
  await using daemon = await spawnDaemon(["-c", config.path], {
    waitReady: false,
    wrapper: [
      "systemd-socket-activate",
      "-l",
      `127.0.0.1:${web}`,
      "-l",
      `127.0.0.1:${cmd}`,
      "--fdname=web:cmd",
      "-E",
      "MARK=passed",
    ],
  });
  await daemon.waitForLine(/Listening on 127\.0\.0\.1:\d+ as 4/);
  // systemd-socket-activate starts the daemon on the first connection, which
  // waits in the socket's backlog meanwhile: nothing is lost across a (re)start.
  const first = echoes(web, "queued until the daemon started\n");
  await daemon.waitForLine(/switchboard \S+ ready/);
  assert.ok(await first);
  assert.ok(daemon.lines.some((l) => /systemd passed 2 socket\(s\) fds="?3=web,4=cmd/.test(l)));
  assert.ok(
    daemon.lines.some((l) =>
      new RegExp(`Listening on 127\\.0\\.0\\.1:${web}/tcp listener=web .*from=fd:web`).test(l)
    ),
  );
  // The passed descriptors are close-on-exec in the daemon...
  for (const fd of [3, 4]) {
    const info = await Deno.readTextFile(`/proc/${daemon.child.pid}/fdinfo/${fd}`);
    const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1]!, 8);
    assert.ok((flags & 0o2000000) !== 0, `fd ${fd} has O_CLOEXEC`);
  }
  // ...so a command inherits none of them, nor LISTEN_* (even asked for by pass_env).
  const result = await runCli([
    "cmd",
    `127.0.0.1:${cmd}`,
    "--token",
    "t0ken",
    "--",
    "ls /proc/self/fd; env | grep -E '^(LISTEN_|MARK)' | sort",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const fds = result.stdout.split("\n").filter((l) => /^\d+$/.test(l)).map(Number);
  assert.ok(fds.every((fd) => fd <= 3), `descriptors in the command: ${fds}`);
  assert.match(result.stdout, /^MARK=passed$/m);
  assert.doesNotMatch(result.stdout, /LISTEN_/);
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("socket activation: a reload never closes a passed socket; a removed listener can come back", async () => {
  const port = freePort();
  const withEcho = '[[listener]]\nname = "web"\nservice = "echo"\nlisten = "fd:web"\n';
  const other = '[[listener]]\nname = "t"\nservice = "time"\nlisten = "127.0.0.1:0"\n';
  await using config = await tempConfig(withEcho + other);
  await using daemon = await spawnDaemon(["-c", config.path], {
    waitReady: false,
    wrapper: ["systemd-socket-activate", "-l", `127.0.0.1:${port}`, "--fdname=web"],
  });
  await daemon.waitForLine(/Listening on 127\.0\.0\.1:\d+ as 3/);
  const first = echoes(port, "one\n");
  await daemon.waitForLine(/switchboard \S+ ready/);
  assert.ok(await first);

  await Deno.writeTextFile(config.path, other);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Passed socket 3 \(web\) is not used by any listener/);
  // The socket is still open (connections are taken and closed), not refused by the kernel.
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  assert.equal((await readBytes(conn, 1, 3000)).length, 0);

  await Deno.writeTextFile(config.path, withEcho + other);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Reloaded added=1/);
  assert.ok(await echoes(port, "back again\n"));
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("socket activation: a socket that was not passed is exit 71 naming the listener", async () => {
  await using config = await tempConfig(
    '[[listener]]\nname = "web"\nservice = "echo"\nlisten = "fd:web"\n',
  );
  const alone = await runCli(["serve", "-c", config.path]);
  assert.equal(alone.code, 71);
  assert.match(
    alone.stderr,
    /Listener "web" cannot bind fd:web\/tcp: .*no socket named "web": systemd passed no socket/,
  );
  const port = freePort();
  await using daemon = await spawnDaemon(["-c", config.path], {
    waitReady: false,
    wrapper: ["systemd-socket-activate", "-l", `127.0.0.1:${port}`, "--fdname=other"],
  });
  await daemon.waitForLine(/Listening on/);
  // The first connection makes systemd-socket-activate start the daemon.
  using _trigger = await Deno.connect({ hostname: "127.0.0.1", port });
  const status = await daemon.exit();
  assert.equal(status.code, 71);
  assert.ok(daemon.lines.some((l) => /no socket named "web": systemd passed 3 \(other\)/.test(l)));
});
