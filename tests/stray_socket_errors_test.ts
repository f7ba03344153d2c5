import assert from "node:assert/strict";
import * as net from "node:net";
import { ignoreStraySocketErrors, isStraySocketError } from "../lib/stray_socket_errors.ts";

function systemError(code: string, syscall?: string): Error {
  return Object.assign(new Error(`${syscall ?? "x"} ${code}`), { code, syscall });
}

Deno.test("stray socket errors: only disconnects from socket calls are strays", () => {
  const cases: [unknown, boolean][] = [
    [systemError("ECONNRESET", "read"), true],
    [systemError("EPIPE", "write"), true],
    [systemError("ECONNREFUSED", "connect"), true],
    [systemError("ETIMEDOUT"), true],
    [systemError("ENOENT", "open"), false],
    [systemError("ECONNRESET", "open"), false],
    [new TypeError("a bug"), false],
    ["ECONNRESET", false],
    [undefined, false],
  ];
  for (const [error, expected] of cases) assert.equal(isStraySocketError(error), expected);
});

Deno.test("stray socket errors: a reset on a socket nobody listens to is reported, not fatal", async () => {
  const seen: string[] = [];
  const stop = ignoreStraySocketErrors((error) => seen.push((error as { code?: string }).code!));
  const server = net.createServer((socket) => socket.resetAndDestroy());
  try {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect(port, "127.0.0.1", () => {
      client.removeAllListeners(); // as the NATS client does before it is done
      client.write("x");
    });
    for (let i = 0; i < 200 && seen.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(seen, ["ECONNRESET"]);
    client.destroy();
  } finally {
    stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
