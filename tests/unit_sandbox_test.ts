import assert from "node:assert/strict";
import { ROOT, runCli, spawnDaemon, tempConfig, udpRequest, waitFor } from "./_helpers.ts";
import { makeCert } from "./_tls_helpers.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// Outside the filter, and harmless: sqlite (Deno's module cache under
// `deno run`) chowns its files when the process is root, which the unit's
// dynamic user never is.
const EXPLAINED = new Set(["fchown"]);

async function expand(group: string, seen = new Set<string>()): Promise<Set<string>> {
  const output = await new Deno.Command("systemd-analyze", { args: ["syscall-filter", group] })
    .output();
  assert.ok(output.success, `systemd-analyze syscall-filter ${group}`);
  const names = new Set<string>();
  for (const line of decoder.decode(output.stdout).split("\n").slice(1)) {
    const item = line.trim();
    if (item === "" || item.startsWith("#")) continue;
    if (item.startsWith("@")) {
      if (seen.has(item)) continue;
      seen.add(item);
      for (const name of await expand(item, seen)) names.add(name);
    } else {
      names.add(item);
    }
  }
  return names;
}

/** The system calls the unit's SystemCallFilter= lines allow. */
async function allowedByUnit(): Promise<Set<string>> {
  const text = await Deno.readTextFile(`${ROOT}/deploy/switchboard.service`);
  const lines = [...text.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => m[1]!.trim());
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith("~");
    for (const item of line.replace(/^~/, "").split(/\s+/)) {
      const names = item.startsWith("@") ? await expand(item) : new Set([item]);
      for (const name of names) deny ? allowed.delete(name) : allowed.add(name);
    }
  }
  return allowed;
}

Deno.test("unit: every system call the daemon and its commands make is inside the unit's SystemCallFilter", async () => {
  const allowed = await allowedByUnit();
  assert.ok(allowed.has("read") && allowed.has("epoll_wait") && !allowed.has("setuid"));
  await using cert = await makeCert();
  await using config = await tempConfig("");
  const trace = `${config.dir}/strace.out`;
  await Deno.writeTextFile(`${config.dir}/data.txt`, "some data\n");
  await Deno.writeTextFile(
    config.path,
    `[[listener]]
name = "echo"
service = "echo"
listen = "127.0.0.1:0"
tls = { cert = "${cert.cert}", key = "${cert.key}" }
rate = "100/s"
max_per_source = 10
[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:0"
token = "t"
[[listener]]
name = "files"
service = "file"
listen = "[::1]:0"
root = "${config.dir}"
allow_upload = true
[[listener]]
name = "time"
service = "time"
listen = "127.0.0.1:0"
[[listener]]
name = "chat"
service = "chat"
listen = "127.0.0.1:0"
rate = "50/s"
`,
  );
  await using daemon = await spawnDaemon(["-c", config.path], {
    wrapper: ["strace", "-f", "-qq", "-o", trace],
  });
  const at = (name: string): string =>
    name === "files" ? `[::1]:${daemon.port(name)}` : `127.0.0.1:${daemon.port(name)}`;
  const steps = await Promise.all([
    runCli(["echo", at("echo"), "hello", "--ca", cert.cert]),
    runCli(["cmd", at("cmd"), "--token", "t", "--", "ls / >/dev/null; date; sleep 0.1"]),
    runCli(["get", at("files"), "data.txt", "-"]),
    runCli(["put", at("files"), `${config.dir}/data.txt`, "copy.txt"]),
    runCli(["chat", at("chat"), "--wait", "100ms"], { stdin: "hi\n" }),
  ]);
  for (const step of steps) assert.equal(step.code, 0, step.stderr);
  assert.ok(await udpRequest(daemon.port("time"), encoder.encode("%Y")));
  // The daemon's own pid is the first traced process.
  const pid = Number(/^(\d+) /.exec(await Deno.readTextFile(trace))![1]);
  Deno.kill(pid, "SIGHUP");
  await daemon.waitForLine(/Reloaded/);
  Deno.kill(pid, "SIGTERM");
  await waitFor(() => daemon.lines.some((l) => /Stopped/.test(l)), 15_000);
  await daemon.exit();

  const used = new Set<string>();
  for (const line of (await Deno.readTextFile(trace)).split("\n")) {
    const name = /^\d+ +([a-z_0-9]+)\(/.exec(line)?.[1];
    if (name) used.add(name);
  }
  assert.ok(used.size > 30, `only ${used.size} system calls traced`);
  const outside = [...used].filter((name) => !allowed.has(name) && !EXPLAINED.has(name)).sort();
  assert.deepEqual(outside, [], `outside the unit's filter: ${outside.join(" ")}`);
});
