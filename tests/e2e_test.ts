/**
 * End to end: one daemon subprocess running every service, driven by every
 * client verb as a subprocess, then reloaded with SIGHUP and stopped with
 * SIGTERM. With `$SWITCHBOARD_BIN` both sides are the built executable (the
 * test task runs this file that way too), so what users deploy is tested.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { UdpPeer } from "./_chat_peers.ts";
import { listenerToml, runCli, spawnDaemon } from "./_helpers.ts";

const TOKEN = "e2e-secret-token";

function config(root: string, echoTransform: "none" | "upper"): string {
  return [
    listenerToml({
      name: "echo-tcp",
      service: "echo",
      listen: "127.0.0.1:0",
      transform: echoTransform,
    }),
    listenerToml({ name: "echo-udp", service: "echo", transport: "udp", listen: "127.0.0.1:0" }),
    listenerToml({ name: "chat-udp", service: "chat", listen: "127.0.0.1:0", room: "lobby" }),
    listenerToml({
      name: "chat-tcp",
      service: "chat",
      transport: "tcp",
      listen: "127.0.0.1:0",
      room: "lobby",
    }),
    listenerToml({ name: "time-udp", service: "time", listen: "127.0.0.1:0", timezone: "UTC" }),
    listenerToml({
      name: "time-tcp",
      service: "time",
      transport: "tcp",
      listen: "127.0.0.1:0",
      timezone: "UTC",
    }),
    listenerToml({ name: "cmd", service: "cmd", listen: "127.0.0.1:0", token: TOKEN }),
    listenerToml({
      name: "file",
      service: "file",
      listen: "127.0.0.1:0",
      root,
      allow_upload: true,
    }),
  ].join("");
}

Deno.test("every service and every client verb, then SIGHUP and SIGTERM, end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sb-e2e-" });
  try {
    const root = join(dir, "served");
    await Deno.mkdir(root);
    await Deno.writeTextFile(join(root, "hello.txt"), "hello from the file service\n");
    const path = join(dir, "switchboard.toml");
    await Deno.writeTextFile(path, config(root, "none"));

    const checked = await runCli(["check", "-c", path]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /^cmd\s+cmd\s+tcp\s+127\.0\.0\.1:0/m);
    const version = await runCli(["version"]);
    assert.match(version.stdout, /^switchboard \d+\.\d+\.\d+ \(/);

    await using daemon = await spawnDaemon(["-c", path], { cwd: dir });
    const at = (name: string): string => `127.0.0.1:${daemon.port(name)}`;

    const echo = await runCli(["echo", at("echo-tcp"), "over", "tcp"]);
    assert.equal(echo.stdout, "over tcp\n", echo.stderr);
    const echoUdp = await runCli(["echo", "--udp", at("echo-udp"), "over", "udp"]);
    assert.equal(echoUdp.stdout, "over udp\n", echoUdp.stderr);

    const time = await runCli(["time", at("time-udp"), "%Y|%Z"]);
    assert.match(time.stdout, /^\d{4}\|UTC\n$/, time.stderr);
    const timeTcp = await runCli(["time", "--tcp", at("time-tcp"), "YYYY"]);
    assert.match(timeTcp.stdout, /^\d{4}\n$/, timeTcp.stderr);

    const cmd = await runCli(["cmd", at("cmd"), "--", "echo out; echo err >&2; exit 3"], {
      env: { SWITCHBOARD_TOKEN: TOKEN },
    });
    assert.equal(cmd.code, 3, cmd.stderr);
    assert.equal(cmd.stdout, "out\n");
    assert.equal(cmd.stderr, "err\n");
    const stdinCmd = await runCli(["cmd", at("cmd"), "--token", TOKEN, "--", "wc", "-c"], {
      stdin: "x".repeat(100_000),
    });
    assert.equal(stdinCmd.stdout.trim(), "100000", stdinCmd.stderr);

    const listed = await runCli(["ls", at("file")]);
    assert.match(listed.stdout, /^file\s+28B\s+.*hello\.txt$/m, listed.stderr);
    const got = await runCli(["get", at("file"), "hello.txt", "-"]);
    assert.equal(got.stdout, "hello from the file service\n", got.stderr);
    const local = join(dir, "upload.bin");
    const payload = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) % 256);
    await Deno.writeFile(local, payload);
    const put = await runCli(["put", at("file"), local, "up/loaded.bin"], { cwd: dir });
    assert.equal(put.code, 0, put.stderr);
    assert.deepEqual(await Deno.readFile(join(root, "up", "loaded.bin")), payload);

    // A datagram member and a TCP member of one room, and the chat verb (piped).
    await using member = new UdpPeer(daemon.port("chat-udp"));
    await member.send("/nick watcher");
    const chat = await runCli(
      ["chat", "--tcp", at("chat-tcp"), "--name", "e2e", "--wait", "300ms"],
      {
        stdin: "hello room\n",
      },
    );
    assert.equal(chat.code, 0, chat.stderr);
    const heard: string[] = [];
    for (let i = 0; i < 6 && !heard.includes("[e2e] hello room"); i++) {
      heard.push(await member.next());
    }
    assert.ok(heard.includes("[e2e] hello room"), heard.join(" | "));

    // SIGHUP: the changed listener keeps its port and serves with new settings.
    const port = daemon.port("echo-tcp");
    await Deno.writeTextFile(path, config(root, "upper"));
    daemon.child.kill("SIGHUP");
    await daemon.waitForLine(/INFO\s+Reloaded/);
    const upper = await runCli(["echo", `127.0.0.1:${port}`, "after", "reload"]);
    assert.equal(upper.stdout, "AFTER RELOAD\n", upper.stderr);

    // SIGTERM: a clean stop, exit 0.
    daemon.child.kill("SIGTERM");
    const status = await daemon.exit();
    assert.equal(status.code, 0, daemon.lines.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
