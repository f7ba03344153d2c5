import assert from "node:assert/strict";
import { renderStatusPage } from "../lib/status_page.ts";
import { emptyStats } from "../lib/running_listener.ts";
import { runCli, spawnDaemon, tempConfig } from "./_helpers.ts";

Deno.test("status page: listeners, addresses, connections and service status, escaped", () => {
  const html = renderStatusPage([
    {
      name: "<chat>",
      service: "chat",
      transport: "udp",
      addr: { transport: "udp", hostname: "::1", port: 7008 },
      listen: "[::1]:7008",
      stats: { ...emptyStats("udp"), datagrams: 12, service: { members: 3 } },
    },
    {
      name: "web",
      service: "echo",
      transport: "tcp",
      addr: { transport: "tcp", hostname: "0.0.0.0", port: 7 },
      listen: "fd:echo",
      tls: true,
      stats: { ...emptyStats("tcp"), active: 2, accepted: 9 },
    },
  ], {
    version: "1.2.3",
    reloads: 1,
    failedReloads: 1,
    startedAt: 0,
    config: "/etc/switchboard/switchboard.toml",
    lastReload: { at: 60_000, ok: false, summary: "the new configuration is invalid" },
  }, 3_723_000);
  assert.match(html, /<title>switchboard 1\.2\.3<\/title>/);
  assert.match(html, /&lt;chat&gt;/);
  assert.doesNotMatch(html, /<chat>/);
  assert.match(html, /\[::1\]:7008/);
  assert.match(html, /members 3/);
  assert.match(html, /0\.0\.0\.0:7 \(fd:echo, from systemd\)/);
  assert.match(html, /<td>TLS<\/td><td class="n">2<\/td>/);
  assert.match(html, /failed at 1970-01-01 00:01:00 UTC: the new configuration is invalid/);
  assert.match(html, /1h 2m/);
  assert.match(html, /2 connection\(s\) open/);
});

Deno.test("status page: the daemon serves it at / with live members, commands and the last reload", async () => {
  await using config = await tempConfig(`[daemon]
metrics = "127.0.0.1:0"
[[listener]]
name = "chat"
service = "chat"
transport = "tcp"
listen = "127.0.0.1:0"
[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:0"
token = "t"
`);
  await using daemon = await spawnDaemon(["-c", config.path]);
  const metrics =
    /Metrics on (http:\/\/[^/]+)\/metrics/.exec(await daemon.waitForLine(/Metrics on/))![1];
  const page = async (): Promise<string> => {
    const response = await fetch(`${metrics}/`);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    return await response.text();
  };
  using member = await Deno.connect({ hostname: "127.0.0.1", port: daemon.port("chat") });
  const running = runCli([
    "cmd",
    `127.0.0.1:${daemon.port("cmd")}`,
    "--token",
    "t",
    "--",
    "sleep 1.5",
  ]);
  let html = "";
  for (let i = 0; i < 100 && !(/running 1/.test(html) && /members 1/.test(html)); i++) {
    html = await page();
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  assert.match(
    html,
    /<td>chat<\/td><td>chat<\/td><td>tcp<\/td><td>127\.0\.0\.1:\d+<\/td><td><\/td><td class="n">1<\/td><td>members 1<\/td>/,
  );
  assert.match(html, /<td>cmd<\/td>.*<td>running 1<\/td>/);
  assert.match(html, /none since start/);
  assert.equal((await running).code, 0);
  daemon.child.kill("SIGHUP");
  await daemon.waitForLine(/Reloaded/);
  assert.match(
    await page(),
    /Last reload<\/dt><dd>ok at .*: 0 added, 0 changed, 2 kept, 0 removed \(1 ok, 0 failed\)/,
  );
  member.close();
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});
