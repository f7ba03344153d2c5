import assert from "node:assert/strict";
import { loadVerbs } from "../main.ts";
import { VERSION } from "../lib/version.ts";
import {
  BUILT,
  listenerToml,
  readBytes,
  readToEnd,
  ROOT,
  runCli,
  spawnDaemon,
  switchboardShell,
  tempConfig,
  udpRequest,
  waitFor,
} from "./_helpers.ts";

const VERBS = await loadVerbs();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ECHO_PAIR = listenerToml({ name: "tcp", service: "echo", listen: "127.0.0.1:0" }) +
  listenerToml({ name: "udp", service: "echo", transport: "udp", listen: "127.0.0.1:0" });

function isFree(port: number, transport: "tcp" | "udp" = "tcp"): boolean {
  try {
    if (transport === "tcp") Deno.listen({ hostname: "127.0.0.1", port }).close();
    else Deno.listenDatagram({ hostname: "127.0.0.1", port, transport }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("version prints the package version and the runtime it carries", async () => {
  const result = await runCli(["version"]);
  assert.equal(result.code, 0);
  // The built executable names its runtime; `deno run` names Deno's version.
  const runtime = BUILT ? "bun \\d+\\.\\d+\\.\\d+, single executable" : `deno ${Deno.version.deno}`;
  assert.match(
    result.stdout,
    new RegExp(`^switchboard ${VERSION.replaceAll(".", "\\.")} \\(${runtime}\\)\n$`),
  );
  const pkg = JSON.parse(await Deno.readTextFile(`${ROOT}/package.json`));
  assert.equal(VERSION, pkg.version);
});

Deno.test("help lists every verb; no verb is a usage error", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  for (const verb of VERBS) assert.match(help.stdout, new RegExp(`switchboard ${verb.name}\\b`));
  const none = await runCli([]);
  assert.equal(none.code, 64);
  assert.match(none.stderr, /^Usage: switchboard VERB/);
});

Deno.test("every verb has --help", async (t) => {
  for (const verb of VERBS) {
    await t.step(verb.name, async () => {
      const result = await runCli([verb.name, "--help"]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Usage: switchboard ${verb.name}\\b`));
    });
  }
});

Deno.test("a usage error is one line that says to try --help, exit 64", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^switchboard: unknown command "frobnicate" \(try --help\)\n$/],
    [["serve", "--bogus"], /^switchboard serve: unknown option '--bogus' \(try --help\)\n$/],
    [
      ["check", "-c"],
      /^switchboard check: option '-c, --config <value>' argument missing \(try --help\)\n$/,
    ],
    [["echo"], /^switchboard echo: missing ADDR \(try --help\)\n$/],
    [
      ["echo", "127.0.0.1:99999", "x"],
      /^switchboard echo: bad address "127\.0\.0\.1:99999": port must be 1-65535 \(try --help\)\n$/,
    ],
    [["version", "extra"], /^switchboard version: unexpected argument "extra" \(try --help\)\n$/],
    [["cmd", "127.0.0.1"], /^switchboard cmd: missing COMMAND \(try --help\)\n$/],
    [["ls", "--long=x", "h"], /^switchboard ls: .* \(try --help\)\n$/],
    [["help", "nope"], /^switchboard help: no verb "nope" \(try --help\)\n$/],
  ];
  for (const [args, stderr] of cases) {
    await t.step(args.join(" "), async () => {
      const result = await runCli(args);
      assert.equal(result.code, 64);
      assert.match(result.stderr, stderr);
      assert.equal(result.stdout, "");
    });
  }
});

Deno.test("help VERB prints that verb's --help", async () => {
  const result = await runCli(["help", "echo"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, (await runCli(["echo", "--help"])).stdout);
});

Deno.test("check prints each listener, or every problem with exit 78", async () => {
  await using good = await tempConfig(
    listenerToml({
      name: "e",
      service: "echo",
      listen: ":7007",
      max_connections: 9,
      transform: "upper",
    }),
  );
  const ok = await runCli(["check", "-c", good.path]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /NAME\s+SERVICE\s+TRANSPORT\s+ADDRESS\s+LIMITS/);
  assert.match(
    ok.stdout,
    /e\s+echo\s+tcp\s+\*:7007\s+max_connections=9 idle_timeout=5m transform=upper/,
  );

  await using bad = await tempConfig(
    '[daemon]\nlog_level = "chatty"\n\n[[listener]]\nservice = "echo"\nlisten = "nowhere"\n',
  );
  const failed = await runCli(["check", "-c", bad.path]);
  assert.equal(failed.code, 78);
  assert.match(
    failed.stderr,
    new RegExp(`${bad.path}:2: daemon.log_level: unknown value "chatty"`),
  );
  assert.match(
    failed.stderr,
    new RegExp(`${bad.path}:6: listener\\[0\\].listen: Cannot parse address`),
  );
  assert.match(failed.stderr, /2 problems found\n$/);

  const missing = await runCli(["check", "-c", "/nonexistent/switchboard.toml"]);
  assert.equal(missing.code, 78);
  assert.match(missing.stderr, /cannot read config \(given by -c\): no such file/);
});

Deno.test("check without a config shows the embedded default on loopback", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const result = await runCli(["check"], { cwd, env: { SWITCHBOARD_CONFIG: "" } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^config: <embedded default>/);
    assert.match(result.stdout, /echo-tcp\s+echo\s+tcp\s+127\.0\.0\.1:7007/);
    assert.match(result.stdout, /echo-udp\s+echo\s+udp\s+127\.0\.0\.1:7007/);
    assert.match(
      result.stdout,
      /note: Embedded default: cmd service skipped \(SWITCHBOARD_TOKEN is not set\)/,
    );
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("SWITCHBOARD_CONFIG names the config when -c is absent", async () => {
  await using config = await tempConfig(
    listenerToml({ name: "via-env", service: "echo", listen: "127.0.0.1:0" }),
  );
  const result = await runCli(["check"], { env: { SWITCHBOARD_CONFIG: config.path } });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /via-env/);
});

Deno.test("serve with a bad config exits 78 and binds nothing", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await using config = await tempConfig(
    listenerToml({ name: "fine", service: "echo", listen: `127.0.0.1:${port}` }) +
      listenerToml({ name: "broken", service: "echo", listen: "127.0.0.1:1", tranform: "upper" }),
  );
  await using daemon = await spawnDaemon(["-c", config.path], { waitReady: false });
  const status = await daemon.exit();
  assert.equal(status.code, 78);
  assert.ok(daemon.lines.some((l) => l.includes('unknown key (did you mean "transform"?)')));
  assert.ok(!daemon.lines.some((l) => l.includes("Listening on")));
  assert.ok(isFree(port));
});

Deno.test("serve exits 71 when a listener cannot bind, and leaves nothing half-started", async () => {
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using config = await tempConfig(
    ECHO_PAIR +
      listenerToml({ name: "clash", service: "echo", listen: `127.0.0.1:${blocker.addr.port}` }),
  );
  await using daemon = await spawnDaemon(["-c", config.path], { waitReady: false });
  const status = await daemon.exit();
  assert.equal(status.code, 71);
  assert.ok(
    daemon.lines.some((l) =>
      l.includes(`Listener "clash" cannot bind 127.0.0.1:${blocker.addr.port}/tcp: AddrInUse`)
    ),
    daemon.lines.join("\n"),
  );
  assert.ok(!daemon.lines.some((l) => /switchboard \S+ ready/.test(l)));
});

Deno.test("serve -c runs the listeners and SIGTERM stops it with exit 0", async () => {
  await using config = await tempConfig(ECHO_PAIR);
  await using daemon = await spawnDaemon(["-c", config.path]);
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.port("tcp") });
  await conn.write(encoder.encode("over tcp"));
  assert.equal(decoder.decode(await readBytes(conn, 8)), "over tcp");
  const reply = await udpRequest(daemon.port("udp"), encoder.encode("over udp"));
  assert.equal(decoder.decode(reply!), "over udp");
  daemon.child.kill("SIGTERM");
  const status = await daemon.exit();
  assert.equal(status.code, 0);
  assert.ok(daemon.lines.some((l) => l.includes("SIGTERM: stopping")));
  assert.ok(daemon.lines.at(-1)!.includes("Stopped"));
  assert.equal((await readToEnd(conn, 2000)).length, 0, "idle connection closed");
});

Deno.test("a second SIGINT forces exit while work is still in flight", async () => {
  await using config = await tempConfig(
    '[daemon]\nshutdown_timeout = "60s"\n' + ECHO_PAIR,
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  // Keep the echo busy: send far more than we read, until our writes stall
  // (then the server is blocked writing back to us, i.e. busy).
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.port("tcp") });
  let written = 0;
  let stalledSince = performance.now();
  const chunk = new Uint8Array(65536);
  const flood = (async () => {
    while (written < 256 * 1024 * 1024) {
      written += await conn.write(chunk);
      stalledSince = performance.now();
    }
  })().catch(() => {});
  await waitFor(() => performance.now() - stalledSince > 300, 20_000);
  daemon.child.kill("SIGINT");
  await daemon.waitForLine(/SIGINT: stopping/);
  daemon.child.kill("SIGINT");
  const status = await daemon.exit(10_000);
  assert.equal(status.code, 130);
  assert.ok(daemon.lines.some((l) => l.includes("Second SIGINT")));
  conn.close();
  await flood;
});

Deno.test("SIGHUP reloads: new settings apply, unchanged sockets stay, a bad config is refused", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const first = listenerToml({ name: "main", service: "echo", listen: `127.0.0.1:${port}` });
  await using config = await tempConfig(first);
  await using daemon = await spawnDaemon(["-c", config.path]);
  using old = await Deno.connect({ hostname: "127.0.0.1", port });
  await old.write(encoder.encode("a"));
  assert.equal(decoder.decode(await readBytes(old, 1)), "a");

  await Deno.writeTextFile(
    config.path,
    listenerToml({
      name: "main",
      service: "echo",
      listen: `127.0.0.1:${port}`,
      transform: "upper",
    }),
  );
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Reloaded added=0 changed=1 kept=0 removed=0/);
  using fresh = await Deno.connect({ hostname: "127.0.0.1", port });
  await fresh.write(encoder.encode("b"));
  assert.equal(decoder.decode(await readBytes(fresh, 1)), "B");
  await old.write(encoder.encode("c"));
  assert.equal(decoder.decode(await readBytes(old, 1)), "c", "old connection survived the reload");

  await Deno.writeTextFile(config.path, "[[listener]]\nservice = 42\n");
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Reload refused/);
  await fresh.write(encoder.encode("d"));
  assert.equal(decoder.decode(await readBytes(fresh, 1)), "D");
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("echo client: TEXT mode over TCP and UDP", async () => {
  await using config = await tempConfig(
    listenerToml({ name: "tcp", service: "echo", listen: "127.0.0.1:0", transform: "upper" }) +
      listenerToml({ name: "udp", service: "echo", transport: "udp", listen: "127.0.0.1:0" }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const tcp = await runCli(["echo", `127.0.0.1:${daemon.port("tcp")}`, "hello", "wörld"]);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.equal(tcp.stdout, "HELLO WöRLD\n");
  const udp = await runCli(["echo", "--udp", `127.0.0.1:${daemon.port("udp")}`, "as", "datagram"]);
  assert.equal(udp.code, 0, udp.stderr);
  assert.equal(udp.stdout, "as datagram\n");
});

Deno.test("echo client: piped stdin is copied byte for byte (TCP) and line by line (UDP)", async () => {
  await using config = await tempConfig(ECHO_PAIR);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const binary = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) % 251);
  const tcp = await runCli(["echo", `127.0.0.1:${daemon.port("tcp")}`], { stdin: binary });
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.deepEqual(tcp.stdoutBytes, binary);
  const udp = await runCli(["echo", "--udp", `127.0.0.1:${daemon.port("udp")}`], {
    stdin: "one\r\ntwo\nthree",
  });
  assert.equal(udp.code, 0, udp.stderr);
  assert.equal(udp.stdout, "one\ntwo\nthree\n");
});

Deno.test("echo client: a refused connection or a silent UDP server is exit 1 with one line", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const tcp = await runCli(["echo", `127.0.0.1:${port}`, "x"]);
  assert.equal(tcp.code, 1);
  assert.equal(
    tcp.stderr,
    `switchboard echo: cannot connect to 127.0.0.1:${port}: connection refused\n`,
  );
  const udp = await runCli(["echo", "--udp", "--timeout", "100ms", `127.0.0.1:${port}`, "x"]);
  assert.equal(udp.code, 1);
  assert.match(
    udp.stderr,
    /^switchboard echo: no reply from 127\.0\.0\.1:\d+ after 3 attempt\(s\)\n$/,
  );
});

Deno.test("echo client on a terminal sends lines as typed and escapes control characters", async () => {
  await using config = await tempConfig(ECHO_PAIR);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const command = switchboardShell(["echo", `127.0.0.1:${daemon.port("tcp")}`]);
  // script(1) gives the client a pseudo-terminal; its stdin feeds the terminal.
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode("first line\n"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // ESC typed into the terminal reaches the server and comes back; it must be shown escaped.
  await writer.write(encoder.encode("red \x16\x1b[31m text\n"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await writer.close();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const output = await child.output();
  clearTimeout(timer);
  const text = decoder.decode(output.stdout);
  assert.equal(output.code, 0, text + decoder.decode(output.stderr));
  assert.match(text, /Connected to 127\.0\.0\.1:\d+\/tcp; type lines, Ctrl-D ends/);
  assert.match(
    text,
    /first line\r\n(.|\r|\n)*first line\r\n/,
    "typed line echoed by the tty, then the reply",
  );
  assert.match(text, /red \\x1b\[31m text/, "the reply's ESC is escaped");
  assert.ok(!text.includes("red \x1b[31m text\r\n" + "red"), "no raw escape sequence in the reply");
});

Deno.test("serve without any config runs the embedded default on loopback", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    // The default's ports are fixed; on a shared machine another run may hold them briefly.
    const ports: [number, "tcp" | "udp"][] = [[7007, "tcp"], [7007, "udp"], [7008, "udp"], [
      7037,
      "udp",
    ]];
    await waitFor(() => ports.every(([port, transport]) => isFree(port, transport)), 30_000)
      .catch(() => {
        throw new Error("The embedded default's ports stayed in use for 30s; cannot test it");
      });
    await using daemon = await spawnDaemon([], { cwd, env: { SWITCHBOARD_CONFIG: "" } });
    assert.ok(
      daemon.lines.some((l) => l.includes('config="the embedded default"')),
      daemon.lines.join("\n"),
    );
    assert.ok(
      daemon.lines.some((l) => l.includes("cmd service skipped (SWITCHBOARD_TOKEN is not set)")),
    );
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: 7007 });
    await conn.write(encoder.encode("default"));
    assert.equal(decoder.decode(await readBytes(conn, 7)), "default");
    const reply = await udpRequest(7007, encoder.encode("udp default"));
    assert.equal(decoder.decode(reply!), "udp default");
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.exit()).code, 0);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
