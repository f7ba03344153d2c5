/**
 * The self-contained executable's `Deno` adapter, checked under bun (the
 * runtime it is for): each behaviour the daemon relies on is one check in
 * `tests/adapter/checks.ts`, reported as a JSON line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_helpers.ts";

const BUN = join(ROOT, "node_modules", ".bin", "bun");

const EXPECTED = [
  "tcp half-close both ways, nodelay and keepalive",
  "a closed listener ends accept with BadResource (and iteration), a bound port is AddrInUse",
  "connection refused is ConnectionRefused with Deno's message",
  "two listeners share a port with reusePort, and both accept ([daemon] workers)",
  "udp carries 65,507-byte datagrams into a reused buffer",
  "unix datagrams reach a socket path (sd_notify)",
  "Command: clearEnv, env, cwd, piped output, exit codes and signals",
  "Command stdin and stdout as byte streams (BYOB readers)",
  "detached children lead a process group that Deno.kill(-pgid) ends",
  "signal listeners are called and removed",
  "files: positions, seeks, sync and async reads, Web streams, errors",
  "Deno.serve answers over HTTP and shuts down",
  "an uncaught error is an error event on globalThis that may be cancelled",
  "dlopen calls libc with Deno's type names",
  "process facts: execPath, pid, env, args",
];

Deno.test("the Deno adapter carries what the daemon relies on, under bun", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sb-adapter-" });
  const path = join(dir, "notify.sock");
  const notify = Deno.listenDatagram({ transport: "unixpacket", path });
  try {
    const received = notify.receive();
    received.catch(() => {}); // rejected by close() when a check failed first
    const child = new Deno.Command(BUN, {
      args: [join(ROOT, "tests", "adapter", "checks.ts"), path],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const output = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const results = new TextDecoder().decode(output.stdout).trim().split("\n")
      .map((line) => JSON.parse(line) as { name: string; ok: boolean; detail: string });
    assert.deepEqual(results.map((r) => r.name), EXPECTED);
    for (const result of results) assert.ok(result.ok, `${result.name}: ${result.detail}`);
    const [data] = await received;
    assert.equal(new TextDecoder().decode(data), "READY=1\nSTATUS=adapter");
  } finally {
    notify.close();
    await Deno.remove(dir, { recursive: true });
  }
});
