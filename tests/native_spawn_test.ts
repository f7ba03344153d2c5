import assert from "node:assert/strict";
import { disableLibC } from "../lib/libc.ts";
import { nativeSpawner } from "../lib/native_spawn.ts";
import {
  groupStrategy,
  liveGroupMembers,
  type OutputPipe,
  ProcessGroup,
  processInfo,
  spawnsNatively,
} from "../lib/process_group.ts";
import { waitFor } from "./_helpers.ts";

const ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };
const decoder = new TextDecoder();

async function readAll(pipe: OutputPipe | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let buffer: Uint8Array = new Uint8Array(65536);
  for (let i = 0; i < 1_000_000; i++) {
    const value = await pipe?.read(buffer);
    if (value === null || value === undefined) break;
    chunks.push(value.slice());
    size += value.length;
    buffer = new Uint8Array(value.buffer);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

async function run(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: Uint8Array } = {},
): Promise<{ out: string; err: string; status: Deno.CommandStatus; group: ProcessGroup }> {
  const group = ProcessGroup.spawn(program, {
    args,
    cwd: options.cwd ?? "/",
    env: options.env ?? ENV,
    stdin: options.stdin ? "piped" : "null",
  });
  const feeding = options.stdin
    ? group.stdin!.write(options.stdin).then(() => group.stdin!.close())
    : undefined;
  const [out, err, status] = await Promise.all([
    readAll(group.stdout),
    readAll(group.stderr),
    group.status,
    feeding,
  ]);
  return { out: decoder.decode(out), err: decoder.decode(err), status, group };
}

Deno.test("native spawn is what commands get under deno run on Linux with glibc", () => {
  assert.ok(nativeSpawner(), "posix_spawn through FFI is available here");
  assert.equal(groupStrategy(), "native");
  assert.equal(spawnsNatively({}), true);
  assert.equal(spawnsNatively({ uid: 65534 }), false, "posix_spawn cannot change ids");
});

Deno.test("native spawn: a new session led by the command, in the asked directory and env", async () => {
  const { out, status, group } = await run("sh", [
    "-c",
    'cut -d" " -f6,7 /proc/$$/stat; pwd; env | sort',
  ], { cwd: "/usr", env: { ...ENV, ONLY: "this" } });
  assert.equal(group.strategy, "native");
  assert.equal(status.code, 0);
  const [ids, pwd, ...env] = out.trim().split("\n");
  // Fields 6 and 7 are the session and the terminal: sid = pid, no terminal.
  assert.equal(ids, `${group.pid} 0`);
  assert.equal(pwd, "/usr");
  assert.deepEqual(env, [`ONLY=this`, `PATH=${ENV.PATH}`, "PWD=/usr"].sort());
  assert.notEqual(processInfo(Deno.pid)!.sid, group.pid);
});

Deno.test("native spawn: exit codes and signals are reported as Deno.Command does", async () => {
  const exited = await run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.deepEqual(exited.status, { success: false, code: 3, signal: null });
  assert.equal(exited.out, "out\n");
  assert.equal(exited.err, "err\n");
  const killed = await run("/bin/sh", ["-c", "kill -TERM $$"]);
  assert.deepEqual(killed.status, { success: false, code: 143, signal: "SIGTERM" });
  const fine = await run("true", []);
  assert.deepEqual(fine.status, { success: true, code: 0, signal: null });
});

Deno.test("native spawn: signals the daemon ignores are back at their default", async () => {
  // Deno ignores SIGPIPE; a command must not inherit that. (glibc's
  // posix_spawn leaves its two internal signals, 32 and 33, ignored.)
  const { out } = await run("/bin/sh", ["-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"]);
  assert.match(out, /SigBlk:\s+0+\n/);
  const ignored = BigInt("0x" + /SigIgn:\s+([0-9a-f]+)/.exec(out)![1]);
  assert.equal(ignored & ~0x180000000n, 0n, `ignored: ${ignored.toString(16)}`);
});

Deno.test("native spawn: a program that cannot run fails as Deno.Command does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/plain`, "echo never\n");
    assert.throws(
      () =>
        ProcessGroup.spawn("no-such-program-x", { args: [], cwd: "/", env: ENV, stdin: "null" }),
      Deno.errors.NotFound,
    );
    assert.throws(
      () => ProcessGroup.spawn(`${dir}/missing`, { args: [], cwd: "/", env: ENV, stdin: "null" }),
      Deno.errors.NotFound,
    );
    assert.throws(
      () => ProcessGroup.spawn("./plain", { args: [], cwd: dir, env: ENV, stdin: "null" }),
      Deno.errors.PermissionDenied,
    );
    assert.throws(
      () => ProcessGroup.spawn(dir, { args: [], cwd: "/", env: ENV, stdin: "null" }),
      Deno.errors.PermissionDenied,
    );
    // A relative name with a slash is found from cwd, as a shell does, and a
    // script without "#!" runs in /bin/sh, as execvp(3) (and setsid(1)) do.
    await Deno.chmod(`${dir}/plain`, 0o755);
    const { out } = await run("./plain", [], { cwd: dir });
    assert.equal(out, "never\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("native spawn: 4 MiB each way through cat (pipes full both ways)", async () => {
  const data = new Uint8Array(4 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  const group = ProcessGroup.spawn("cat", { args: [], cwd: "/", env: ENV, stdin: "piped" });
  const feeding = (async () => {
    for (let at = 0; at < data.length; at += 100_000) {
      await group.stdin!.write(data.subarray(at, Math.min(data.length, at + 100_000)));
    }
    await group.stdin!.close();
  })();
  const [out, , status] = await Promise.all([
    readAll(group.stdout),
    readAll(group.stderr),
    group.status,
    feeding,
  ]);
  assert.equal(status.code, 0);
  assert.equal(out.length, data.length);
  assert.ok(out.every((byte, i) => byte === data[i]), "same bytes back");
});

Deno.test("native spawn: a write to a command that closed its stdin fails, nothing hangs", async () => {
  const group = ProcessGroup.spawn("/bin/sh", {
    args: ["-c", "exec 0<&-; sleep 0.05"],
    cwd: "/",
    env: ENV,
    stdin: "piped",
  });
  await group.status;
  await assert.rejects(() => group.stdin!.write(new Uint8Array(1 << 20)), Deno.errors.BrokenPipe);
  group.stdin!.abort();
  await Promise.all([readAll(group.stdout), readAll(group.stderr)]);
});

Deno.test("native spawn: cancelling a read held open by a background process returns", async () => {
  const group = ProcessGroup.spawn("/bin/sh", {
    args: ["-c", "sleep 30 & echo started"],
    cwd: "/",
    env: ENV,
    stdin: "null",
  });
  const first = await group.stdout.read(new Uint8Array(64));
  assert.equal(decoder.decode(first!), "started\n");
  await group.status; // the leader is gone, sleep still holds stdout
  const pending = group.stdout.read(new Uint8Array(64));
  group.stdout.cancel();
  assert.equal(await pending, null);
  group.stderr!.cancel();
  await group.terminate({ graceMs: 500 });
  await waitFor(() => liveGroupMembers(group.pid).length === 0);
});

Deno.test("native spawn: many at once, each gets its own output", async () => {
  const runs = await Promise.all(
    Array.from({ length: 40 }, (_, i) => run("/bin/sh", ["-c", `echo ${i}; exit ${i % 7}`])),
  );
  runs.forEach(({ out, status }, i) => {
    assert.equal(out, `${i}\n`);
    assert.equal(status.code, i % 7);
  });
});

Deno.test("with FFI switched off, commands start the portable way and behave the same", async () => {
  disableLibC(true);
  try {
    assert.equal(nativeSpawner(), undefined);
    assert.notEqual(groupStrategy(), "native");
    assert.equal(spawnsNatively({}), false);
    const { out, err, status, group } = await run("/bin/sh", [
      "-c",
      'cut -d" " -f6 /proc/$$/stat; cat; echo e >&2; exit 5',
    ], { stdin: new TextEncoder().encode("fed\n") });
    assert.notEqual(group.strategy, "native");
    assert.equal(out, `${group.pid}\nfed\n`);
    assert.equal(err, "e\n");
    assert.equal(status.code, 5);
  } finally {
    disableLibC(false);
  }
  assert.ok(nativeSpawner(), "on again");
});

Deno.test("SWITCHBOARD_SPAWN=portable turns the native path off for a whole process", async () => {
  const script = `import { groupStrategy } from "${
    new URL("../lib/process_group.ts", import.meta.url).href
  }"; console.log(groupStrategy());`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    env: { SWITCHBOARD_SPAWN: "portable", NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.notEqual(decoder.decode(output.stdout).trim(), "native");
});

Deno.test("native start: spawns off the event loop thread, same session, stdio and errors", async () => {
  const groups = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      ProcessGroup.start("/bin/sh", {
        args: ["-c", `cut -d" " -f6 /proc/$$/stat; cat; exit ${i % 5}`],
        cwd: "/",
        env: ENV,
        stdin: "piped",
      })),
  );
  const results = await Promise.all(groups.map(async (group, i) => {
    const feeding = group.stdin!.write(new TextEncoder().encode(`in ${i}\n`)).then(() =>
      group.stdin!.close()
    );
    const [out, , status] = await Promise.all([
      readAll(group.stdout),
      readAll(group.stderr),
      group.status,
      feeding,
    ]);
    return { out: decoder.decode(out), status, group };
  }));
  results.forEach(({ out, status, group }, i) => {
    assert.equal(group.strategy, "native");
    assert.equal(out, `${group.pid}\nin ${i}\n`);
    assert.equal(status.code, i % 5);
  });
  await assert.rejects(
    () => ProcessGroup.start("/nonexistent/x", { args: [], cwd: "/", env: ENV, stdin: "null" }),
    Deno.errors.NotFound,
  );
});
