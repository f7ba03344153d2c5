import assert from "node:assert/strict";
import { listenerToml, readToEnd, startServer, udpRequest, waitFor } from "./_helpers.ts";

Deno.test("discard over TCP reads everything, sends nothing, and closes after the client's EOF", async () => {
  await using server = await startServer(
    listenerToml({ name: "d", service: "discard", listen: "127.0.0.1:0" }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("d") });
  const payload = new Uint8Array(1 << 20).fill(0x61);
  let rest: Uint8Array = payload;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
  await conn.closeWrite();
  assert.equal((await readToEnd(conn)).length, 0, "not one byte comes back");
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")));
  const last = server.lines.find((l) => l.includes("Connection closed"))!;
  assert.match(last, / in=1048576 out=0 outcome=closed/);
});

Deno.test("discard over TCP shrugs off a client that resets", async () => {
  await using server = await startServer(
    listenerToml({ name: "d", service: "discard", listen: "127.0.0.1:0" }),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("d") });
  await conn.write(new Uint8Array(1000));
  conn.close();
  await waitFor(() => server.lines.some((l) => l.includes("Connection closed")));
  assert.ok(!server.lines.some((l) => l.includes("WARN")), server.lines.join("\n"));
});

Deno.test("discard over UDP drops datagrams and answers none", async () => {
  await using server = await startServer(
    listenerToml({ name: "du", service: "discard", transport: "udp", listen: "127.0.0.1:0" }),
  );
  const reply = await udpRequest(server.port("du"), new TextEncoder().encode("into the void"), {
    timeoutMs: 300,
  });
  assert.equal(reply, null);
  const stats = server.supervisor.listeners[0]!.stats;
  assert.equal(stats.datagrams, 1);
  assert.equal(stats.bytesIn, 13);
  assert.equal(stats.bytesOut, 0);
});
