import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  bindAddress,
  DestinationAddresses,
  dottedQuad,
  formatIPv6,
  SOCKADDR_ROOM,
  SourceAddresses,
} from "../lib/sockaddr.ts";

/** 16 address bytes from eight hex groups. */
function groupBytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  text.split(":").map((g) => parseInt(g, 16)).forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** A socket address as the kernel writes one (little-endian family, network-order rest). */
function sockaddr(family: number, port: number, address: Uint8Array, scope = 0): Uint8Array {
  const name = new Uint8Array(SOCKADDR_ROOM);
  const view = new DataView(name.buffer);
  view.setUint16(0, family, true);
  view.setUint16(2, port, false);
  if (family === AF_INET) {
    name.set(address, 4);
  } else {
    name.set(address, 8);
    view.setUint32(24, scope, true);
  }
  return name;
}

Deno.test("sockaddr: IPv6 text is written as Deno writes it", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    // One zero group is not shortened; of equal runs the first is.
    ["2001:db8:0:1:1:1:0:1", "2001:db8:0:1:1:1:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"],
    ["1:2:0:0:3:0:0:4", "1:2::3:0:0:4"],
    ["fe80:0:0:0:abcd:ef01:2345:6789", "fe80::abcd:ef01:2345:6789"],
    ["ABCD:0:0:0:0:0:0:EF", "abcd::ef"],
    ["0:0:0:0:0:ffff:c000:280", "::ffff:192.0.2.128"],
    ["0:0:0:0:0:ffff:0:0", "::ffff:0.0.0.0"],
    // IPv4-compatible (deprecated) is not mapped: plain hex.
    ["0:0:0:0:0:0:c000:280", "::c000:280"],
  ];
  for (const [groups, text] of cases) assert.equal(formatIPv6(groupBytes(groups)), text, groups);
  // At an offset, as in a receive buffer.
  const padded = new Uint8Array(24);
  padded.set(groupBytes("2001:db8:0:0:0:0:0:1"), 8);
  assert.equal(formatIPv6(padded, 8), "2001:db8::1");
});

Deno.test("sockaddr: only a plain dotted quad is an IPv4 address", () => {
  const cases: [string, number][] = [
    ["0.0.0.0", 0],
    ["127.0.0.1", 0x7f000001],
    ["192.0.2.128", 0xc0000280],
    ["255.255.255.255", 0xffffffff],
    ["256.0.0.1", -1],
    ["1.2.3", -1],
    ["1.2.3.4.5", -1],
    ["1..2.3", -1],
    ["1.2.3.", -1],
    [".1.2.3", -1],
    ["1.2.3.0001", -1],
    ["::1", -1],
    ["::ffff:1.2.3.4", -1],
    ["", -1],
    ["localhost", -1],
  ];
  for (const [text, value] of cases) assert.equal(dottedQuad(text), value, text);
});

Deno.test("sockaddr: sources read as Deno reports them, one object per recent source", () => {
  const cases: [number, Uint8Array, number, string][] = [
    [AF_INET, new Uint8Array([127, 0, 0, 1]), 5000, "127.0.0.1"],
    [AF_INET, new Uint8Array([0, 0, 0, 0]), 1, "0.0.0.0"],
    [AF_INET6, groupBytes("0:0:0:0:0:ffff:7f00:1"), 5000, "::ffff:127.0.0.1"],
    [AF_INET6, groupBytes("0:0:0:0:0:0:0:1"), 65535, "::1"],
    [AF_INET6, groupBytes("2001:db8:0:0:1:0:0:1"), 53, "2001:db8::1:0:0:1"],
  ];
  const sources = new SourceAddresses();
  for (const [family, address, port, hostname] of cases) {
    const name = sockaddr(family, port, address);
    const addr = sources.read(name, new DataView(name.buffer), 0);
    assert.deepEqual({ ...addr }, { transport: "udp", hostname, port }, hostname);
    assert.equal(Object.getPrototypeOf(addr), null, "null-prototype, as Deno's");
    assert.equal(sources.read(name, new DataView(name.buffer), 0), addr, `${hostname} reused`);
  }
  // A scope id is not kept (Deno's datagram API drops it too).
  const scoped = sockaddr(AF_INET6, 7, groupBytes("fe80:0:0:0:0:0:0:1"), 3);
  assert.equal(sources.read(scoped, new DataView(scoped.buffer), 0).hostname, "fe80::1");
  // At an offset, as the receive batch stores them; a different port is a different source.
  const batch = new Uint8Array(SOCKADDR_ROOM * 2);
  batch.set(sockaddr(AF_INET, 1000, new Uint8Array([10, 0, 0, 1])), 0);
  batch.set(sockaddr(AF_INET, 1001, new Uint8Array([10, 0, 0, 1])), SOCKADDR_ROOM);
  const view = new DataView(batch.buffer);
  const a = sources.read(batch, view, 0);
  const b = sources.read(batch, view, SOCKADDR_ROOM);
  assert.deepEqual([a.port, b.port], [1000, 1001]);
  assert.notEqual(a, b);
});

Deno.test("sockaddr: destinations written for each socket family", () => {
  const cases: [number, string, Uint8Array | typeof Deno.errors.InvalidData][] = [
    [AF_INET, "127.0.0.1", sockaddr(AF_INET, 4242, new Uint8Array([127, 0, 0, 1]))],
    [AF_INET, "::ffff:192.0.2.1", sockaddr(AF_INET, 4242, new Uint8Array([192, 0, 2, 1]))],
    [AF_INET, "::1", Deno.errors.InvalidData],
    [AF_INET6, "127.0.0.1", sockaddr(AF_INET6, 4242, groupBytes("0:0:0:0:0:ffff:7f00:1"))],
    [AF_INET6, "::1", sockaddr(AF_INET6, 4242, groupBytes("0:0:0:0:0:0:0:1"))],
    [AF_INET6, "2001:db8::1:0:0:1", sockaddr(AF_INET6, 4242, groupBytes("2001:db8:0:0:1:0:0:1"))],
    [AF_INET6, "::ffff:10.1.2.3", sockaddr(AF_INET6, 4242, groupBytes("0:0:0:0:0:ffff:a01:203"))],
  ];
  for (const [family, hostname, expected] of cases) {
    const destinations = new DestinationAddresses(family);
    // Stale bytes in the slot must be overwritten, not kept.
    const name = new Uint8Array(SOCKADDR_ROOM).fill(0xee);
    const to = { transport: "udp", hostname, port: 4242 } as const;
    if (expected instanceof Uint8Array) {
      for (let round = 0; round < 2; round++) {
        const length = destinations.write(new DataView(name.buffer), 0, to);
        assert.equal(length, family === AF_INET6 ? 28 : 16, hostname);
        assert.deepEqual(name.subarray(0, length), expected.subarray(0, length), hostname);
      }
      // And it reads back as the source a reply would come from.
      const back = new SourceAddresses().read(name, new DataView(name.buffer), 0);
      assert.equal(back.port, 4242);
    } else {
      assert.throws(() => destinations.write(new DataView(name.buffer), 0, to), expected, hostname);
    }
  }
  assert.throws(
    () =>
      new DestinationAddresses(AF_INET).write(new DataView(new ArrayBuffer(32)), 0, {
        transport: "udp",
        hostname: "not-an-address",
        port: 1,
      }),
  );
});

Deno.test("sockaddr: bind addresses for IP literals only", () => {
  assert.deepEqual(
    bindAddress("127.0.0.1", 80)?.name.subarray(0, 16),
    sockaddr(AF_INET, 80, new Uint8Array([127, 0, 0, 1])).subarray(0, 16),
  );
  const any6 = bindAddress("::", 0);
  assert.equal(any6?.family, AF_INET6);
  assert.deepEqual(
    any6?.name.subarray(0, 28),
    sockaddr(AF_INET6, 0, new Uint8Array(16)).subarray(0, 28),
  );
  assert.equal(bindAddress("localhost", 80), undefined);
  assert.equal(bindAddress("", 80), undefined);
});
