/**
 * Containment of what cmd runs, on a real daemon subprocess: a fork loop
 * (children double-forked away from their parent), a command that ignores
 * SIGTERM, and a client that vanishes mid-run all end with nothing left
 * running. Every process a command starts carries a marker in its
 * environment (the listener's `env`), and /proc is searched for it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeFrame, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { listenerToml, spawnDaemon, tempConfig } from "./_helpers.ts";
import { fdCount, reaches, steady, within } from "./_hostile.ts";

const MARKER = `SB_HOSTILE_${crypto.randomUUID().slice(0, 8)}`;

/**
 * PIDs of live processes whose environment carries the marker (zombies have
 * none), except the listener's idle pooled leaders: a pooled leader leads its
 * own group and runs the pool's bootstrap (a forked subshell of a command
 * keeps that command line too, but is not a group leader).
 */
function marked(): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (!Deno.readTextFileSync(`/proc/${entry.name}/environ`).includes(MARKER)) continue;
      const pgid = Number(
        Deno.readTextFileSync(`/proc/${entry.name}/stat`).split(") ")[1]!.split(" ")[2],
      );
      const idleLeader = pgid === Number(entry.name) &&
        Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes("read -r __sb_l");
      if (!idleLeader) found.push(Number(entry.name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

async function noneLeft(timeoutMs: number): Promise<number[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = marked();
    if (left.length === 0 || performance.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs shell text and returns the exit frame. */
async function run(port: number, cmd: string, timeoutMs: number): Promise<FrameHeader> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encodeFrame({ op: "exec", cmd, timeout_ms: timeoutMs }));
  const reader = new FrameReader(conn);
  const sink = new Uint8Array(65536);
  for (;;) {
    const header = await within(reader.readHeader(), 15_000);
    if (!header) throw new Error("No exit frame");
    if (header.op === "exit") return header;
    while ((await reader.readBody(sink)) !== null) { /* output is not checked */ }
  }
}

Deno.test("cmd contains fork loops, TERM-ignoring commands and vanished clients: nothing is left", async () => {
  await using config = await tempConfig("");
  await Deno.writeTextFile(
    config.path,
    listenerToml({
      name: "cmd",
      service: "cmd",
      listen: "127.0.0.1:0",
      auth: "none",
      max_concurrent: 4,
    }) + `env = { SB_MARK = "${MARKER}" }\n`,
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const port = daemon.port("cmd");
  const pid = daemon.child.pid;
  // Served once, so that lazily made things are in the baseline.
  assert.equal((await run(port, "true", 5000)).code, 0);
  const baseline = await steady(() => fdCount(pid), { timeoutMs: 2000 });
  let peak = 0;
  const watchPeak = setInterval(() => peak = Math.max(peak, marked().length), 100);
  try {
    // A fork loop whose children leave their parent at once (reparented, same group).
    const forks = await run(port, "while :; do (sleep 60 &); done", 1500);
    assert.equal(forks.timed_out, true);
    assert.deepEqual(await noneLeft(5000), [], "fork loop: processes left");

    // A command (and a grandchild) that ignore SIGTERM: SIGKILL after the grace.
    const stubborn = await run(
      port,
      "trap '' TERM; sh -c \"trap '' TERM; sleep 60\" & sleep 60",
      500,
    );
    assert.equal(stubborn.timed_out, true);
    assert.equal(stubborn.signal, "SIGKILL");
    assert.deepEqual(await noneLeft(3000), [], "TERM ignored: processes left");

    // A client that vanishes while its command runs.
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await writeAll(
        conn,
        encodeFrame({ op: "exec", cmd: "trap '' TERM; sleep 60 & sleep 60", timeout_ms: 60_000 }),
      );
      const deadline = performance.now() + 5000;
      while (marked().length < 2 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(marked().length >= 2, "the command started");
    }
    assert.deepEqual(await noneLeft(6000), [], "vanished client: processes left");
  } finally {
    clearInterval(watchPeak);
  }
  const after = await reaches(() => fdCount(pid), baseline);
  assert.equal(after, baseline, `fds ${baseline} before, ${after} after`);
  console.log(`cmd containment: peak ${peak} marked processes, 0 left, fds ${baseline} → ${after}`);
});
