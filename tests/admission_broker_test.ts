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
  assert.equal(broker.held("echo"), 2);
});

Deno.test("per-source limits and slots are shared, and a dead worker's share comes back", () => {
  const broker = new AdmissionBroker(() => 0);
  const limits = { maxPerSource: 1, burst: 100, ipv6Prefix: 64, rate: parseRate("100/s") };
  const request = { ...base, maxConnections: 10, host: "192.0.2.7", limits };
  assert.deepEqual(broker.admit(1, request), { ok: true, source: "192.0.2.7" });
  const refused = broker.admit(2, request);
  assert.equal(refused.reason, "max_per_source");
  assert.equal(broker.lease(1, { listener: "slots:run", max: 1, want: 16 }), 1);
  assert.equal(broker.lease(2, { listener: "slots:run", max: 1, want: 16 }), 0);
  // A release by a worker that holds nothing changes nothing.
  broker.release(2, { listener: "echo", connection: true, source: "192.0.2.7" });
  broker.giveBack(2, "slots:run", 1);
  assert.equal(broker.held("echo"), 1);
  assert.equal(broker.held("slots:run"), 1);
  broker.forget(1);
  assert.equal(broker.held("echo"), 0);
  assert.equal(broker.lease(2, { listener: "slots:run", max: 1, want: 16 }), 1);
  assert.deepEqual(broker.admit(2, request), { ok: true, source: "192.0.2.7" });
});

Deno.test("leases come in blocks far from the limit, one at a time near it or while revoking", () => {
  const broker = new AdmissionBroker(() => 0);
  const lease = { listener: "echo", max: 40, want: 16 };
  assert.equal(broker.lease(1, lease), 10); // a quarter of the room
  assert.equal(broker.lease(2, lease), 7);
  broker.revoking("echo", true);
  assert.equal(broker.lease(2, lease), 1);
  assert.deepEqual(broker.holders("echo").sort(), [1, 2]);
  broker.giveBack(1, "echo", 9);
  broker.revoking("echo", false);
  assert.equal(broker.held("echo"), 9);
  for (let i = 0; i < 31; i++) assert.ok(broker.lease(2, { ...lease, want: 1 }) === 1);
  assert.equal(broker.lease(1, lease), 0);
  // Giving back more than held gives back what is held.
  broker.giveBack(1, "echo", 99);
  assert.equal(broker.held("echo"), 39);
});
