/** The supervisor's counts with workers: exact limits, and a dead worker's share given back. */

import assert from "node:assert/strict";
import { AdmissionBroker } from "../lib/admission_broker.ts";
import { parseRate } from "../lib/units.ts";

const base = { listener: "echo", connection: true, maxConnections: 2 };

Deno.test("max_connections counts every worker's connections together", () => {
  const broker = new AdmissionBroker(() => 0);
  assert.equal(broker.admit(1, base).ok, true);
  assert.equal(broker.admit(2, base).ok, true);
  assert.deepEqual(broker.admit(1, base), { ok: false, reason: "max_connections" });
  broker.release(2, { listener: "echo", connection: true });
  assert.equal(broker.admit(1, base).ok, true);
  assert.deepEqual(broker.held("echo"), { connections: 2, slots: 0 });
});

Deno.test("per-source limits and slots are shared, and a dead worker's share comes back", () => {
  const broker = new AdmissionBroker(() => 0);
  const limits = { maxPerSource: 1, burst: 100, ipv6Prefix: 64, rate: parseRate("100/s") };
  const request = { ...base, maxConnections: 10, host: "192.0.2.7", limits };
  assert.deepEqual(broker.admit(1, request), { ok: true, source: "192.0.2.7" });
  const refused = broker.admit(2, request);
  assert.equal(refused.reason, "max_per_source");
  assert.equal(broker.slot(1, "run", 1), true);
  assert.equal(broker.slot(2, "run", 1), false);
  // A release by a worker that holds nothing changes nothing.
  broker.release(2, { listener: "echo", connection: true, source: "192.0.2.7" });
  broker.unslot(2, "run");
  assert.deepEqual(broker.held("echo"), { connections: 1, slots: 0 });
  broker.forget(1);
  assert.deepEqual(broker.held("echo"), { connections: 0, slots: 0 });
  assert.equal(broker.slot(2, "run", 1), true);
  assert.deepEqual(broker.admit(2, request), { ok: true, source: "192.0.2.7" });
});
