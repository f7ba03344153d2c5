import assert from "node:assert/strict";
import { renderMetrics } from "../lib/metrics.ts";
import { emptyStats } from "../lib/running_listener.ts";
import { parseConfig } from "../lib/config.ts";
import { readBytes, spawnDaemon, tempConfig, udpRequest } from "./_helpers.ts";
import { SERVICES } from "../handlers/mod.ts";

Deno.test("metrics render in the Prometheus text format with escaped labels", () => {
  const text = renderMetrics([
    {
      name: 'we"ird',
      service: "echo",
      transport: "tcp",
      addr: { transport: "tcp", hostname: "::1", port: 7 },
      stats: { accepted: 3, refused: 1, denied: 2, active: 1, bytesIn: 10, bytesOut: 12 },
    },
    {
      name: "u",
      service: "echo",
      transport: "udp",
      addr: { transport: "udp", hostname: "127.0.0.1", port: 8 },
      stats: {
        accepted: 0,
        refused: 0,
        denied: 0,
        active: 0,
        bytesIn: 5,
        bytesOut: 5,
        datagrams: 4,
        dropped: 1,
      },
    },
  ], { version: "1.2.3", reloads: 2, failedReloads: 1, startedAt: 1_700_000_000_000 });
  const labels = 'listener="we\\"ird",service="echo",transport="tcp"';
  for (
    const line of [
      'switchboard_build_info{version="1.2.3"} 1',
      "switchboard_start_time_seconds 1700000000.000",
      'switchboard_reloads_total{result="ok"} 2',
      'switchboard_reloads_total{result="failed"} 1',
      `switchboard_listener_info{${labels},address="[::1]:7"} 1`,
      `switchboard_connections_accepted_total{${labels}} 3`,
      `switchboard_connections_refused_total{${labels}} 1`,
      `switchboard_connections_active{${labels}} 1`,
      `switchboard_denied_total{${labels}} 2`,
      `switchboard_received_bytes_total{${labels}} 10`,
      'switchboard_datagrams_total{listener="u",service="echo",transport="udp"} 4',
      'switchboard_datagrams_dropped_total{listener="u",service="echo",transport="udp"} 1',
      "# TYPE switchboard_connections_active gauge",
    ]
  ) assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
  assert.ok(!text.includes('switchboard_connections_accepted_total{listener="u"'));
  assert.ok(text.endsWith("\n"));
});

Deno.test("the metrics address may not overlap a tcp listener", () => {
  assert.throws(
    () =>
      parseConfig(
        '[daemon]\nmetrics = "127.0.0.1:7007"\n[[listener]]\nname = "e"\nservice = "echo"\nlisten = ":7007"\n',
        "m.toml",
        { services: SERVICES },
      ),
    { message: /m\.toml:2: daemon\.metrics: overlaps the tcp listener "e" \(:7007, line 3\)/ },
  );
});

Deno.test("the daemon serves /metrics and /healthz with live counters", async () => {
  await using config = await tempConfig(`[daemon]
metrics = "127.0.0.1:0"
[[listener]]
name = "tcp"
service = "echo"
listen = "127.0.0.1:0"
[[listener]]
name = "udp"
service = "echo"
transport = "udp"
listen = "127.0.0.1:0"
`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const line = await daemon.waitForLine(/Metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
  const base = line.match(/http:\/\/127\.0\.0\.1:\d+/)![0];
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.port("tcp") });
  await conn.write(new TextEncoder().encode("12345"));
  await readBytes(conn, 5);
  await udpRequest(daemon.port("udp"), new TextEncoder().encode("abc"));
  const response = await fetch(`${base}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  assert.match(
    text,
    /switchboard_connections_accepted_total\{listener="tcp",service="echo",transport="tcp"\} 1\n/,
  );
  assert.match(
    text,
    /switchboard_connections_active\{listener="tcp",service="echo",transport="tcp"\} 1\n/,
  );
  assert.match(
    text,
    /switchboard_received_bytes_total\{listener="tcp",service="echo",transport="tcp"\} 5\n/,
  );
  assert.match(
    text,
    /switchboard_datagrams_total\{listener="udp",service="echo",transport="udp"\} 1\n/,
  );
  const health = await fetch(`${base}/healthz`);
  assert.equal(await health.text(), "ok\n");
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("metrics: refusals by per-source limits, TLS and PROXY carry the listener and the reason", () => {
  const tcp = emptyStats("tcp");
  tcp.limited = { max_per_source: 4, rate: 2 };
  tcp.tlsFailures = { plain: 1, handshake: 0, timeout: 3 };
  tcp.proxyRejected = { untrusted: 5, malformed: 0, timeout: 0 };
  tcp.sources = 7;
  const udp = emptyStats("udp");
  udp.limited = { max_per_source: 0, rate: 9 };
  const text = renderMetrics([
    {
      name: "web",
      service: "echo",
      transport: "tcp",
      addr: { transport: "tcp", hostname: "127.0.0.1", port: 7 },
      tls: true,
      proxyProtocol: true,
      stats: tcp,
    },
    {
      name: "u",
      service: "time",
      transport: "udp",
      addr: { transport: "udp", hostname: "127.0.0.1", port: 37 },
      stats: udp,
    },
  ], { version: "1", reloads: 0, failedReloads: 0, startedAt: 0 });
  const lines = text.split("\n");
  for (
    const line of [
      "# TYPE switchboard_limited_total counter",
      'switchboard_limited_total{listener="web",reason="max_per_source"} 4',
      'switchboard_limited_total{listener="web",reason="rate"} 2',
      'switchboard_limited_total{listener="u",reason="rate"} 9',
      'switchboard_tls_handshake_failures_total{listener="web",reason="timeout"} 3',
      'switchboard_proxy_rejected_total{listener="web",reason="untrusted"} 5',
      'switchboard_limit_sources{listener="web",service="echo",transport="tcp"} 7',
    ]
  ) assert.ok(lines.includes(line), `missing: ${line}\n${text}`);
  assert.ok(!text.includes('switchboard_limited_total{listener="u",reason="max_per_source"}'));
  assert.ok(!text.includes('switchboard_tls_handshake_failures_total{listener="u"'));
});
