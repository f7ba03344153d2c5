import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { MAX_SOURCES, sourceKey, SourceTable } from "../lib/source_limits.ts";
import { SERVICES } from "../handlers/mod.ts";

function listener(keys: string, transport = "tcp"): string {
  return `[[listener]]\nservice = "echo"\ntransport = "${transport}"\nlisten = "127.0.0.1:0"\n${keys}\n`;
}

function parse(toml: string) {
  return parseConfig(toml, "limits.toml", { services: SERVICES }).listeners[0]!;
}

Deno.test("source limits: the keys, their defaults and their mistakes", async (t) => {
  await t.step("no key: no limits", () => assert.equal(parse(listener("")).limits, undefined));
  await t.step("rate with the default burst (N of the rate) and prefix", () => {
    assert.deepEqual(parse(listener('rate = "20/s"')).limits, {
      rate: { count: 20, perMs: 1000 },
      burst: 20,
      ipv6Prefix: 64,
    });
  });
  await t.step("everything", () => {
    assert.deepEqual(
      parse(listener('max_per_source = 4\nrate = "600/m"\nburst = 5\nipv6_prefix = 48')).limits,
      { maxPerSource: 4, rate: { count: 600, perMs: 60_000 }, burst: 5, ipv6Prefix: 48 },
    );
  });
  await t.step("rate on udp", () => {
    assert.equal(parse(listener('rate = "2/s"', "udp")).limits?.rate?.count, 2);
  });
  const bad: [string, string, RegExp][] = [
    [
      "max_per_source on udp",
      listener("max_per_source = 2", "udp"),
      /max_per_source: has no effect on a udp listener/,
    ],
    [
      "a rate below 1 per period",
      listener('rate = "0.5/s"'),
      /rate: must be at least 1 per period/,
    ],
    ["a burst without a rate", listener("burst = 3"), /burst: needs a rate/],
    [
      "a zero max_per_source",
      listener("max_per_source = 0"),
      /max_per_source: 0 is below the minimum 1/,
    ],
    [
      "an ipv6_prefix of 16",
      listener('rate = "1/s"\nipv6_prefix = 16'),
      /ipv6_prefix: 16 is below the minimum 32/,
    ],
    ["a rate that is no rate", listener('rate = "fast"'), /rate: Cannot parse rate "fast"/],
  ];
  for (const [name, toml, expected] of bad) {
    await t.step(name, () => {
      assert.throws(() => parse(toml), { message: expected });
    });
  }
});

Deno.test("source limits: a source is an IPv4 address or an IPv6 prefix; IPv4-mapped is IPv4", () => {
  const cases: [string, number, string][] = [
    ["192.0.2.1", 64, "192.0.2.1"],
    ["::ffff:192.0.2.1", 64, "192.0.2.1"],
    ["::FFFF:192.0.2.1", 64, "192.0.2.1"],
    ["2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"],
    ["2001:db8:1:2::ffff", 64, "2001:db8:1:2::/64"],
    ["2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"],
    ["2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"],
    ["2001:db8:1:2ff:3:4:5:6", 56, "2001:db8:1:200::/56"],
    ["2001:db8::6", 128, "2001:db8::6"],
    ["fe80::1%eth0", 64, "fe80::/64"],
    ["::1", 64, "::/64"],
  ];
  for (const [host, prefix, key] of cases) assert.equal(sourceKey(host, prefix), key, host);
});

const RATE = { count: 2, perMs: 1000 };

Deno.test("source limits: max_per_source counts open connections per source", () => {
  const table = new SourceTable({ maxPerSource: 2, burst: 1, ipv6Prefix: 64 });
  assert.equal(table.admit("a", 0), undefined);
  assert.equal(table.admit("a", 0), undefined);
  assert.equal(table.admit("a", 0), "max_per_source");
  assert.equal(table.admit("b", 0), undefined, "another source is not affected");
  table.release("a");
  assert.equal(table.admit("a", 0), undefined);
  table.release("a");
  table.release("a");
  table.release("b");
  assert.equal(table.size, 0, "without a rate, a source with nothing open is forgotten");
  table.release("never-seen");
});

Deno.test("source limits: rate and burst are a token bucket per source", () => {
  const table = new SourceTable({ rate: RATE, burst: 3, ipv6Prefix: 64 });
  const taken = [0, 0, 0, 0].map(() => table.allowDatagram("a", 0));
  assert.deepEqual(taken, [true, true, true, false]);
  assert.equal(table.allowDatagram("b", 0), true);
  assert.equal(table.allowDatagram("a", 499), false);
  assert.equal(table.allowDatagram("a", 500), true, "2/s refills one token per 500 ms");
  assert.equal(table.allowDatagram("a", 500), false);
  // TCP: a refused connection (rate) takes nothing from max_per_source.
  const tcp = new SourceTable({ maxPerSource: 10, rate: RATE, burst: 1, ipv6Prefix: 64 });
  assert.equal(tcp.admit("c", 0), undefined);
  assert.equal(tcp.admit("c", 0), "rate");
  tcp.release("c");
  assert.equal(tcp.admit("c", 500), undefined);
});

Deno.test("source limits: a reload's new settings apply to the sources already known", () => {
  const table = new SourceTable({ maxPerSource: 1, burst: 1, ipv6Prefix: 64 });
  assert.equal(table.admit("a", 0), undefined);
  table.configure({ maxPerSource: 2, burst: 1, ipv6Prefix: 64 });
  assert.equal(table.admit("a", 0), undefined, "the open connection still counts: 2 of 2");
  assert.equal(table.admit("a", 0), "max_per_source");
});

Deno.test("source limits: the table is bounded; sources with open connections and newcomers are never hurt by it", () => {
  const table = new SourceTable(
    { maxPerSource: 1, rate: { count: 1, perMs: 60_000 }, burst: 1, ipv6Prefix: 64 },
    { maxSources: 1000 },
  );
  assert.equal(table.admit("holder", 0), undefined);
  assert.equal(table.admit("greedy", 0), undefined);
  table.release("greedy");
  assert.equal(table.admit("greedy", 1), "rate");
  // A flood of spoofed sources: five times what the table holds.
  for (let i = 0; i < 5000; i++) table.allowDatagram(`spoofed-${i}`, 2 + i * 0.001);
  assert.ok(table.size <= 1001, `size ${table.size}`);
  // The source holding a connection kept its count...
  assert.equal(table.admit("holder", 10), "max_per_source");
  // ...a newcomer gets a full bucket...
  assert.equal(table.admit("newcomer", 10), undefined);
  // ...and the greedy source was forgotten (evicted): it starts afresh, which is all a flood can buy.
  assert.equal(table.admit("greedy", 10), undefined);
});

Deno.test("source limits: the real bound is 100,000 sources", () => {
  // A slow rate: no bucket refills during the flood, so nothing expires early.
  const table = new SourceTable({ rate: { count: 1, perMs: 3_600_000 }, burst: 2, ipv6Prefix: 64 });
  for (let i = 0; i < 150_000; i++) {
    const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    table.allowDatagram(table.keyOf(host), i * 0.01);
  }
  assert.equal(table.size, MAX_SOURCES);
});

Deno.test("source limits: idle sources whose bucket is full again expire as new ones come", () => {
  const table = new SourceTable({ rate: RATE, burst: 2, ipv6Prefix: 64 });
  for (let i = 0; i < 100; i++) table.allowDatagram(`old-${i}`, 0);
  assert.equal(table.size, 100);
  // An hour later: each new source retires up to two expired ones.
  for (let i = 0; i < 100; i++) table.allowDatagram(`new-${i}`, 3_600_000);
  assert.ok(table.size <= 100, `size ${table.size}`);
});

Deno.test("source limits: a refused source is logged at most once a minute, a few lines a second in all", () => {
  const table = new SourceTable({ rate: RATE, burst: 1, ipv6Prefix: 64 });
  table.allowDatagram("a", 0);
  const logged = [0, 1000, 59_000, 60_000, 61_000].map((now) => table.shouldLog("a", now));
  assert.deepEqual(logged, [true, false, false, true, false]);
  let lines = 0;
  for (let i = 0; i < 1000; i++) {
    table.allowDatagram(`s${i}`, 100_000);
    if (table.shouldLog(`s${i}`, 100_000)) lines++;
  }
  assert.ok(lines <= 5, `${lines} lines in one instant`);
});
