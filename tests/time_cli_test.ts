import assert from "node:assert/strict";
import { createTimeService } from "../handlers/time/mod.ts";
import { listenerToml, runCli, startServer, switchboardShell } from "./_helpers.ts";

const T0 = Date.UTC(2026, 10, 22, 10, 30, 0, 250);

const CONFIG = [
  listenerToml({ name: "udp", service: "time", listen: "127.0.0.1:0", timezone: "Europe/Berlin" }),
  listenerToml({
    name: "tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    timezone: "Europe/Berlin",
  }),
  listenerToml({ name: "r868-udp", service: "time", listen: "127.0.0.1:0", mode: "rfc868" }),
  listenerToml({
    name: "r868-tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    mode: "rfc868",
  }),
  listenerToml({
    name: "day-tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    mode: "daytime",
    timezone: "UTC",
  }),
].join("\n");

function startTimeServer() {
  return startServer(CONFIG, { services: [createTimeService({ now: () => T0 })] });
}

function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

Deno.test("time client prints the reply over UDP and TCP", async (t) => {
  await using server = await startTimeServer();
  const udp = `127.0.0.1:${server.port("udp")}`;
  const tcp = `127.0.0.1:${server.port("tcp")}`;
  const cases: [string, string[], string][] = [
    ["default format", ["time", udp], "2026-11-22 11:30:00\n"],
    ["strftime", ["time", udp, "%c %Z"], "Sun Nov 22 11:30:00 2026 CET\n"],
    ["words joined", ["time", udp, "%Y", "%m"], "2026 11\n"],
    [
      "tokens",
      ["time", udp, "dddd, MMMM Do YYYY [at] h:mm A"],
      "Sunday, November 22nd 2026 at 11:30 AM\n",
    ],
    ["UTF-8", ["time", udp, "%Y年%m月%d日"], "2026年11月22日\n"],
    ["TCP default", ["time", "--tcp", tcp], "2026-11-22 11:30:00\n"],
    ["TCP format", ["time", tcp, "--tcp", "%H:%M %z"], "11:30 +0100\n"],
    [
      "TCP daytime listener",
      ["time", "--tcp", `127.0.0.1:${server.port("day-tcp")}`],
      "Sun Nov 22 10:30:00 2026\n",
    ],
  ];
  for (const [name, args, expected] of cases) {
    await t.step(name, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, expected);
      assert.equal(result.stderr, "");
    });
  }
});

Deno.test("time client decodes an rfc868 listener with --rfc868", async () => {
  await using server = await startTimeServer();
  const udp = await runCli(["time", "--rfc868", `127.0.0.1:${server.port("r868-udp")}`]);
  assert.equal(udp.code, 0, udp.stderr);
  assert.equal(udp.stdout, "2026-11-22T10:30:00Z\n");
  const tcp = await runCli(["time", "--rfc868", "--tcp", `127.0.0.1:${server.port("r868-tcp")}`]);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.equal(tcp.stdout, "2026-11-22T10:30:00Z\n");
  const wrong = await runCli(["time", "--rfc868", `127.0.0.1:${server.port("udp")}`]);
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.stderr,
    /^switchboard time: expected the 4 bytes of an rfc868 listener, got 19 bytes .*: the listener is in another mode; try without --rfc868\n$/,
  );
});

Deno.test("time client: an error reply is exit 1 with the server's reason", async () => {
  await using server = await startTimeServer();
  for (const args of [["%Q"], ["--tcp", "%Q"]]) {
    const port = server.port(args[0] === "--tcp" ? "tcp" : "udp");
    const result = await runCli(["time", `127.0.0.1:${port}`, ...args]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      'switchboard time: the server refused the request: unknown directive "%Q"\n',
    );
  }
  // A format that asks for the words "error: " gets them, and that is no failure.
  const literal = await runCli(["time", `127.0.0.1:${server.port("udp")}`, "error: %Y"]);
  assert.equal(literal.code, 0);
  assert.equal(literal.stdout, "error: 2026\n");
});

Deno.test("time client: no answer is exit 1 with one line, after retries", async () => {
  const port = freePort();
  const udp = await runCli(["time", "--timeout", "100ms", `127.0.0.1:${port}`]);
  assert.equal(udp.code, 1);
  assert.equal(
    udp.stderr,
    `switchboard time: no reply from 127.0.0.1:${port} after 3 attempt(s)\n`,
  );
  const tcp = await runCli(["time", "--tcp", "--timeout", "500ms", `127.0.0.1:${port}`]);
  assert.equal(tcp.code, 1);
  assert.equal(
    tcp.stderr,
    `switchboard time: cannot connect to 127.0.0.1:${port}: connection refused ` +
      "(time services listen on UDP unless configured for TCP: try without --tcp)\n",
  );
});

Deno.test("time client: a silent TCP server is a timeout, exit 1", async () => {
  using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for (;;) accepted.push(await silent.accept());
    } catch {
      // Listener closed.
    }
  })();
  const result = await runCli([
    "time",
    "--tcp",
    "--timeout",
    "300ms",
    `127.0.0.1:${silent.addr.port}`,
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^switchboard time: no reply from 127\.0\.0\.1:\d+ within 300ms\n$/);
  silent.close();
  await accepting;
  for (const conn of accepted) conn.close();
});

Deno.test("time client: usage errors are exit 64, --help is exit 0", async () => {
  const help = await runCli(["time", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: switchboard time ADDR \[FORMAT\.\.\.\]/);
  for (
    const args of [
      ["time"],
      ["time", "127.0.0.1", "--bogus"],
      ["time", "127.0.0.1", "--timeout", "soon"],
      ["time", "127.0.0.1:99999"],
      ["time", "127.0.0.1", "--rfc868", "%Y"],
    ]
  ) {
    const result = await runCli(args);
    assert.equal(result.code, 64, args.join(" "));
    assert.match(result.stderr, /^switchboard time: /);
  }
});

Deno.test("time client on a terminal escapes control characters in the reply", async () => {
  await using server = await startTimeServer();
  // The format asks for an ESC sequence; the terminal must see it escaped.
  const command = `${switchboardShell(["time", `127.0.0.1:${server.port("udp")}`])} ` +
    `"$(printf '\\033[31m%%Y')"`;
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const output = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, text);
  assert.match(text, /\\x1b\[31m2026/);
  assert.ok(!text.includes("\x1b[31m"), "no raw escape sequence");
});
