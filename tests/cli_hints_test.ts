import assert from "node:assert/strict";
import { EVERY_SERVICE as N, startEveryService } from "./_cli_helpers.ts";
import { runCli } from "./_helpers.ts";

Deno.test("a client verb that meets the wrong kind of listener says what it saw and what to try", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    await using server = await startEveryService(root);
    const at = (name: string): string => `127.0.0.1:${server.port(name)}`;
    const cases: [string, string[], number, RegExp][] = [
      [
        "time over UDP at a TCP time listener",
        ["time", "--timeout", "300ms", at(N.timeTcp)],
        1,
        /^switchboard time: no reply over UDP from 127\.0\.0\.1:\d+ within 300ms, but it accepts TCP connections: is it a TCP listener\? Try --tcp\n$/,
      ],
      [
        "time --tcp at an rfc868 listener",
        ["time", "--tcp", at(N.rfc868Tcp)],
        1,
        /^switchboard time: got 4 bytes that read as the RFC 868 time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, not a line: the listener is in rfc868 mode; try --rfc868\n$/,
      ],
      [
        "time at an rfc868 UDP listener",
        ["time", at(N.rfc868Udp)],
        1,
        /^switchboard time: got 4 bytes that read as the RFC 868 time .*; try --rfc868\n$/,
      ],
      [
        "time --rfc868 at a format listener",
        ["time", "--rfc868", at(N.timeUdp)],
        1,
        /^switchboard time: expected the 4 bytes of an rfc868 listener, got 19 bytes .*; try without --rfc868\n$/,
      ],
      [
        'cmd at a protocol = "line" listener',
        ["cmd", at(N.cmdLine), "--", "uptime"],
        255,
        /^switchboard cmd: 127\.0\.0\.1:\d+ closed the connection without replying: is it a cmd listener with protocol = "line"\? That one takes one shell line per line, as from nc: .*\n$/,
      ],
      [
        "cmd at an echo listener",
        ["cmd", at(N.echoTcp), "--", "uptime"],
        255,
        /^switchboard cmd: 127\.0\.0\.1:\d+ sent the request back: it is an echo service, not a cmd listener\n$/,
      ],
    ];
    for (const [name, args, code, stderr] of cases) {
      await t.step(name, async () => {
        const result = await runCli(args);
        assert.match(result.stderr, stderr);
        assert.equal(result.code, code);
        assert.equal(result.stdout, "", "no raw bytes printed");
      });
    }
    await t.step("the right flags then work", async () => {
      const tcp = await runCli(["time", "--tcp", at(N.timeTcp), "%Y"]);
      assert.equal(tcp.code, 0, tcp.stderr);
      assert.match(tcp.stdout, /^\d{4}\n$/);
      const rfc868 = await runCli(["time", "--tcp", "--rfc868", at(N.rfc868Tcp)]);
      assert.equal(rfc868.code, 0, rfc868.stderr);
      assert.match(rfc868.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
