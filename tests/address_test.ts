import assert from "node:assert/strict";
import {
  addressesOverlap,
  formatHostPort,
  isLoopback,
  type ListenAddress,
  normalizeHost,
  parseListenAddress,
} from "../lib/address.ts";

Deno.test("listen addresses parse as host:port, [v6]:port and :port", async (t) => {
  const cases: [string, ListenAddress][] = [
    ["127.0.0.1:7007", { hostname: "127.0.0.1", port: 7007, scope: "one" }],
    ["localhost:80", { hostname: "127.0.0.1", port: 80, scope: "one" }],
    ["0.0.0.0:7", { hostname: "0.0.0.0", port: 7, scope: "all4" }],
    [":7007", { hostname: "::", port: 7007, scope: "all" }],
    ["[::]:7007", { hostname: "::", port: 7007, scope: "all" }],
    ["[::1]:0", { hostname: "::1", port: 0, scope: "one" }],
    ["[2001:DB8::1]:443", { hostname: "2001:db8::1", port: 443, scope: "one" }],
    ["10.1.2.3:65535", { hostname: "10.1.2.3", port: 65535, scope: "one" }],
  ];
  for (const [text, expected] of cases) {
    await t.step(text, () => assert.deepEqual(parseListenAddress(text), expected));
  }
});

Deno.test("bad listen addresses are refused with the reason", async (t) => {
  const cases: [string, RegExp][] = [
    ["7007", /expected "host:port"/],
    ["127.0.0.1", /expected "host:port"/],
    ["127.0.0.1:70000", /port 70000 is over 65535/],
    ["::1:7007", /write IPv6 as \[addr\]:port/],
    ["example.com:80", /is not an IPv4 address/],
    ["999.1.1.1:80", /is not an IPv4 address/],
    ["[fe80::zz]:80", /is not an IPv6 address/],
    ["127.0.0.1:", /expected "host:port"/],
    ["", /expected "host:port"/],
  ];
  for (const [text, message] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseListenAddress(text), { name: "SyntaxError", message });
    });
  }
});

Deno.test("overlap follows what the kernel would refuse to bind", async (t) => {
  const cases: [string, string, boolean][] = [
    [":7007", "0.0.0.0:7007", true],
    [":7007", "[::]:7007", true],
    [":7007", "127.0.0.1:7007", true],
    [":7007", "[::1]:7007", true],
    ["0.0.0.0:7007", "127.0.0.1:7007", true],
    ["0.0.0.0:7007", "[::1]:7007", false],
    ["127.0.0.1:7007", "127.0.0.1:7007", true],
    ["127.0.0.1:7007", "127.0.0.2:7007", false],
    ["127.0.0.1:7007", "127.0.0.1:7008", false],
    ["127.0.0.1:0", "127.0.0.1:0", false],
  ];
  for (const [a, b, overlap] of cases) {
    await t.step(`${a} and ${b}: ${overlap}`, () => {
      const left = parseListenAddress(a);
      const right = parseListenAddress(b);
      assert.equal(addressesOverlap(left, right), overlap);
      assert.equal(addressesOverlap(right, left), overlap);
    });
  }
});

Deno.test("IPv4-mapped IPv6 peers are normalised to plain IPv4", () => {
  assert.equal(normalizeHost("::ffff:127.0.0.1"), "127.0.0.1");
  assert.equal(normalizeHost("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeHost("::1"), "::1");
  assert.equal(normalizeHost("::ffff:7f00:1"), "::ffff:7f00:1");
  assert.equal(normalizeHost("192.0.2.1"), "192.0.2.1");
});

Deno.test("addresses format with IPv6 in brackets and loopback is recognised", () => {
  assert.equal(formatHostPort("::1", 80), "[::1]:80");
  assert.equal(formatHostPort("127.0.0.1", 80), "127.0.0.1:80");
  assert.equal(isLoopback(parseListenAddress("127.0.0.5:1")), true);
  assert.equal(isLoopback(parseListenAddress("[::1]:1")), true);
  assert.equal(isLoopback(parseListenAddress(":1")), false);
  assert.equal(isLoopback(parseListenAddress("0.0.0.0:1")), false);
  assert.equal(isLoopback(parseListenAddress("192.168.1.1:1")), false);
});
