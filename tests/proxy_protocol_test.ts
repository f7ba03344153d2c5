import assert from "node:assert/strict";
import {
  encodeProxyHeader,
  parseProxyHeader,
  type ProxyParse,
  readProxyHeader,
  V1_MAX,
  V2_SIGNATURE,
} from "../lib/proxy_protocol.ts";

const encoder = new TextEncoder();

function v2(command: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([
    ...V2_SIGNATURE,
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

const V2_TCP4 = v2(1, 0x11, [192, 0, 2, 7, 10, 0, 0, 1, 0xc7, 0x38, 0x01, 0xbb]);
const V2_TCP6 = v2(1, 0x21, [
  0x20,
  0x01,
  0x0d,
  0xb8,
  ...Array(11).fill(0),
  1,
  ...Array(15).fill(0),
  1,
  0x30,
  0x39,
  0x00,
  0x50,
]);
const V2_MAPPED = v2(1, 0x21, [
  ...Array(10).fill(0),
  0xff,
  0xff,
  198,
  51,
  100,
  9,
  ...Array(15).fill(0),
  1,
  0x04,
  0xd2,
  0x1e,
  0x61,
]);

type Expected =
  | { source: string; sourcePort: number; destination: string; destinationPort: number }
  | "local"
  | RegExp;

const CASES: [string, Uint8Array, Expected][] = [
  ["v1 TCP4", encoder.encode("PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n"), {
    source: "192.0.2.7",
    sourcePort: 51000,
    destination: "10.0.0.1",
    destinationPort: 443,
  }],
  ["v1 TCP6", encoder.encode("PROXY TCP6 2001:db8::1 ::1 12345 80\r\n"), {
    source: "2001:db8::1",
    sourcePort: 12345,
    destination: "::1",
    destinationPort: 80,
  }],
  [
    "v1 TCP6 with an IPv4-mapped client",
    encoder.encode("PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n"),
    {
      source: "192.0.2.9",
      sourcePort: 1,
      destination: "::1",
      destinationPort: 2,
    },
  ],
  ["v1 UNKNOWN (health check)", encoder.encode("PROXY UNKNOWN\r\n"), "local"],
  ["v1 UNKNOWN with addresses", encoder.encode("PROXY UNKNOWN ff::1 ff::2 1 2\r\n"), "local"],
  ["v2 PROXY TCP4", V2_TCP4, {
    source: "192.0.2.7",
    sourcePort: 51000,
    destination: "10.0.0.1",
    destinationPort: 443,
  }],
  ["v2 PROXY TCP6", V2_TCP6, {
    source: "2001:db8::1",
    sourcePort: 12345,
    destination: "::1",
    destinationPort: 80,
  }],
  ["v2 IPv4-mapped client", V2_MAPPED, {
    source: "198.51.100.9",
    sourcePort: 1234,
    destination: "::1",
    destinationPort: 7777,
  }],
  [
    "v2 with TLVs after the addresses",
    v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 0, 10, 0x04, 0, 2, 0xab, 0xcd]),
    {
      source: "1.2.3.4",
      sourcePort: 9,
      destination: "5.6.7.8",
      destinationPort: 10,
    },
  ],
  ["v2 LOCAL", v2(0, 0x00, []), "local"],
  ["v2 PROXY AF_UNSPEC", v2(1, 0x00, []), "local"],
  ["v2 PROXY AF_UNIX", v2(1, 0x31, Array(216).fill(0)), "local"],
  ["plain text", encoder.encode("GET / HTTP/1.1\r\n"), /starts with byte 0x47/],
  ["a TLS ClientHello", new Uint8Array([0x16, 3, 1, 0, 200]), /starts with byte 0x16/],
  ["PROXY misspelt", encoder.encode("PROXX TCP4"), /does not start with "PROXY "/],
  ["v1 unknown family", encoder.encode("PROXY UDP4 1.2.3.4 1.2.3.4 1 1\r\n"), /unknown v1 family/],
  ["v1 bad address", encoder.encode("PROXY TCP4 1.2.3 1.2.3.4 1 1\r\n"), /bad TCP4 address/],
  ["v1 IPv6 under TCP4", encoder.encode("PROXY TCP4 ::1 ::1 1 1\r\n"), /bad TCP4 address/],
  ["v1 port over 65535", encoder.encode("PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n"), /bad port/],
  [
    "v1 port with a leading zero",
    encoder.encode("PROXY TCP4 1.2.3.4 1.2.3.4 080 1\r\n"),
    /bad port/,
  ],
  ["v1 missing field", encoder.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), /5 fields/],
  ["v1 LF without CR", encoder.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1 1\n"), /CRLF/],
  ["v1 binary junk", encoder.encode("PROXY \u0001"), /not text/],
  ["v1 too long", encoder.encode("PROXY " + "x".repeat(V1_MAX)), /longer than 107/],
  ["v2 version 1", new Uint8Array([...V2_SIGNATURE, 0x11, 0x11, 0, 0]), /unknown v2 version 1/],
  ["v2 command 2", new Uint8Array([...V2_SIGNATURE, 0x22, 0x11, 0, 0]), /unknown v2 command 2/],
  ["v2 family 4", new Uint8Array([...V2_SIGNATURE, 0x21, 0x41, 0, 0]), /unknown v2 family/],
  ["v2 TCP4 block too short", v2(1, 0x11, [1, 2, 3, 4]), /too short/],
  ["v2 signature broken", new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x01]), /v2 signature/],
];

function check(name: string, parsed: ProxyParse, expected: Expected, length: number): void {
  if (expected instanceof RegExp) {
    assert.equal(parsed.kind, "invalid", name);
    assert.match((parsed as { message: string }).message, expected, name);
    return;
  }
  assert.equal(parsed.kind, "complete", `${name}: ${JSON.stringify(parsed)}`);
  if (parsed.kind !== "complete") return;
  const { header, length: used } = parsed;
  assert.equal(used, length, name);
  if (expected === "local") {
    assert.equal(header.command, "local", name);
    return;
  }
  assert.equal(header.command, "proxy", name);
  assert.deepEqual(header.source, {
    transport: "tcp",
    hostname: expected.source,
    port: expected.sourcePort,
  });
  assert.deepEqual(header.destination, {
    transport: "tcp",
    hostname: expected.destination,
    port: expected.destinationPort,
  });
}

Deno.test("proxy protocol: v1 and v2 headers parse, bad ones are named", async (t) => {
  for (const [name, bytes, expected] of CASES) {
    await t.step(name, () => {
      const trailing = encoder.encode("payload");
      const withData = new Uint8Array([...bytes, ...trailing]);
      check(name, parseProxyHeader(withData), expected, bytes.length);
    });
  }
});

Deno.test("proxy protocol: every prefix of a valid header is incomplete, never invalid", () => {
  for (const [name, bytes, expected] of CASES) {
    if (expected instanceof RegExp) continue;
    for (let cut = 0; cut < bytes.length; cut++) {
      const parsed = parseProxyHeader(bytes.subarray(0, cut));
      assert.equal(parsed.kind, "incomplete", `${name} cut at ${cut}: ${JSON.stringify(parsed)}`);
    }
  }
});

Deno.test("proxy protocol: the first byte that cannot begin a header is refused at once", () => {
  for (let byte = 0; byte < 256; byte++) {
    const parsed = parseProxyHeader(new Uint8Array([byte]));
    const possible = byte === 0x50 /* P */ || byte === 0x0d;
    assert.equal(parsed.kind, possible ? "incomplete" : "invalid", `byte ${byte}`);
  }
});

Deno.test("proxy protocol: random bytes never throw, and a complete header never claims bytes it was not given", () => {
  let seed = 12345;
  const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20_000; i++) {
    const prefix = i % 3 === 0 ? V2_SIGNATURE : i % 3 === 1 ? encoder.encode("PROXY ") : [];
    const bytes = new Uint8Array([
      ...prefix,
      ...Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)),
    ]);
    const parsed = parseProxyHeader(bytes);
    if (parsed.kind === "complete" && parsed.header.command === "proxy") {
      // Only a structurally valid v2 header can be: its length must fit.
      assert.ok(parsed.length <= bytes.length);
      assert.equal(parsed.header.version, 2);
    }
  }
});

Deno.test("proxy protocol: encode round-trips through parse, v1 and v2, IPv4 and IPv6", () => {
  const pairs: [string, string][] = [["192.0.2.7", "10.0.0.1"], ["2001:db8::7", "::1"], [
    "192.0.2.7",
    "::1",
  ]];
  for (const [from, to] of pairs) {
    for (const version of ["v1", "v2"] as const) {
      const source = { transport: "tcp" as const, hostname: from, port: 40000 };
      const destination = { transport: "tcp" as const, hostname: to, port: 443 };
      const bytes = encodeProxyHeader(version, source, destination);
      const parsed = parseProxyHeader(bytes);
      assert.equal(parsed.kind, "complete", `${version} ${from} → ${to}`);
      if (parsed.kind !== "complete") continue;
      assert.equal(parsed.length, bytes.length);
      assert.deepEqual(parsed.header.source, source);
      assert.equal(parsed.header.destination?.port, 443);
    }
  }
  assert.throws(
    () =>
      encodeProxyHeader("v1", { transport: "tcp", hostname: "example.org", port: 1 }, {
        transport: "tcp",
        hostname: "::1",
        port: 2,
      }),
    TypeError,
  );
});

Deno.test("proxy protocol: reading takes exactly the header, however the bytes are split", async () => {
  const header = encoder.encode("PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n");
  const stream = new Uint8Array([...header, ...encoder.encode("first request")]);
  for (const step of [1, 2, 7, 16, 1000]) {
    let offset = 0;
    const conn = {
      localAddr: { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 },
      read(p: Uint8Array): Promise<number | null> {
        if (offset >= stream.length) return Promise.resolve(null);
        const n = Math.min(step, p.length, stream.length - offset);
        p.set(stream.subarray(offset, offset + n));
        offset += n;
        return Promise.resolve(n);
      },
      write: (p: Uint8Array) => Promise.resolve(p.length),
      closeWrite: () => Promise.resolve(),
      close: () => {},
    };
    const { header: parsed, rest } = await readProxyHeader(conn, 1000);
    assert.equal(parsed.source?.hostname, "192.0.2.7");
    const after = new Uint8Array([...rest, ...stream.subarray(offset)]);
    assert.equal(new TextDecoder().decode(after), "first request", `step ${step}`);
  }
});
