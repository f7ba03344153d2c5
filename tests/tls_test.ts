import assert from "node:assert/strict";
import type { TLSSocket } from "node:tls";
import { parseConfig } from "../lib/config.ts";
import { NodeStreamConn } from "../lib/node_stream_conn.ts";
import { connectTls } from "../cli/tls_client.ts";
import { SERVICES } from "../handlers/mod.ts";
import { readBytes, runCli, spawnDaemon, startServer, tempConfig, waitFor } from "./_helpers.ts";
import { makeCert } from "./_tls_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function echoTls(cert: string, key: string, extra = ""): string {
  return `[[listener]]
name = "tls"
service = "echo"
listen = "127.0.0.1:0"
tls = { cert = "${cert}", key = "${key}" }
${extra}`;
}

async function echoOnce(
  conn: Pick<Deno.Conn, "read" | "write" | "close">,
  text: string,
): Promise<string> {
  await conn.write(encoder.encode(text));
  return decoder.decode(await readBytes(conn, text.length));
}

function fingerprintOf(conn: NodeStreamConn): string {
  return (conn.socket as TLSSocket).getPeerCertificate().fingerprint256;
}

Deno.test("tls: an echo listener speaks TLS with a self-signed openssl certificate", async () => {
  await using cert = await makeCert();
  await using server = await startServer(echoTls(cert.cert, cert.key));
  const address = { hostname: "127.0.0.1", port: server.port("tls") };
  using conn = await connectTls(address, { caFile: cert.cert, insecure: false });
  assert.equal(await echoOnce(conn as NodeStreamConn, "over tls\n"), "over tls\n");
  assert.equal(fingerprintOf(conn as NodeStreamConn), cert.fingerprint);
  // Half-close: the echo of everything sent still arrives, then end of stream.
  await conn.write(encoder.encode("last"));
  await conn.closeWrite();
  assert.equal(decoder.decode(await readBytes(conn, 4)), "last");
  assert.equal(await conn.read(new Uint8Array(8)), null);
});

Deno.test("tls: IPv6 and dual-stack listeners serve TLS on ::1", async () => {
  await using cert = await makeCert();
  for (const listen of ["[::1]:0", ":0"]) {
    const toml = echoTls(cert.cert, cert.key).replace('"127.0.0.1:0"', `"${listen}"`);
    await using server = await startServer(toml);
    const port = server.port("tls");
    for (const hostname of listen === ":0" ? ["::1", "127.0.0.1"] : ["::1"]) {
      using conn = await connectTls({ hostname, port }, { caFile: cert.cert, insecure: false });
      assert.equal(
        await echoOnce(conn as NodeStreamConn, `via ${hostname}\n`),
        `via ${hostname}\n`,
      );
    }
  }
});

Deno.test("tls: plain TCP and failed handshakes are closed, counted and harm no other connection", async () => {
  await using cert = await makeCert();
  await using other = await makeCert({ cn: "other" });
  await using server = await startServer(echoTls(cert.cert, cert.key));
  const port = server.port("tls");
  using good = await connectTls({ hostname: "127.0.0.1", port }, {
    caFile: cert.cert,
    insecure: false,
  });
  assert.equal(await echoOnce(good as NodeStreamConn, "before\n"), "before\n");

  // Plain TCP: the server closes without a byte.
  using plain = await Deno.connect({ hostname: "127.0.0.1", port });
  await plain.write(encoder.encode("hello in the clear\n"));
  assert.equal((await readBytes(plain, 1)).length, 0);
  // A client that trusts another certificate aborts the handshake.
  await assert.rejects(
    connectTls({ hostname: "127.0.0.1", port }, { caFile: other.cert, insecure: false }),
    { name: "TLS", message: /cannot verify 127\.0\.0\.1:\d+: self-signed certificate/ },
  );
  // A client that sends garbage that looks like a handshake record.
  using junk = await Deno.connect({ hostname: "127.0.0.1", port });
  await junk.write(new Uint8Array([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8]));
  assert.equal((await readBytes(junk, 1)).length, 0);

  assert.equal(await echoOnce(good as NodeStreamConn, "after\n"), "after\n");
  const stats = server.supervisor.listeners[0]!.stats;
  await waitFor(() => (server.supervisor.listeners[0]!.stats.tlsFailures?.handshake ?? 0) >= 2);
  assert.equal(stats.tlsFailures?.plain, 1);
  // Logged, but throttled: the first failure now, the rest counted into a later line.
  assert.ok(server.lines.some((l) => /Client did not start a TLS handshake/.test(l)));
  assert.equal(server.lines.filter((l) => /TLS handshake failed/.test(l)).length, 0);
});

Deno.test("tls: header_timeout bounds the handshake", async () => {
  await using cert = await makeCert();
  await using server = await startServer(
    echoTls(cert.cert, cert.key, 'header_timeout = "300ms"\n'),
  );
  using silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port("tls") });
  const started = performance.now();
  assert.equal((await readBytes(silent, 1, 5000)).length, 0);
  assert.ok(performance.now() - started < 4000, "closed by the timeout, not the test");
  await waitFor(() => server.supervisor.listeners[0]!.stats.tlsFailures?.timeout === 1);
});

Deno.test("tls: a reload with a new pair serves new connections with it; open ones keep theirs", async () => {
  await using first = await makeCert({ name: "first" });
  await using second = await makeCert({ name: "second", cn: "localhost" });
  await using config = await tempConfig(echoTls(first.cert, first.key));
  await using server = await startServer(await Deno.readTextFile(config.path));
  const port = server.port("tls");
  // Trust both: the test looks at which one is presented.
  const bundle = `${config.dir}/bundle.pem`;
  await Deno.writeTextFile(bundle, first.pem + second.pem);
  const tls = { caFile: bundle, insecure: false };
  using before = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;
  assert.equal(fingerprintOf(before), first.fingerprint);

  // Rotate the files in place, as certbot's deploy hook does, then reload.
  await Deno.copyFile(second.cert, first.cert);
  await Deno.copyFile(second.key, first.key);
  const rotated = parseConfig(echoTls(first.cert, first.key), "test.toml", {
    services: SERVICES,
  });
  const summary = await server.supervisor.apply(rotated);
  assert.deepEqual(summary.changed, ["tls"]);
  assert.equal(server.port("tls"), port, "the socket stays");

  using after = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;
  assert.equal(fingerprintOf(after), second.fingerprint);
  assert.equal(await echoOnce(after, "new pair\n"), "new pair\n");
  // The connection opened before the reload still works, with its pair.
  assert.equal(await echoOnce(before, "old pair\n"), "old pair\n");
  assert.equal(fingerprintOf(before), first.fingerprint);
});

Deno.test("tls: SIGHUP re-reads the pair; a bad new pair is refused and the old one stays", async () => {
  await using first = await makeCert({ name: "first" });
  await using second = await makeCert({ name: "second" });
  await using config = await tempConfig(echoTls(first.cert, first.key));
  await using daemon = await spawnDaemon(["-c", config.path]);
  const port = daemon.port("tls");
  const tls = { caFile: `${config.dir}/bundle.pem`, insecure: false };
  await Deno.writeTextFile(tls.caFile, first.pem + second.pem);
  using open = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;

  // A key that does not belong to the certificate: the reload is refused.
  await Deno.copyFile(second.key, first.key);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/does not belong to the certificate/);
  await daemon.waitForLine(/Reload refused/);
  using still = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;
  assert.equal(fingerprintOf(still), first.fingerprint);

  // The whole new pair: accepted, without touching the socket or open connections.
  await Deno.copyFile(second.cert, first.cert);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Settings changed; socket kept listener=tls/);
  using rotated = await connectTls({ hostname: "127.0.0.1", port }, tls) as NodeStreamConn;
  assert.equal(fingerprintOf(rotated), second.fingerprint);
  assert.equal(await echoOnce(open, "still here\n"), "still here\n");
  open.close();
  still.close();
  rotated.close();
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("tls: check refuses a readable key, a udp listener, a missing file and a mismatched pair", async (t) => {
  await using cert = await makeCert();
  await using other = await makeCert({ name: "other" });
  const cases: [string, string, RegExp][] = [
    [
      "a key readable by others",
      echoTls(cert.cert, `${cert.dir}/open.key`),
      /tls\.key: ".*open\.key" is readable by others \(mode 0644\): chmod 600 it/,
    ],
    [
      "tls on udp",
      echoTls(cert.cert, cert.key).replace(
        'service = "echo"',
        'service = "echo"\ntransport = "udp"',
      ),
      /listener\[0\]\.tls: TLS needs a tcp listener/,
    ],
    [
      "a missing certificate",
      echoTls(`${cert.dir}/none.pem`, cert.key),
      /tls\.cert: ".*none\.pem" does not exist/,
    ],
    [
      "a key of another certificate",
      echoTls(cert.cert, other.key),
      /tls\.key: ".*other\.key" does not belong to the certificate/,
    ],
    ["a certificate that is not PEM", echoTls(cert.key, cert.key), /is not a PEM certificate/],
    [
      "a table without key",
      echoTls(cert.cert, cert.key).replace(/, key = "[^"]*"/, ""),
      /tls\.key: is required/,
    ],
  ];
  await Deno.copyFile(cert.key, `${cert.dir}/open.key`);
  await Deno.chmod(`${cert.dir}/open.key`, 0o644);
  for (const [name, toml, expected] of cases) {
    await t.step(name, async () => {
      await using config = await tempConfig(toml);
      const result = await runCli(["check", "-c", config.path]);
      assert.equal(result.code, 78, result.stderr);
      assert.match(result.stderr, expected);
    });
  }
  await t.step("serve exits 78 on a readable key", async () => {
    await using config = await tempConfig(echoTls(cert.cert, `${cert.dir}/open.key`));
    const result = await runCli(["serve", "-c", config.path]);
    assert.equal(result.code, 78);
    assert.match(result.stderr, /readable by others/);
  });
  await t.step("check shows the certificate and its expiry", async () => {
    await using config = await tempConfig(echoTls(cert.cert, cert.key));
    const result = await runCli(["check", "-c", config.path]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /tls=.*server\.pem \(until \d{4}-\d\d-\d\d\)/);
  });
});
