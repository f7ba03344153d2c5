import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeFrame } from "../lib/header_codec.ts";
import { disableLibC } from "../lib/libc.ts";
import { liveGroupMembers } from "../lib/process_group.ts";
import { readToEnd, spawnDaemon, startServer, tempConfig, waitFor } from "./_helpers.ts";
import { cmdConfig, CmdConn, joined, text, TOKEN, waitGroupGone } from "./_cmd_helpers.ts";

const encoder = new TextEncoder();

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

/** A frame from any JSON object (encodeFrame insists on an op). */
function rawFrame(header: Record<string, unknown>): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const frame = new Uint8Array(4 + json.length);
  new DataView(frame.buffer).setUint32(0, json.length);
  frame.set(json, 4);
  return frame;
}

function exitOf(reply: { exit?: Record<string, unknown> }): Record<string, unknown> {
  assert.ok(reply.exit, `no exit frame: ${JSON.stringify(reply)}`);
  return reply.exit;
}

Deno.test("cmd runs shell text and argv and returns output then one exit frame", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const shell = await c.exec({ cmd: "echo hello; echo oops >&2; exit 3" });
  assert.equal(text(shell), "hello\n");
  assert.equal(text(shell, "stderr"), "oops\n");
  const exit = exitOf(shell);
  assert.equal(exit.code, 3);
  assert.equal(exit.signal, null);
  assert.equal(exit.timed_out, false);
  assert.equal(exit.truncated, false);
  assert.equal(typeof exit.ms, "number");
  const argv = await c.exec({ argv: ["printf", "[%s]", "a b", "$HOME", "*"] });
  assert.equal(text(argv), "[a b][$HOME][*]", "no shell: no splitting, expansion or globbing");
  assert.equal(exitOf(argv).code, 0);
});

Deno.test("cmd without FFI (the offline executable's path) runs the same commands", async () => {
  // The listener opens with the native path off: the leader pool and
  // Deno.Command through setsid(1) serve it.
  disableLibC(true);
  try {
    await using server = await startServer(cmdConfig(`timeout = "1s"`));
    using c = await CmdConn.open(server.port("cmd"));
    const shell = await c.exec({ cmd: "echo hello; echo oops >&2; exit 3" });
    assert.equal(text(shell), "hello\n");
    assert.equal(text(shell, "stderr"), "oops\n");
    assert.equal(exitOf(shell).code, 3);
    const data = randomBytes(300_000);
    assert.deepEqual(joined(await c.exec({ argv: ["cat"] }, data), "stdout"), data);
    const leader = await c.exec({ cmd: 'cut -d" " -f5,6 /proc/$$/stat; echo $$' });
    const [ids, pid] = text(leader).trim().split("\n");
    assert.equal(ids, `${pid} ${pid}`, "its own process group and session");
    const slow = await c.exec({ cmd: "sleep 30" });
    assert.equal(exitOf(slow).timed_out, true);
    assert.equal(exitOf(slow).signal, "SIGTERM");
    const missing = await c.exec({ argv: ["no-such-program-x"] });
    assert.equal(exitOf(missing).code, 127);
  } finally {
    disableLibC(false);
  }
});

Deno.test("cmd keeps the order of interleaved stdout and stderr", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({
    cmd: "echo o1; sleep 0.2; echo e1 >&2; sleep 0.2; echo o2; sleep 0.2; echo e2 >&2",
  });
  const seen = reply.outputs.map((o) => `${o.op}:${new TextDecoder().decode(o.bytes).trim()}`);
  assert.deepEqual(seen, ["stdout:o1", "stderr:e1", "stdout:o2", "stderr:e2"]);
});

Deno.test("cmd passes binary (non-UTF-8) output through untouched", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startServer(cmdConfig());
  try {
    const data = randomBytes(200_000);
    data.set([0xff, 0xfe, 0x00, 0xc3, 0x28], 0);
    await Deno.writeFile(join(dir, "blob"), data);
    using c = await CmdConn.open(server.port("cmd"));
    const reply = await c.exec({ argv: ["cat", join(dir, "blob")] });
    assert.deepEqual(joined(reply, "stdout"), data);
    const escapes = await c.exec({ cmd: "printf '\\377\\033[2J\\000'" });
    assert.deepEqual(joined(escapes, "stdout"), new Uint8Array([0xff, 0x1b, 0x5b, 0x32, 0x4a, 0]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cmd streams 10 MB of output in frames of at most 64 KiB", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "head -c 10000000 /dev/zero; echo end >&2" });
  const out = reply.outputs.filter((o) => o.op === "stdout");
  assert.equal(out.reduce((sum, o) => sum + o.bytes.length, 0), 10_000_000);
  assert.ok(out.every((o) => o.bytes.length > 0 && o.bytes.length <= 65536));
  assert.ok(out.length >= 153, "the output came in many frames, not one");
  assert.equal(text(reply, "stderr"), "end\n");
  assert.equal(exitOf(reply).code, 0);
});

Deno.test("cmd pipes 2 MiB of stdin given as a body through cat while returning output", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const data = randomBytes(2 * 1024 * 1024);
  // Written and read at once: the server must stream output back while it
  // still reads the body, or both sides block on full buffers.
  const sending = c.send({ op: "exec", cmd: "cat" }, data);
  const reply = await c.reply();
  await sending;
  assert.deepEqual(joined(reply, "stdout"), data);
  assert.equal(exitOf(reply).code, 0);
});

Deno.test("cmd pipes 2 MiB of streamed stdin through cat while returning output", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const data = randomBytes(2 * 1024 * 1024);
  await c.send({ op: "exec", argv: ["cat"], stdin: "stream" });
  const sending = (async () => {
    for (let offset = 0; offset < data.length; offset += 50_000) {
      await c.send({ op: "stdin", token: null }, data.subarray(offset, offset + 50_000));
    }
    await c.send({ op: "eof", token: null });
  })();
  const reply = await c.reply();
  await sending;
  assert.deepEqual(joined(reply, "stdout"), data);
  assert.equal(exitOf(reply).code, 0);
  // The connection is in step for the next request.
  assert.equal(text(await c.exec({ cmd: "echo next" })), "next\n");
});

Deno.test("cmd gives a command without stdin /dev/null", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "cat; readlink /proc/self/fd/0" });
  assert.equal(text(reply), "/dev/null\n");
});

Deno.test("cmd runs two exec frames sent in one write, in order", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const one = encodeFrame({ op: "exec", token: TOKEN, cmd: "sleep 0.2; echo one" });
  const two = encodeFrame({ op: "exec", token: TOKEN, argv: ["echo", "two"] });
  const both = new Uint8Array(one.length + two.length);
  both.set(one);
  both.set(two, one.length);
  await c.writeAll(both);
  const first = await c.reply();
  const second = await c.reply();
  assert.equal(text(first), "one\n");
  assert.equal(exitOf(first).code, 0);
  assert.equal(text(second), "two\n");
  assert.equal(exitOf(second).code, 0);
});

Deno.test("cmd keeps serving a client that closed only its sending side", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const one = encodeFrame({ op: "exec", token: TOKEN, cmd: "echo one" });
  const two = encodeFrame({ op: "exec", token: TOKEN, cmd: "sleep 1.2; echo two; exit 2" });
  const both = new Uint8Array(one.length + two.length);
  both.set(one);
  both.set(two, one.length);
  await c.writeAll(both);
  await c.conn.closeWrite();
  const first = await c.reply();
  const second = await c.reply();
  assert.equal(text(first), "one\n");
  assert.equal(exitOf(first).code, 0);
  // A silent command's half-closed client is probed with empty stdout frames.
  assert.ok(second.outputs.filter((o) => o.bytes.length > 0).length === 1);
  assert.equal(text(second), "two\n");
  assert.equal(exitOf(second).code, 2);
  assert.equal((await c.reply()).closed, true, "then the server closes");
});

Deno.test("cmd ends streamed stdin when the client closes its sending side", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  await c.send({ op: "exec", cmd: "cat; echo end", stdin: "stream" });
  await c.send({ op: "stdin", token: null }, encoder.encode("abc\n"));
  await c.conn.closeWrite();
  const reply = await c.reply();
  assert.equal(text(reply), "abc\nend\n");
  assert.equal(exitOf(reply).code, 0);
});

Deno.test("cmd answers bad requests with bad_request and stays usable", async (t) => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const cases: [string, Record<string, unknown>][] = [
    ["no command", { op: "exec" }],
    ["cmd and argv", { op: "exec", cmd: "true", argv: ["true"] }],
    ["argv item not a string", { op: "exec", argv: ["echo", 5] }],
    ["argv not an array", { op: "exec", argv: "echo" }],
    ["bad timeout", { op: "exec", cmd: "true", timeout_ms: "soon" }],
    ["bad stdin mode", { op: "exec", cmd: "true", stdin: "file" }],
    ["unknown op", { op: "shell", cmd: "true" }],
    ["missing op", { cmd: "true" }],
  ];
  for (const [name, header] of cases) {
    await t.step(name, async () => {
      await c.writeAll(rawFrame({ token: TOKEN, ...header }));
      const reply = await c.reply();
      assert.equal(reply.error?.code, "bad_request", JSON.stringify(reply));
    });
  }
  await t.step("then a good request works", async () => {
    assert.equal(text(await c.exec({ cmd: "echo fine" })), "fine\n");
  });
});

Deno.test("cmd refuses a wrong or missing token, runs nothing, and stays usable", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startServer(cmdConfig());
  try {
    using c = await CmdConn.open(server.port("cmd"));
    const marker = join(dir, "ran");
    const wrong = await c.exec({ cmd: `touch ${marker}`, token: "wrong" });
    assert.equal(wrong.error?.code, "unauthorized");
    const missing = await c.exec({ cmd: `touch ${marker}`, token: null }, encoder.encode("body"));
    assert.equal(missing.error?.code, "unauthorized");
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
    assert.equal(exitOf(await c.exec({ cmd: `touch ${marker}` })).code, 0);
    await Deno.stat(marker);
    assert.ok(!server.lines.some((line) => line.includes(TOKEN)), "the token is never logged");
    const refusals = server.lines.filter((l) => l.includes("Request refused: unauthorized"));
    assert.equal(refusals.length, 2, "each unauthorized attempt is logged");
    assert.match(refusals[0]!, /listener=cmd peer=127\.0\.0\.1:\d+ op=exec$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cmd reports a program that cannot run with 127 or 126 and a message", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startServer(cmdConfig());
  try {
    await Deno.writeTextFile(join(dir, "script"), "#!/bin/sh\necho no\n", { mode: 0o644 });
    using c = await CmdConn.open(server.port("cmd"));
    const missing = await c.exec({ argv: ["no-such-program-xyz", "a"] });
    assert.equal(exitOf(missing).code, 127);
    assert.match(text(missing, "stderr"), /no-such-program-xyz: command not found/);
    const denied = await c.exec({ argv: [join(dir, "script")] }, encoder.encode("dropped"));
    assert.equal(exitOf(denied).code, 126);
    assert.match(text(denied, "stderr"), /Permission denied/);
    assert.equal(exitOf(await c.exec({ cmd: "no-such-program-xyz" })).code, 127, "via the shell");
    assert.equal(text(await c.exec({ cmd: "echo still fine" })), "still fine\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cmd timeout ends the group, even a grandchild that ignores SIGTERM", async () => {
  await using server = await startServer(cmdConfig(`timeout = "10s"`));
  using c = await CmdConn.open(server.port("cmd"));
  const started = performance.now();
  await c.send({
    op: "exec",
    cmd: `echo $$; sh -c 'trap "" TERM; sleep 30' & sleep 30`,
    timeout_ms: 500,
  });
  const reply = await c.reply();
  const pgid = Number(text(reply).trim());
  const exit = exitOf(reply);
  assert.equal(exit.timed_out, true);
  assert.equal(exit.code, null);
  assert.equal(typeof exit.signal, "string");
  assert.ok(performance.now() - started < 20_000, "the 30 s sleeps did not hold the reply");
  await waitGroupGone(pgid);
});

Deno.test("cmd timeout ends a reply held open by a background process on stdout", async () => {
  await using server = await startServer(cmdConfig(`timeout = "700ms"`));
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "echo $$; sleep 30 & exit 0", timeout_ms: 60_000 });
  const exit = exitOf(reply);
  assert.equal(exit.timed_out, true, "the listener's timeout applies; the request cannot raise it");
  await waitGroupGone(Number(text(reply).trim()));
});

Deno.test("cmd ends leftovers of a finished command before the exit frame", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "echo $$; sleep 30 >/dev/null 2>&1 & exit 0" });
  assert.equal(exitOf(reply).code, 0);
  assert.equal(exitOf(reply).timed_out, false);
  assert.deepEqual(liveGroupMembers(Number(text(reply).trim())), [], "gone when exit arrives");
});

Deno.test("cmd cuts output at max_output, ends the group and says truncated", async () => {
  await using server = await startServer(cmdConfig(`max_output = "100KiB"`));
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "echo $$ >&2; yes" });
  const pgid = Number(text(reply, "stderr").trim());
  const total = reply.outputs.reduce((sum, o) => sum + o.bytes.length, 0);
  assert.equal(total, 100 * 1024);
  const exit = exitOf(reply);
  assert.equal(exit.truncated, true);
  assert.equal(exit.code, null);
  await waitGroupGone(pgid);
  assert.equal(text(await c.exec({ cmd: "echo after" })), "after\n");
});

Deno.test("cmd refuses commands over max_concurrent with busy", async () => {
  await using server = await startServer(cmdConfig(`max_concurrent = 1`));
  using a = await CmdConn.open(server.port("cmd"));
  using b = await CmdConn.open(server.port("cmd"));
  await a.send({ op: "exec", cmd: "cat", stdin: "stream" });
  await a.send({ op: "stdin", token: null }, encoder.encode("x"));
  const first = await a.frames.readHeader(); // cat echoed: it is running
  assert.equal(first?.op, "stdout");
  await a.frames.skipBody();
  const busy = await b.exec({ cmd: "echo no" });
  assert.equal(busy.error?.code, "busy");
  await a.send({ op: "eof", token: null });
  assert.equal(exitOf(await a.reply()).code, 0);
  assert.equal(text(await b.exec({ cmd: "echo yes" })), "yes\n", "the slot is free again");
});

Deno.test("cmd kills the process group when the client disconnects", async () => {
  await using server = await startServer(cmdConfig());
  const c = await CmdConn.open(server.port("cmd"));
  await c.send({ op: "exec", cmd: "echo $$; sleep 30 & sleep 30 & wait" });
  const header = await c.frames.readHeader();
  const body = new Uint8Array(header!.size!);
  for (let got = 0; got < body.length;) got += (await c.frames.readBody(body.subarray(got)))!;
  const pgid = Number(new TextDecoder().decode(body).trim());
  await waitFor(() => liveGroupMembers(pgid).length === 3);
  c.close();
  await waitGroupGone(pgid);
  await waitFor(() => server.lines.some((line) => line.includes("client disconnected")));
});

Deno.test("cmd kills the group when the client disconnects while streaming stdin", async () => {
  await using server = await startServer(cmdConfig());
  const c = await CmdConn.open(server.port("cmd"));
  await c.send({ op: "exec", cmd: "echo $$; sleep 30", stdin: "stream" });
  await c.send({ op: "stdin", token: null }, encoder.encode("unread"));
  const reply = await c.frames.readHeader();
  const body = new Uint8Array(reply!.size!);
  for (let got = 0; got < body.length;) got += (await c.frames.readBody(body.subarray(got)))!;
  const pgid = Number(new TextDecoder().decode(body).trim());
  c.close();
  await waitGroupGone(pgid);
});

Deno.test("cmd gives commands a clean environment: env, pass_env and PATH only", async () => {
  Deno.env.set("SWITCHBOARD_TEST_SECRET", "must-not-leak");
  Deno.env.set("SWITCHBOARD_TEST_PASSED", "passed-through");
  try {
    await using server = await startServer(
      cmdConfig(`env = { GREETING = "hi" }\npass_env = ["SWITCHBOARD_TEST_PASSED"]`),
    );
    using c = await CmdConn.open(server.port("cmd"));
    const lines = text(await c.exec({ argv: ["env"] })).trim().split("\n").sort();
    assert.deepEqual(lines, [
      "GREETING=hi",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "SWITCHBOARD_TEST_PASSED=passed-through",
    ]);
  } finally {
    Deno.env.delete("SWITCHBOARD_TEST_SECRET");
    Deno.env.delete("SWITCHBOARD_TEST_PASSED");
  }
});

Deno.test("cmd enforces allow_commands and allow_shell, running nothing refused", async () => {
  await using server = await startServer(cmdConfig(`allow_commands = ["echo", "true"]`));
  using c = await CmdConn.open(server.port("cmd"));
  assert.equal(text(await c.exec({ argv: ["echo", "allowed"] })), "allowed\n");
  assert.equal((await c.exec({ argv: ["ls"] })).error?.code, "forbidden");
  assert.equal((await c.exec({ cmd: "echo via shell" })).error?.code, "forbidden");
  assert.ok(server.lines.some((l) => /Command refused .*code=forbidden .*command=.*ls/.test(l)));
});

Deno.test("cmd runs in workdir and keeps cwd inside it", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(join(root, "sub"));
    await Deno.symlink("/etc", join(root, "out"));
    await using server = await startServer(cmdConfig(`workdir = "${root}"`));
    using c = await CmdConn.open(server.port("cmd"));
    assert.equal(text(await c.exec({ argv: ["pwd"] })), `${root}\n`);
    assert.equal(text(await c.exec({ argv: ["pwd"], cwd: "sub" })), `${join(root, "sub")}\n`);
    assert.equal((await c.exec({ argv: ["pwd"], cwd: ".." })).error?.code, "forbidden");
    assert.equal((await c.exec({ argv: ["pwd"], cwd: "out" })).error?.code, "forbidden");
    assert.equal((await c.exec({ argv: ["pwd"], cwd: "missing" })).error?.code, "not_found");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cmd refuses stdin over max_stdin: a small body is dropped, a long stream closes", async () => {
  await using server = await startServer(cmdConfig(`max_stdin = 1000`));
  using c = await CmdConn.open(server.port("cmd"));
  const body = await c.exec({ cmd: "cat" }, new Uint8Array(5000));
  assert.equal(body.error?.code, "too_large");
  assert.equal(text(await c.exec({ cmd: "echo usable" })), "usable\n");
  await c.send({ op: "exec", cmd: "cat >/dev/null", stdin: "stream" });
  await c.send({ op: "stdin", token: null }, new Uint8Array(800));
  await c.send({ op: "stdin", token: null }, new Uint8Array(800));
  const stream = await c.reply();
  assert.equal(stream.error?.code, "too_large");
  assert.equal((await c.reply()).closed, true);
});

// A subprocess: a daemon that spins (as one did, once the command had ended
// with a full look-ahead of unread stdin) cannot stall the test's own timers.
Deno.test("cmd closes a stream that outgrows max_stdin in large frames, and keeps serving", async () => {
  await using config = await tempConfig(cmdConfig(`max_stdin = 1000`));
  await using daemon = await spawnDaemon(["-c", config.path]);
  const port = daemon.port("cmd");
  for (const sizes of [[65536], [20000, 20000]]) {
    using c = await CmdConn.open(port);
    await c.send({ op: "exec", argv: ["wc", "-c"], stdin: "stream" });
    for (const size of sizes) await c.send({ op: "stdin", token: null }, new Uint8Array(size));
    const reply = await c.reply(5000);
    assert.equal(reply.error?.code, "too_large", `stdin frames of ${sizes.join(" + ")} bytes`);
    assert.equal((await c.reply(5000)).closed, true);
  }
  using after = await CmdConn.open(port);
  assert.equal(text(await after.exec({ cmd: "echo alive" })), "alive\n");
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit(5000)).code, 0, "still stops on SIGTERM");
});

Deno.test("cmd answers a malformed frame with bad_frame and closes", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  await c.writeAll(new Uint8Array([0, 0, 0, 0]));
  const reply = await c.reply();
  assert.equal(reply.error?.code, "bad_frame");
  assert.equal((await c.reply()).closed, true);
});

Deno.test("cmd closes after refusing a body over 1 MiB, running nothing", async () => {
  await using server = await startServer(cmdConfig(`max_stdin = 1000`));
  using c = await CmdConn.open(server.port("cmd"));
  const sending = c.send({ op: "exec", cmd: "cat" }, new Uint8Array(2 * 1024 * 1024)).catch(
    () => {},
  );
  const reply = await c.reply();
  assert.equal(reply.error?.code, "too_large");
  assert.equal((await c.reply()).closed, true);
  await sending;
  assert.ok(!server.lines.some((line) => line.includes("Command finished")));
});

Deno.test("cmd drops the stdin stream of a refused exec and serves the next request", async () => {
  await using server = await startServer(cmdConfig(`allow_commands = ["echo"]`));
  using c = await CmdConn.open(server.port("cmd"));
  await c.send({ op: "exec", argv: ["cat"], stdin: "stream" });
  await c.send({ op: "stdin" }, encoder.encode("ignored"));
  await c.send({ op: "eof" });
  assert.equal((await c.reply()).error?.code, "forbidden");
  assert.equal(text(await c.exec({ argv: ["echo", "next"] })), "next\n");
  assert.equal((await c.exec({ op: "eof" })).error?.code, "bad_request", "a stray eof");
});

Deno.test("cmd drops the stdin stream of an exec refused for its token", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  await c.send({ op: "exec", cmd: "cat", stdin: "stream", token: "wrong" });
  await c.send({ op: "stdin" }, encoder.encode("abc"));
  await c.send({ op: "eof" });
  await c.send({ op: "exec", cmd: "echo after" });
  assert.equal((await c.reply()).error?.code, "unauthorized");
  const next = await c.reply();
  assert.equal(next.error, undefined, "the stdin and eof frames are dropped silently");
  assert.equal(text(next), "after\n");
});

Deno.test("cmd idle_timeout does not cut a connection while its command runs", async () => {
  await using server = await startServer(cmdConfig(`idle_timeout = "200ms"`));
  using c = await CmdConn.open(server.port("cmd"));
  const reply = await c.exec({ cmd: "sleep 1; echo done" });
  assert.equal(text(reply), "done\n");
  assert.equal(exitOf(reply).code, 0);
});

Deno.test("cmd logs every exec with peer, command (escaped), exit and bytes", async () => {
  await using server = await startServer(cmdConfig());
  using c = await CmdConn.open(server.port("cmd"));
  await c.exec({ cmd: "printf 'abc'; exit 4 # \x1b[31m" }, encoder.encode("in"));
  const line = server.lines.find((l) => l.includes("Command finished"));
  assert.ok(line, server.lines.join("\n"));
  assert.match(line, /peer=127\.0\.0\.1:\d+/);
  assert.match(line, /code=4 /);
  assert.match(line, /stdin=2 stdout=3 stderr=0/);
  assert.match(line, /ms=\d+/);
  assert.ok(!line.includes("\x1b"), "no raw control character reaches the log");
  assert.match(line, /\\(x1b|u001b)\[31m/, "it is shown escaped");
});

Deno.test("cmd runs commands as the configured user when the daemon is root", async () => {
  if (Deno.uid() !== 0) return; // needs root; the non-root refusal is tested with the options
  await using server = await startServer(cmdConfig(`user = "nobody"`));
  using c = await CmdConn.open(server.port("cmd"));
  assert.equal(text(await c.exec({ cmd: "id -u; id -g" })), "65534\n65534\n");
});

Deno.test("cmd stopping the daemon ends running commands: nothing is left running", async () => {
  const server = await startServer(cmdConfig(), { shutdownMs: 300 });
  const c = await CmdConn.open(server.port("cmd"));
  try {
    await c.send({ op: "exec", cmd: "echo $$; trap '' TERM; sleep 30" });
    const header = await c.frames.readHeader();
    const body = new Uint8Array(header!.size!);
    for (let got = 0; got < body.length;) got += (await c.frames.readBody(body.subarray(got)))!;
    const pgid = Number(new TextDecoder().decode(body).trim());
    await server[Symbol.asyncDispose]();
    // SIGKILL was sent before the stop returned; dying takes the kernel a moment.
    await waitGroupGone(pgid, 5000);
  } finally {
    c.close();
  }
});

Deno.test("cmd line protocol runs each line and returns raw output", async () => {
  await using server = await startServer(cmdConfig(`protocol = "line"`));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("cmd") });
  await conn.write(encoder.encode(`${TOKEN}\necho one\r\necho two >&2\n\nexit 5\n`));
  await conn.closeWrite();
  const output = new TextDecoder().decode(await readToEnd(conn, 10_000));
  conn.close();
  assert.equal(output, "one\ntwo\n");
});

Deno.test("cmd line protocol wants the token as the first line", async () => {
  await using server = await startServer(cmdConfig(`protocol = "line"`));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("cmd") });
  await conn.write(encoder.encode("echo sneaky\n"));
  const output = new TextDecoder().decode(await readToEnd(conn, 10_000));
  conn.close();
  assert.match(output, /^error: unauthorized/);
  assert.doesNotMatch(output, /sneaky/);
});
