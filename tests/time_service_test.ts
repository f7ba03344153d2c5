import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../lib/config.ts";
import { loadConfig } from "../lib/config_file.ts";
import { createTimeService, type TimeOptions } from "../handlers/time/mod.ts";
import { SERVICES } from "../handlers/mod.ts";
import {
  listenerToml,
  readBytes,
  readToEnd,
  startServer,
  udpReceive,
  udpRequest,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Sunday 2026-11-22 10:30:00.250 UTC; 19:30 in Tokyo.
const T0 = Date.UTC(2026, 10, 22, 10, 30, 0, 250);
const RFC868_T0 = [0xee, 0xad, 0x42, 0xa8]; // 4004332200 = T0 in seconds since 1900

const CONFIG = [
  listenerToml({ name: "udp", service: "time", listen: "127.0.0.1:0", timezone: "UTC" }),
  listenerToml({
    name: "tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    timezone: "UTC",
  }),
  listenerToml({
    name: "day-udp",
    service: "time",
    listen: "127.0.0.1:0",
    mode: "daytime",
    timezone: "Asia/Tokyo",
  }),
  listenerToml({
    name: "day-tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    mode: "daytime",
    timezone: "Asia/Tokyo",
  }),
  listenerToml({ name: "r868-udp", service: "time", listen: "127.0.0.1:0", mode: "rfc868" }),
  listenerToml({
    name: "r868-tcp",
    service: "time",
    transport: "tcp",
    listen: "127.0.0.1:0",
    mode: "rfc868",
  }),
].join("\n");

function startTimeServer(now: () => number = () => T0) {
  return startServer(CONFIG, { services: [createTimeService({ now })] });
}

async function ask(port: number, request: string | Uint8Array): Promise<string> {
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  const reply = await udpRequest(port, bytes);
  assert.ok(reply !== null, `no reply to ${JSON.stringify(request)}`);
  return decoder.decode(reply);
}

Deno.test("time over UDP: one datagram in, one out, formatted or an error", async (t) => {
  await using server = await startTimeServer();
  const port = server.port("udp");
  const cases: [string, string | Uint8Array, string][] = [
    ["empty gets the default format", "", "2026-11-22 10:30:00"],
    ["a lone newline is empty too", "\n", "2026-11-22 10:30:00"],
    ["strftime, newline stripped", "%Y-%m-%d %X\n", "2026-11-22 10:30:00"],
    ["strftime, CRLF stripped", "%c\r\n", "Sun Nov 22 10:30:00 2026"],
    ["%x %Z %z", "%x %Z %z", "11/22/26 UTC +0000"],
    ["UTF-8 kept", "%Y年%m月%d日", "2026年11月22日"],
    ["tokens", "YYYY-MM-DD[T]HH:mm:ss.SSSZ", "2026-11-22T10:30:00.250+00:00"],
    ["unknown directive", "%Q", 'error: unknown directive "%Q"'],
    ["dangling %", "%Y%", 'error: format ends with a lone "%" (write "%%" for a percent sign)'],
    ["unbalanced [", "[YYYY", 'error: "[" at byte 0 has no closing "]"'],
    ["over 256 bytes", "Y".repeat(300), "error: format is 300 bytes, over the 256-byte limit"],
    ["invalid UTF-8", new Uint8Array([0x25, 0x59, 0xc3, 0x28]), "error: format is not valid UTF-8"],
    [
      "reply over 1 KiB",
      "%c".repeat(50),
      "error: reply would be 1200 bytes, over the 1024-byte limit",
    ],
  ];
  for (const [name, request, expected] of cases) {
    await t.step(name, async () => assert.equal(await ask(port, request), expected));
  }
});

Deno.test("time over UDP answers every request exactly once, never over 1 KiB", async () => {
  await using server = await startTimeServer();
  const port = server.port("udp");
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const requests = ["%Y", "", "%Q", "%c".repeat(60), "x".repeat(1000), "%c".repeat(42), "HH"];
    for (const request of requests) {
      await socket.send(encoder.encode(request), { transport: "udp", hostname: "127.0.0.1", port });
    }
    const replies: string[] = [];
    for (let i = 0; i < requests.length; i++) {
      const reply = await udpReceive(socket, 2000);
      assert.ok(reply !== null, `reply ${i} missing`);
      assert.ok(reply.length <= 1024, `reply of ${reply.length} bytes`);
      replies.push(decoder.decode(reply));
    }
    assert.equal(await udpReceive(socket, 200), null, "no extra reply");
    assert.deepEqual(replies.slice(0, 3), [
      "2026",
      "2026-11-22 10:30:00",
      'error: unknown directive "%Q"',
    ]);
    assert.match(replies[3]!, /^error: reply would be 1440 bytes/);
    assert.match(replies[4]!, /^error: format is 1000 bytes/);
    assert.equal(replies[5]!.length, 1008);
    assert.equal(replies[6], "10");
  } finally {
    socket.close();
  }
});

Deno.test("time over TCP: one line in, one line out, the connection stays open", async () => {
  await using server = await startTimeServer();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("tcp") });
  // Several lines in one write, one split across writes, CRLF and an empty line.
  await conn.write(encoder.encode("%Y\r\n\nYYYY [x\n%H:"));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await conn.write(encoder.encode("%M\n"));
  const expected = '2026\n2026-11-22 10:30:00\nerror: "[" at byte 5 has no closing "]"\n10:30\n';
  assert.equal(decoder.decode(await readBytes(conn, encoder.encode(expected).length)), expected);
  // Still open: another request on the same connection.
  await conn.write(encoder.encode("%Z\n"));
  assert.equal(decoder.decode(await readBytes(conn, 4)), "UTC\n");
});

Deno.test("time over TCP: an over-long line gets one error and the rest of it is discarded", async () => {
  await using server = await startTimeServer();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("tcp") });
  // 100 KiB without a newline: the error comes before the line ends.
  await conn.write(encoder.encode("%Y".repeat(50_000)));
  const error = "error: format is over the 256-byte limit\n";
  assert.equal(decoder.decode(await readBytes(conn, error.length)), error);
  await conn.write(encoder.encode("%Y".repeat(1000) + "\n%m\n"));
  assert.equal(
    decoder.decode(await readBytes(conn, 3)),
    "11\n",
    "the long line's rest was skipped",
  );
  // Invalid UTF-8 and an over-cap reply, then a good line.
  const bad = new Uint8Array([0xff, 0x0a]);
  await conn.write(bad);
  await conn.write(encoder.encode("%c".repeat(100) + "\n%d\n"));
  const rest = "error: format is not valid UTF-8\n" +
    "error: reply would be 2400 bytes, over the 1023-byte limit\n22\n";
  assert.equal(decoder.decode(await readBytes(conn, rest.length)), rest);
});

Deno.test("time over TCP: a last line without newline is answered at end of input", async () => {
  await using server = await startTimeServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("tcp") });
  await conn.write(encoder.encode("%d\n%m"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "22\n11\n");
  conn.close();
});

Deno.test("time over TCP: a reply line never exceeds 1 KiB including its newline", async () => {
  await using server = await startTimeServer();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("tcp") });
  const fits = "%c".repeat(42) + "x".repeat(15); // 1008 + 15 = 1023 bytes + "\n"
  await conn.write(encoder.encode(fits + "\n" + fits + "x\n"));
  const first = await readBytes(conn, 1024);
  assert.equal(first.length, 1024);
  assert.equal(first[1023], 10);
  const second = "error: reply would be 1024 bytes, over the 1023-byte limit\n";
  assert.equal(decoder.decode(await readBytes(conn, second.length)), second);
});

Deno.test("daytime: an RFC 867 line in the listener's zone, over UDP and TCP", async () => {
  await using server = await startTimeServer();
  const line = "Sun Nov 22 19:30:00 2026\r\n";
  assert.equal(await ask(server.port("day-udp"), ""), line);
  assert.equal(await ask(server.port("day-udp"), "anything at all"), line);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("day-tcp") });
  assert.equal(decoder.decode(await readToEnd(conn)), line, "sent at connect, then closed");
  conn.close();
});

Deno.test("daytime pads single-digit days with a space, as ctime does", async () => {
  await using server = await startTimeServer(() => Date.UTC(2026, 1, 1, 0, 0, 0));
  assert.equal(await ask(server.port("day-udp"), ""), "Sun Feb  1 09:00:00 2026\r\n");
});

Deno.test("rfc868: 4 bytes of seconds since 1900, over UDP and TCP", async () => {
  await using server = await startTimeServer();
  const reply = await udpRequest(server.port("r868-udp"), new Uint8Array(0));
  assert.deepEqual([...reply!], RFC868_T0);
  const again = await udpRequest(server.port("r868-udp"), encoder.encode("ignored"));
  assert.deepEqual([...again!], RFC868_T0);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("r868-tcp") });
  assert.deepEqual([...await readToEnd(conn)], RFC868_T0, "4 bytes, then closed");
  conn.close();
});

async function runRdate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("rdate", {
      args,
      env: { TZ: "UTC" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("rdate is missing: run scripts/install_test_tools.sh (Debian package rdate)");
    }
    throw error;
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const output = await child.output();
  clearTimeout(timer);
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("rdate reads the rfc868 listener over TCP (-p) and UDP (-u)", async () => {
  await using server = await startTimeServer();
  const tcp = await runRdate(["-p", "-o", String(server.port("r868-tcp")), "127.0.0.1"]);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.match(tcp.stdout, /Sun Nov 22 10:30:00 UTC 2026/);
  const udp = await runRdate(["-p", "-u", "-o", String(server.port("r868-udp")), "127.0.0.1"]);
  assert.equal(udp.code, 0, udp.stderr);
  assert.match(udp.stdout, /Sun Nov 22 10:30:00 UTC 2026/);
});

Deno.test("time listeners follow the real clock by default", async () => {
  await using server = await startServer(CONFIG);
  const before = Math.floor(Date.now() / 1000);
  const reply = await ask(server.port("udp"), "%s");
  const after = Math.floor(Date.now() / 1000);
  assert.ok(
    Number(reply) >= before && Number(reply) <= after,
    `${reply} not in [${before}, ${after}]`,
  );
});

function problems(toml: string): string[] {
  try {
    parseConfig(toml, "test.toml", { services: [createTimeService()] });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.key}: ${p.message}`);
    throw error;
  }
  return [];
}

Deno.test("time config: bad zones, formats and modes are config errors", async (t) => {
  const base = { service: "time", listen: "127.0.0.1:0" };
  const cases: [Record<string, unknown>, string][] = [
    [
      { timezone: "Europe/Berln" },
      'listener[0].timezone: unknown time zone "Europe/Berln" (did you mean "Europe/Berlin"?)',
    ],
    [{ timezone: "+05:30" }, 'listener[0].timezone: "+05:30" is not an IANA time zone name'],
    [{ default_format: "%Q" }, 'listener[0].default_format: unknown directive "%Q"'],
    [{ default_format: "" }, "listener[0].default_format: must not be empty"],
    [{ default_format: "[x" }, 'listener[0].default_format: "[" at byte 0 has no closing "]"'],
    [
      { default_format: "%c".repeat(43) },
      "listener[0].default_format: can expand to 1032 bytes, over the 1024-byte reply limit",
    ],
    [{ mode: "ntp" }, 'listener[0].mode: unknown value "ntp"'],
    [{ timezone: 5 }, "listener[0].timezone: expected a string, found the integer 5"],
    [
      { default_fromat: "%Y" },
      'listener[0].default_fromat: unknown key (did you mean "default_format"?)',
    ],
  ];
  for (const [fields, expected] of cases) {
    await t.step(JSON.stringify(fields).slice(0, 60), () => {
      const found = problems(listenerToml({ ...base, ...fields }));
      assert.equal(found.length, 1, found.join("\n"));
      assert.ok(found[0]!.startsWith(expected), `${found[0]} does not start with ${expected}`);
    });
  }
  await t.step("a TCP default format must leave room for the newline", () => {
    const tcp = { ...base, transport: "tcp", default_format: "%c".repeat(42) + "x".repeat(16) };
    assert.match(problems(listenerToml(tcp))[0]!, /can expand to 1024 bytes, over the 1023-byte/);
    assert.deepEqual(problems(listenerToml({ ...tcp, transport: "udp" })), []);
  });
});

Deno.test("time append_newline ends each UDP reply with a newline, errors too", async () => {
  const toml = listenerToml({
    name: "nl",
    service: "time",
    listen: "127.0.0.1:0",
    timezone: "UTC",
    append_newline: true,
  });
  await using server = await startServer(toml, {
    services: [createTimeService({ now: () => T0 })],
  });
  const port = server.port("nl");
  assert.equal(await ask(port, "%Y\n"), "2026\n");
  assert.equal(await ask(port, "%Y"), "2026\n", "the same reply again, from the cache");
  assert.equal(await ask(port, ""), "2026-11-22 10:30:00\n");
  assert.equal(await ask(port, "%Q"), 'error: unknown directive "%Q"\n');
  // With its newline a reply still fits the 1 KiB cap.
  const long = await ask(port, "%c".repeat(42) + "x".repeat(16));
  assert.match(long, /^error: reply would be 1024 bytes, over the 1023-byte limit\n$/);
});

Deno.test("time append_newline is refused on TCP and in rfc868 mode", () => {
  const base = { service: "time", listen: "127.0.0.1:0", append_newline: true };
  assert.deepEqual(problems(listenerToml(base)), []);
  assert.match(
    problems(listenerToml({ ...base, transport: "tcp" }))[0]!,
    /^listener\[0\]\.append_newline: has no effect on a tcp listener/,
  );
  assert.match(
    problems(listenerToml({ ...base, mode: "rfc868" }))[0]!,
    /^listener\[0\]\.append_newline: cannot be used with mode = "rfc868"/,
  );
  assert.deepEqual(
    problems(listenerToml({ ...base, mode: "daytime" })),
    [],
    "CRLF ends it already",
  );
  assert.deepEqual(problems(listenerToml({ ...base, append_newline: false, mode: "rfc868" })), []);
});

Deno.test("time config: defaults are the system zone, format mode and the usual format", () => {
  const config = parseConfig(listenerToml({ service: "time", listen: "127.0.0.1:0" }), "t.toml", {
    services: [createTimeService()],
  });
  const only = config.listeners[0]!;
  assert.equal(only.transport, "udp");
  const options = only.options as TimeOptions;
  assert.equal(options.mode, "format");
  assert.equal(options.timezone, Temporal.Now.timeZoneId());
  assert.equal(options.defaultFormat, "%Y-%m-%d %H:%M:%S");
});

Deno.test("the embedded default includes the time listener on 127.0.0.1:7037/udp", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    assert.ok(SERVICES.some((s) => s.name === "time"));
    const config = await loadConfig({ kind: "embedded" }, {
      services: SERVICES,
      env: () => undefined,
      cwd,
    });
    const time = config.listeners.find((l) => l.service === "time");
    assert.ok(time, "time listener present");
    assert.equal(time.listen, "127.0.0.1:7037");
    assert.equal(time.transport, "udp");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
