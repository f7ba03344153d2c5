/**
 * The chat bus with real `switchboard serve` subprocesses: a daemon killed
 * outright, the link in STATUS= and in metrics, and credentials that never
 * reach a log line or `check`.
 */

import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { TcpPeer, UdpPeer } from "./_chat_peers.ts";
import { fakeSystemd, listenerToml, runCli, spawnDaemon, tempConfig, waitFor } from "./_helpers.ts";
import { freePort, startNatsServer } from "./_nats_server.ts";

function busConfig(bus: string, extra = ""): string {
  const room = { service: "chat", listen: "127.0.0.1:0", room: "lobby", bus };
  return extra + listenerToml({ name: "chat", ...room }) +
    listenerToml({ name: "chat-tcp", transport: "tcp", ...room });
}

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return await response.text();
}

Deno.test("chat bus daemons: a killed daemon's members leave the room after the peer timeout", async () => {
  await using nats = await startNatsServer();
  await using config = await tempConfig(busConfig(nats.url));
  await using one = await spawnDaemon(["-c", config.path]);
  await using two = await spawnDaemon(["-c", config.path]);
  await one.waitForLine(/linked to the bus/);
  await two.waitForLine(/linked to the bus/);
  await using a = await TcpPeer.connect(one.port("chat-tcp"));
  await a.send("/who");
  assertEquals(await a.next(), `* members: ${a.address}`);
  await using k = new UdpPeer(two.port("chat"));
  await k.send("");
  await k.send("/nick kim");
  assertEquals(await a.next(), `* ${k.address} joined`);
  assertEquals(await a.next(), `* ${k.address} is now kim`);
  two.child.kill("SIGKILL");
  const killedAt = performance.now();
  await two.exit();
  // No goodbye: the others notice the silence (3.5 s), not kim's member_ttl (10 min).
  assertEquals(await a.next(8000), "* kim left (timeout)");
  const waited = performance.now() - killedAt;
  assertEquals(waited < 8000, true);
  await a.send("/who");
  assertEquals(await a.next(), `* members: ${a.address}`);
  await one.waitForLine(/a daemon went silent; its members left .*members=1/);
});

Deno.test("chat bus daemons: the link shows in STATUS= and metrics, and credentials are never shown", async () => {
  const secret = "s3cret-Pa55";
  const port = freePort();
  const bus = `nats://ana:${secret}@127.0.0.1:${port}`;
  await using config = await tempConfig(
    busConfig(bus, `[daemon]\nmetrics = "127.0.0.1:0"\nlog_level = "debug"\n\n`),
  );
  const checked = await runCli(["check", "-c", config.path]);
  assertEquals(checked.code, 0);
  assertMatch(checked.stdout, new RegExp(`bus=nats://127\\.0\\.0\\.1:${port}`));
  assertEquals(checked.stdout.includes(secret), false);

  const systemd = fakeSystemd(`${config.dir}/notify`);
  try {
    // The bus is not there yet: the daemon is ready anyway and says why it is degraded.
    await using daemon = await spawnDaemon(["-c", config.path], {
      env: { NOTIFY_SOCKET: `${config.dir}/notify` },
    });
    const metricsPort = Number(
      /Metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(
        await daemon.waitForLine(/Metrics on/),
      )![1],
    );
    await daemon.waitForLine(/cannot reach the bus/);
    const linkDown = `link down: chat room "lobby" (nats://127.0.0.1:${port})`;
    await waitFor(() => systemd.messages.some((m) => m.startsWith("READY=1")));
    assertEquals(
      systemd.messages.find((m) => m.startsWith("READY=1")),
      `READY=1\nSTATUS=Serving 2 listener(s); ${linkDown}`,
    );
    assertMatch(
      await scrape(metricsPort),
      /^switchboard_link_up\{link="chat room \\"lobby\\"",target="nats:\/\/127\.0\.0\.1:\d+"\} 0$/m,
    );

    // The bus comes: the link is up within the back-off cap.
    await using nats = await startNatsServer({ port, args: ["--user", "ana", "--pass", secret] });
    await daemon.waitForLine(/linked to the bus/, 8000);
    await waitFor(() => systemd.messages.includes("STATUS=Serving 2 listener(s)"), 8000);
    const up = await scrape(metricsPort);
    assertMatch(up, /^switchboard_link_up\{[^}]*\} 1$/m);
    assertMatch(up, /^switchboard_link_connect_failures_total\{[^}]*\} [1-9]\d*$/m);

    // It goes away: logged, STATUS= says so, members are told once.
    await using member = await TcpPeer.connect(daemon.port("chat-tcp"));
    await member.send("/who");
    assertEquals(await member.next(), `* members: ${member.address}`);
    await nats.kill();
    await daemon.waitForLine(/link to the bus is down/);
    assertEquals(await member.next(), "* link to the room is down");
    await waitFor(() => systemd.messages.at(-1) === `STATUS=Serving 2 listener(s); ${linkDown}`);
    const down = await scrape(metricsPort);
    assertMatch(down, /^switchboard_link_up\{[^}]*\} 0$/m);
    assertMatch(down, /^switchboard_link_down_total\{[^}]*\} 1$/m);
    await nats.restart();
    await daemon.waitForLine(/link to the bus is back/, 8000);
    assertEquals(await member.next(), "* link to the room is back");
    await member.quiet(300);
    daemon.child.kill("SIGTERM");
    assertEquals((await daemon.exit()).code, 0);
    const log = daemon.lines.join("\n");
    assertEquals(log.includes(secret), false, "the password reached the log");
    assertEquals(log.includes("ana:"), false, "the user name and password reached the log");
  } finally {
    await systemd.close();
  }
});
