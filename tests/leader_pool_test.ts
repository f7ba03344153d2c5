import assert from "node:assert/strict";
import { LeaderPool, poolable, poolLine, quoteWord } from "../handlers/cmd/leader_pool.ts";
import {
  liveGroupMembers,
  type OutputPipe,
  type ProcessGroup,
  processInfo,
} from "../lib/process_group.ts";
import { waitFor } from "./_helpers.ts";

const ENV = { PATH: "/usr/bin:/bin" };
const TRICKY = [
  "plain",
  "",
  "it's",
  "a'b'c''",
  "two\nlines\n",
  "\n",
  "$HOME `id` $(id) \\ \\n ; | & > < * ? [a] ~ # !",
  '"double" \\"',
  "tab\there\rcr",
  "ünïcödé ✓ 日本",
  "\x1b[31mesc",
];

async function readText(pipe: OutputPipe): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  let buffer: Uint8Array = new Uint8Array(4096);
  for (let i = 0; i < 100_000; i++) {
    const value = await pipe.read(buffer);
    if (value === null) break;
    text += decoder.decode(value, { stream: true });
    buffer = new Uint8Array(value.buffer);
  }
  return text + decoder.decode();
}

async function finish(group: ProcessGroup): Promise<{ out: string; code: number }> {
  const [out, , status] = await Promise.all([
    readText(group.stdout),
    group.stderr?.cancel(),
    group.status,
  ]);
  return { out, code: status.code };
}

Deno.test("pool quoting gives every string back unchanged through a real shell", async () => {
  await using pool = poolOf(2);
  for (const text of TRICKY) {
    await waitFor(() => pool.idle > 0);
    const group = await pool.run({ argv: ["printf", "%s", text], nullStdin: true, env: ENV });
    assert.ok(group);
    assert.equal((await finish(group)).out, text, JSON.stringify(text));
    pool.replenish();
  }
  assert.doesNotMatch(quoteWord("a\nb"), /\n/, "a quoted word stays on one line");
});

Deno.test("pool runs shell text in the leader's own shell, the group's leader", async () => {
  await using pool = poolOf(1);
  const group = await pool.run({ text: 'echo "$$ $0 $#"; exit 7', nullStdin: true });
  assert.ok(group);
  const { out, code } = await finish(group);
  assert.equal(out, `${group.pid} /bin/sh 0\n`);
  assert.equal(code, 7);
  assert.equal(processInfo(Deno.pid)!.pgid === group.pid, false);
});

Deno.test("pool leaves the bytes after the command line to the command's stdin", async () => {
  await using pool = poolOf(1);
  const group = await pool.run({ argv: ["cat"], nullStdin: false, env: ENV });
  assert.ok(group);
  await group.stdin!.write(new TextEncoder().encode("line one\nno newline"));
  await group.stdin!.close();
  assert.equal((await finish(group)).out, "line one\nno newline");
});

Deno.test("pool gives argv exactly the configured environment, in the asked directory", async () => {
  await using pool = poolOf(1);
  const env = await pool.run({ argv: ["env"], cwd: "/usr", nullStdin: true, env: ENV });
  assert.ok(env);
  assert.equal((await finish(env)).out, "PATH=/usr/bin:/bin\n");
  pool.replenish();
  await waitFor(() => pool.idle === 1);
  const pwd = await pool.run({ argv: ["pwd"], cwd: "/usr", nullStdin: true, env: ENV });
  assert.ok(pwd);
  assert.equal((await finish(pwd)).out, "/usr\n");
});

Deno.test("pool hands out each leader once; when empty the caller spawns instead", async () => {
  await using pool = poolOf(1);
  const [first, second] = await Promise.all([
    pool.run({ text: "readlink /proc/self/fd/0", nullStdin: true }),
    pool.run({ text: "true", nullStdin: true }),
  ]);
  assert.ok(first);
  assert.equal(second, undefined);
  assert.equal((await finish(first)).out, "/dev/null\n");
});

Deno.test("pool refills when asked and ends its idle leaders on close", async () => {
  const pool = poolOf(2);
  await waitFor(() => pool.idle === 2);
  const group = await pool.run({ text: "true", nullStdin: true });
  assert.ok(group);
  await finish(group);
  assert.equal(pool.idle, 1, "not refilled while the command runs");
  pool.replenish();
  await waitFor(() => pool.idle === 2);
  // A leader just spawned may still be between setsid's exec and its shell's.
  let pids: number[] = [];
  await waitFor(() => (pids = liveBootstraps()).length >= 2);
  await pool.close();
  for (const pid of pids) await waitFor(() => liveGroupMembers(pid).length === 0);
  assert.equal(pool.idle, 0);
});

Deno.test("pool lines quote everything and skip what dash cannot exec", () => {
  assert.equal(
    poolLine({ text: "echo hi", cwd: "/srv/a b", nullStdin: true }),
    "cd '/srv/a b' || exit 126; exec </dev/null; eval 'echo hi'",
  );
  assert.equal(
    poolLine({ argv: ["ls", "-l"], nullStdin: false, env: { PWD: "/x" } }),
    "unset PWD OLDPWD; export PWD='/x'; exec 'ls' '-l'",
  );
  assert.equal(poolable(["-x"]), false);
  assert.equal(poolable(["ls"]), true);
  assert.equal(poolable(undefined), true);
});

let created: LeaderPool[] = [];

function poolOf(size: number): LeaderPool & AsyncDisposable {
  const pool = new LeaderPool({ size, spawn: { cwd: "/", env: ENV } }) as
    & LeaderPool
    & AsyncDisposable;
  pool[Symbol.asyncDispose] = () => pool.close();
  created.push(pool);
  return pool;
}

/** Pids of this process's idle pooled shells (their bootstrap reads a line). */
function liveBootstraps(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      const info = processInfo(pid);
      if (cmdline.includes("__sb_nl") && info?.pgid === pid && info.ppid === Deno.pid) {
        pids.push(pid);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  created = [];
  return pids;
}
