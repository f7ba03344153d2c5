/**
 * What the per-source table costs: heap per tracked source and time per
 * datagram check once the table is full (every check a new source, so
 * every check evicts), for the 100,000-source bound.
 *
 *   deno run -A --v8-flags=--expose-gc bench/source_table.ts
 *
 * @module
 */

import { SourceTable } from "../lib/source_limits.ts";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const table = new SourceTable({ rate: { count: 5, perMs: 1000 }, burst: 5, ipv6Prefix: 64 });
const total = 150_000;
gc();
const before = Deno.memoryUsage().heapUsed;
const started = performance.now();
for (let i = 0; i < total; i++) {
  const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  table.allowDatagram(table.keyOf(host), i * 0.01);
}
const ms = performance.now() - started;
gc();
const heap = Deno.memoryUsage().heapUsed - before;
console.log(
  `${total} sources → ${table.size} tracked; heap +${(heap / 1048576).toFixed(1)} MiB ` +
    `(${(heap / table.size).toFixed(0)} bytes per source); ${
      (ms * 1000 / total).toFixed(2)
    } µs per check`,
);
