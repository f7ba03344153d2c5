import assert from "node:assert/strict";
import {
  listenerProblems,
  listenerToml,
  readBytes,
  readToEnd,
  startServer,
  waitFor,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("banner is sent verbatim at connect, before the service, nothing appended", async () => {
  const banner = "Welcome to echo, ünïcode and all\r\n";
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0", banner }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("e") });
  const bytes = encoder.encode(banner);
  // The banner comes without the client sending anything.
  assert.equal(decoder.decode(await readBytes(conn, bytes.length)), banner);
  await conn.write(encoder.encode("ping"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readToEnd(conn)), "ping", "the service follows the banner");
  conn.close();
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")));
  const last = server.lines.find((l) => l.includes("Connection closed"))!;
  assert.match(last, new RegExp(` in=4 out=${bytes.length + 4} `), "the banner counts as sent");
});

Deno.test("a banner goes before a service that speaks first, too", async () => {
  await using server = await startServer(
    listenerToml({
      name: "t",
      service: "time",
      transport: "tcp",
      mode: "rfc868",
      listen: "127.0.0.1:0",
      banner: "B",
    }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("t") });
  const all = await readToEnd(conn);
  assert.equal(all.length, 5);
  assert.equal(all[0], 66);
});

function problems(keys: Record<string, unknown>): string[] {
  return listenerProblems({ service: "echo", listen: "127.0.0.1:0", ...keys });
}

Deno.test("banner is TCP only and bounded", () => {
  assert.deepEqual(problems({ banner: "hi", transport: "udp" }), [
    "t.toml:4: listener[0].banner: has no effect on a udp listener",
  ]);
  assert.match(problems({ banner: "x".repeat(65537) })[0]!, /banner: is over 65536 bytes/);
  assert.match(problems({ banner: 7 })[0]!, /banner: expected a string/);
  assert.deepEqual(problems({ banner: "hello\n" }), []);
});
