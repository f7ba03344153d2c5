import assert from "node:assert/strict";
import {
  type GroupStrategy,
  liveGroupMembers,
  type OutputPipe,
  ProcessGroup,
  processInfo,
} from "../lib/process_group.ts";
import { waitFor } from "./_helpers.ts";

const ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };

async function readAll(pipe: OutputPipe | undefined): Promise<string> {
  if (!pipe) return "";
  const chunks: Uint8Array[] = [];
  let buffer: Uint8Array = new Uint8Array(4096);
  for (let i = 0; i < 100_000; i++) {
    const value = await pipe.read(buffer);
    if (value === null) break;
    chunks.push(value.slice());
    buffer = new Uint8Array(value.buffer);
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

/** Drains both pipes and waits for the leader; returns stdout. */
async function finish(group: ProcessGroup): Promise<string> {
  const [out] = await Promise.all([
    readAll(group.stdout),
    readAll(group.stderr),
    group.status,
  ]);
  return out;
}

for (const strategy of ["native", "setsid", "detached"] as GroupStrategy[]) {
  Deno.test(`process group (${strategy}): the command leads a new session and group`, async () => {
    const group = ProcessGroup.spawn("/bin/sh", {
      args: ["-c", "cat /proc/self/stat"],
      cwd: "/",
      env: ENV,
      stdin: "null",
      strategy,
    });
    const stat = await finish(group);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // cat is sh's child: same group and session, both led by sh (the pid we know).
    assert.equal(Number(fields[2]), group.pid, "process group id is the command's pid");
    assert.equal(Number(fields[3]), group.pid, "session id is the command's pid");
    assert.notEqual(processInfo(Deno.pid)!.pgid, group.pid);
  });

  Deno.test(`process group (${strategy}): terminate ends a grandchild that ignores SIGTERM`, async () => {
    const group = ProcessGroup.spawn("/bin/sh", {
      args: ["-c", `sh -c 'trap "" TERM; sleep 30' >/dev/null 2>&1 & echo started; sleep 30`],
      cwd: "/",
      env: ENV,
      stdin: "null",
      strategy,
    });
    await group.stdout.read(new Uint8Array(64)); // "started": the grandchild exists
    await waitFor(() => liveGroupMembers(group.pid).length >= 3);
    await group.terminate({ graceMs: 300 });
    await waitFor(() => liveGroupMembers(group.pid).length === 0);
    const status = await group.status;
    assert.equal(status.signal, "SIGTERM");
    group.stdout.cancel();
    group.stderr!.cancel();
  });
}

Deno.test("process group: terminate of a finished command with nothing left is immediate", async () => {
  const group = ProcessGroup.spawn("/bin/true", { args: [], cwd: "/", env: ENV, stdin: "null" });
  await finish(group);
  const started = performance.now();
  await group.terminate({ graceMs: 10_000 });
  assert.ok(performance.now() - started < 5000, "did not wait for the grace period");
  assert.equal(group.signal("SIGTERM"), false, "no process left in the group");
});

Deno.test("process group: the environment is exactly the one given", async () => {
  Deno.env.set("SWITCHBOARD_PG_TEST_LEAK", "leaked");
  try {
    const group = ProcessGroup.spawn("/usr/bin/env", {
      args: [],
      cwd: "/",
      env: { ...ENV, ONLY: "this" },
      stdin: "null",
    });
    const out = await finish(group);
    assert.deepEqual(out.trim().split("\n").sort(), [`ONLY=this`, `PATH=${ENV.PATH}`]);
  } finally {
    Deno.env.delete("SWITCHBOARD_PG_TEST_LEAK");
  }
});

Deno.test("process group: members are listed from /proc, zombies excluded", async () => {
  const group = ProcessGroup.spawn("/bin/sh", {
    args: ["-c", "sleep 30 & sleep 30"],
    cwd: "/",
    env: ENV,
    stdin: "null",
  });
  await waitFor(() => liveGroupMembers(group.pid).length === 3);
  assert.ok(liveGroupMembers(group.pid).includes(group.pid));
  group.kill();
  await finish(group);
  await waitFor(() => liveGroupMembers(group.pid).length === 0);
});
