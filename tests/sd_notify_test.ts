import assert from "node:assert/strict";
import { fakeSystemd, spawnDaemon, tempConfig, waitFor } from "./_helpers.ts";

const CONFIG = '[[listener]]\nname = "e"\nservice = "echo"\nlisten = "127.0.0.1:0"\n';

Deno.test("under systemd the daemon reports READY, RELOADING, STOPPING and watchdog pings", async () => {
  await using config = await tempConfig(CONFIG);
  const systemd = fakeSystemd(`${config.dir}/notify`);
  try {
    await using daemon = await spawnDaemon(["-c", config.path], {
      env: { NOTIFY_SOCKET: `${config.dir}/notify`, WATCHDOG_USEC: "200000" },
    });
    await waitFor(() => systemd.messages.some((m) => m.startsWith("READY=1")));
    await waitFor(() => systemd.messages.filter((m) => m === "WATCHDOG=1").length >= 3);
    daemon.child.kill("SIGHUP");
    await daemon.waitForLine(/Reloaded/);
    await waitFor(() => systemd.messages.filter((m) => m.startsWith("READY=1")).length === 2);
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.exit()).code, 0);
    const states = systemd.messages.filter((m) => m !== "WATCHDOG=1").map((m) => m.split("\n")[0]);
    assert.deepEqual(states, ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
    const reloading = systemd.messages.find((m) => m.startsWith("RELOADING=1"))!;
    assert.match(reloading, /\nMONOTONIC_USEC=\d+$/);
    assert.match(systemd.messages[0]!, /^READY=1\nSTATUS=Serving 1 listener\(s\)$/);
  } finally {
    await systemd.close();
  }
});

Deno.test("an abstract notification socket (@name) works, and no watchdog runs unless asked", async () => {
  await using config = await tempConfig(CONFIG);
  const name = `switchboard-test-${crypto.randomUUID()}`;
  const systemd = fakeSystemd(`\0${name}`);
  try {
    await using daemon = await spawnDaemon(["-c", config.path], {
      env: { NOTIFY_SOCKET: `@${name}` },
    });
    await waitFor(() => systemd.messages.some((m) => m.startsWith("READY=1")));
    await new Promise((resolve) => setTimeout(resolve, 300));
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.exit()).code, 0);
    assert.ok(!systemd.messages.includes("WATCHDOG=1"));
    assert.ok(systemd.messages.some((m) => m.startsWith("STOPPING=1")));
  } finally {
    await systemd.close();
  }
});

Deno.test("a watchdog meant for another pid is not served", async () => {
  await using config = await tempConfig(CONFIG);
  const systemd = fakeSystemd(`${config.dir}/notify`);
  try {
    await using daemon = await spawnDaemon(["-c", config.path], {
      env: { NOTIFY_SOCKET: `${config.dir}/notify`, WATCHDOG_USEC: "100000", WATCHDOG_PID: "1" },
    });
    await waitFor(() => systemd.messages.some((m) => m.startsWith("READY=1")));
    await new Promise((resolve) => setTimeout(resolve, 300));
    daemon.child.kill("SIGTERM");
    await daemon.exit();
    assert.ok(!systemd.messages.includes("WATCHDOG=1"));
  } finally {
    await systemd.close();
  }
});
