import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { encodeProxyHeader } from "../lib/proxy_protocol.ts";
import { connDuplex, NodeStreamConn } from "../lib/node_stream_conn.ts";
import { readBytes, startServer, waitFor } from "./_helpers.ts";
import { makeCert } from "./_tls_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function client(hostname: string, port: number): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

const SERVER = client("203.0.113.1", 7008);

/** Connects from loopback (the "load balancer") and sends a PROXY header for `from`. */
async function viaProxy(
  port: number,
  from: Deno.NetAddr | "local",
  version: "v1" | "v2" = "v1",
  hostname = "127.0.0.1",
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname, port });
  const header = from === "local"
    ? encoder.encode("PROXY UNKNOWN\r\n")
    : encodeProxyHeader(version, from, SERVER);
  await conn.write(header);
  return conn;
}

/** Reads one line (bounded). */
async function line(conn: Deno.Conn): Promise<string> {
  let text = "";
  const deadline = performance.now() + 5000;
  while (!text.includes("\n") && performance.now() < deadline) {
    const chunk = await readBytes(conn, 1, 5000);
    if (chunk.length === 0) break;
    text += decoder.decode(chunk);
  }
  return text.trimEnd();
}

function chat(extra: string): string {
  return `[[listener]]
name = "chat"
service = "chat"
transport = "tcp"
listen = "127.0.0.1:0"
proxy_protocol = ["127.0.0.0/8", "::1"]
${extra}`;
}

Deno.test("proxy: the client in the PROXY header is the member's name (v1 and v2, IPv4 and IPv6)", async () => {
  await using server = await startServer(chat(""));
  const port = server.port("chat");
  using a = await viaProxy(port, client("192.0.2.7", 51000), "v1");
  await a.write(encoder.encode("/who\n"));
  assert.equal(await line(a), "* members: 192.0.2.7:51000");
  using b = await viaProxy(port, client("2001:db8::5", 4242), "v2");
  await b.write(encoder.encode("/who\n"));
  assert.equal(await line(b), "* members: 192.0.2.7:51000, [2001:db8::5]:4242");
  assert.equal(await line(a), "* [2001:db8::5]:4242 joined");
  await b.write(encoder.encode("hello\n"));
  assert.equal(await line(a), "[[2001:db8::5]:4242] hello");
  // A health check (UNKNOWN / LOCAL) keeps the load balancer's own address.
  using check = await viaProxy(port, "local");
  await check.write(encoder.encode("/who\n"));
  assert.match(await line(check), /^\* members: .*127\.0\.0\.1:\d+$/);
});

Deno.test("proxy: allow/deny and per-source limits apply to the real client", async () => {
  await using server = await startServer(chat('deny = ["192.0.2.0/24"]\nmax_per_source = 1\n'));
  const port = server.port("chat");
  using denied = await viaProxy(port, client("192.0.2.7", 1000));
  assert.equal((await readBytes(denied, 1)).length, 0, "a denied client is closed");
  using first = await viaProxy(port, client("198.51.100.1", 1000));
  await first.write(encoder.encode("/who\n"));
  assert.equal(await line(first), "* members: 198.51.100.1:1000");
  // Same client, another port: over max_per_source, though every connection is from 127.0.0.1.
  using second = await viaProxy(port, client("198.51.100.1", 1001));
  assert.equal((await readBytes(second, 1)).length, 0);
  using other = await viaProxy(port, client("198.51.100.2", 1000));
  await other.write(encoder.encode("/who\n"));
  assert.match(await line(other), /198\.51\.100\.2:1000/);
  const stats = server.supervisor.listeners[0]!.stats;
  assert.equal(stats.denied, 1);
  assert.equal(stats.limited?.max_per_source, 1);
  assert.ok(server.lines.some((l) => /denied by access rules.*peer=192\.0\.2\.7:1000/.test(l)));
  assert.ok(
    server.lines.some((l) => /max_per_source \(1\) reached.*peer=198\.51\.100\.1:1001/.test(l)),
  );
});

Deno.test("proxy: an unlisted peer, a malformed header and a slow header are closed", async () => {
  await using server = await startServer(`[[listener]]
name = "behind"
service = "echo"
listen = "127.0.0.1:0"
proxy_protocol = ["10.0.0.0/8"]
[[listener]]
name = "lb"
service = "echo"
listen = "127.0.0.1:0"
proxy_protocol = ["127.0.0.1"]
header_timeout = "300ms"
`);
  // 127.0.0.1 is not a listed load balancer: closed at once, even with a valid header.
  using unlisted = await viaProxy(server.port("behind"), client("192.0.2.7", 1));
  assert.equal((await readBytes(unlisted, 1)).length, 0);
  // A listed peer whose first bytes are no PROXY header.
  using plain = await Deno.connect({ hostname: "127.0.0.1", port: server.port("lb") });
  await plain.write(encoder.encode("hello\n"));
  assert.equal((await readBytes(plain, 1)).length, 0);
  // Half a header, then silence: cut by header_timeout.
  using slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port("lb") });
  await slow.write(encoder.encode("PROXY TCP4 192.0.2"));
  assert.equal((await readBytes(slow, 1, 5000)).length, 0);
  // And a proper one is served, its payload intact.
  using good = await viaProxy(server.port("lb"), client("192.0.2.9", 9));
  await good.write(encoder.encode("echoed\n"));
  assert.equal(decoder.decode(await readBytes(good, 7)), "echoed\n");
  const [behind, lb] = server.supervisor.listeners;
  assert.equal(behind!.stats.proxyRejected?.untrusted, 1);
  await waitFor(() => server.supervisor.listeners[1]!.stats.proxyRejected?.timeout === 1);
  assert.equal(lb!.stats.proxyRejected?.malformed, 1);
  assert.ok(server.lines.some((l) => /not listed in proxy_protocol/.test(l)));
});

Deno.test("proxy: the PROXY header comes before the TLS handshake, on IPv6 too", async () => {
  await using cert = await makeCert();
  await using server = await startServer(`[[listener]]
name = "tls"
service = "chat"
transport = "tcp"
listen = "[::1]:0"
proxy_protocol = ["::1"]
tls = { cert = "${cert.cert}", key = "${cert.key}" }
`);
  const raw = await viaProxy(server.port("tls"), client("2001:db8::77", 5555), "v2", "::1");
  const socket: TLSSocket = tlsConnect({ socket: connDuplex(raw), ca: cert.pem });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  using conn = new NodeStreamConn(socket);
  await conn.write(encoder.encode("/who\n"));
  assert.equal(decoder.decode(await readBytes(conn, 31)), "* members: [2001:db8::77]:5555\n");
});
