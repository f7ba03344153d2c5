// A TCP listener admitting through a gate (a worker asking its supervisor):
// a reload while a connection waits for the answer, and answers that are
// not answers.

import assert from "node:assert/strict";
import type { AdmissionAnswer, AdmissionGate } from "../lib/admission.ts";
import { parseConfig } from "../lib/config.ts";
import type { Connection, ConnectionContext, ServiceInstance } from "../lib/service.ts";
import { TcpListener } from "../lib/tcp_listener.ts";
import { SERVICES } from "../handlers/mod.ts";
import { captureLog, listenerToml } from "./_helpers.ts";

const config = parseConfig(
  listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  "t.toml",
  { services: SERVICES },
).listeners[0]!;

/** An instance that notes who served and how often it was closed. */
function instance(name: string, served: string[]): ServiceInstance & { closes: number } {
  const made = {
    closes: 0,
    stream: async (conn: Connection, _context: ConnectionContext) => {
      served.push(made.closes > 0 ? `${name} after close` : name);
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      if (n !== null) await conn.write(buffer.subarray(0, n));
    },
    close: () => {
      made.closes++;
      return Promise.resolve();
    },
  };
  return made;
}

/** A gate that holds every question until the test answers it. */
function heldGate(): {
  gate: AdmissionGate;
  asked: Promise<void>;
  answer: (a: AdmissionAnswer | Error) => void;
} {
  const asked = Promise.withResolvers<void>();
  const answered = Promise.withResolvers<AdmissionAnswer>();
  let questions = 0;
  const gate: AdmissionGate = {
    admit: () => {
      questions++;
      asked.resolve();
      // Asked again (after a reload): admitted at once.
      if (questions > 1) return Promise.resolve({ admitted: true, release: () => {} });
      return answered.promise;
    },
  };
  return {
    gate,
    asked: asked.promise,
    answer: (a) => a instanceof Error ? answered.reject(a) : answered.resolve(a),
  };
}

async function echoOnce(conn: Deno.Conn): Promise<string | null> {
  await conn.write(new TextEncoder().encode("hi"));
  const buffer = new Uint8Array(16);
  const n = await conn.read(buffer);
  return n === null ? null : new TextDecoder().decode(buffer.subarray(0, n));
}

Deno.test("a connection waiting at the gate during a reload is served by the new instance", async () => {
  const socket = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: string[] = [];
  const old = instance("old", served);
  const fresh = instance("new", served);
  const held = heldGate();
  const { log } = captureLog();
  const running = new TcpListener(socket, config, old, log, { gate: held.gate });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (socket.addr as Deno.NetAddr).port,
  });
  let released = 0;
  try {
    await held.asked;
    running.replace(config, fresh);
    held.answer({ admitted: true, release: () => released++ });
    assert.equal(await echoOnce(conn), "hi");
    assert.deepEqual(served, ["new"]);
    assert.equal(released, 1, "the old generation's grant went back");
  } finally {
    conn.close();
    await running.stop(performance.now() + 1000);
  }
  assert.equal(old.closes, 1, "the old instance is closed once");
  assert.equal(fresh.closes, 1);
});

for (
  const [what, reply] of [
    ["throws", new Error("supervisor gone")],
    // A per-source reason on a listener without limits: nothing to count it under.
    ["names an unknown limit", { admitted: false, reason: "rate", log: true }],
  ] as const
) {
  Deno.test(`a gate that ${what} closes the connection and the listener serves on`, async () => {
    const socket = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served: string[] = [];
    const held = heldGate();
    const { log } = captureLog();
    const running = new TcpListener(socket, config, instance("one", served), log, {
      gate: held.gate,
    });
    const port = (socket.addr as Deno.NetAddr).port;
    const first = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await held.asked;
      held.answer(reply as AdmissionAnswer | Error);
      assert.equal(await first.read(new Uint8Array(16)), null, "closed unserved");
      const second = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        assert.equal(await echoOnce(second), "hi");
      } finally {
        second.close();
      }
      assert.deepEqual(served, ["one"]);
    } finally {
      first.close();
      await running.stop(performance.now() + 1000);
    }
  });
}
