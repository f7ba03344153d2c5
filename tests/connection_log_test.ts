import assert from "node:assert/strict";
import { listenerToml, readBytes, startServer, waitFor } from "./_helpers.ts";

const encoder = new TextEncoder();

Deno.test("every connection ends with one line: peer, duration, bytes in and out, outcome", async () => {
  await using server = await startServer(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0", idle_timeout: "200ms" }),
  );
  const port = server.port("e");
  const closed = (): string[] => server.lines.filter((l) => l.includes("Connection closed"));
  let local: number;
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    local = conn.localAddr.port;
    await conn.write(encoder.encode("hello"));
    await readBytes(conn, 5);
  }
  await waitFor(() => closed().length === 1);
  assert.match(
    closed()[0]!,
    new RegExp(
      `^\\S+ INFO  Connection closed listener=e peer=127\\.0\\.0\\.1:${local} ms=\\d+ in=5 out=5 ` +
        `outcome=closed$`,
    ),
  );
  // One left idle is cut, and its line says so.
  using _idle = await Deno.connect({ hostname: "127.0.0.1", port });
  await waitFor(() => closed().length === 2);
  assert.match(closed()[1]!, / in=0 out=0 outcome=idle$/);
});
