import assert from "node:assert/strict";
import { join } from "node:path";
import { exitCodeFor } from "../cli/cmd_exit.ts";
import { splitCommand } from "../cli/cmd.ts";
import { ROOT, runCli, startServer, switchboardShell } from "./_helpers.ts";
import { cmdConfig, TOKEN } from "./_cmd_helpers.ts";

const ENV = { SWITCHBOARD_TOKEN: TOKEN };

Deno.test("cmd client maps an exit frame to its exit code", async (t) => {
  const cases: [string, Record<string, unknown>, number][] = [
    ["success", { code: 0, signal: null, timed_out: false }, 0],
    ["a code", { code: 3, signal: null, timed_out: false }, 3],
    ["SIGKILL", { code: null, signal: "SIGKILL", timed_out: false }, 137],
    ["SIGTERM", { code: null, signal: "SIGTERM", timed_out: false }, 143],
    ["a timeout wins", { code: null, signal: "SIGTERM", timed_out: true }, 124],
    ["an unknown signal", { code: null, signal: "SIGWHAT", timed_out: false }, 255],
    ["nonsense", {}, 255],
  ];
  for (const [name, exit, expected] of cases) {
    await t.step(name, () => assert.equal(exitCodeFor(exit), expected));
  }
});

Deno.test("cmd client splits its own options from COMMAND", async (t) => {
  const cases: [string[], string[], string[]][] = [
    [["host", "--", "ls", "-l"], ["host"], ["ls", "-l"]],
    [["--token", "t", "host", "ls", "-l"], ["--token", "t", "host"], ["ls", "-l"]],
    [["host", "--argv", "echo", "--token"], ["host", "--argv"], ["echo", "--token"]],
    [["-n", "host"], ["-n", "host"], []],
  ];
  for (const [args, own, command] of cases) {
    await t.step(args.join(" "), () => assert.deepEqual(splitCommand(args), { own, command }));
  }
});

Deno.test("cmd client exits with the remote status: code, 128+signal, 124 timeout", async () => {
  await using server = await startServer(cmdConfig());
  const addr = `127.0.0.1:${server.port("cmd")}`;
  const [three, killed, timedOut] = await Promise.all([
    runCli(["cmd", addr, "--", "echo out; echo err >&2; exit 3"], { env: ENV }),
    runCli(["cmd", addr, "--", "kill -9 $$"], { env: ENV }),
    runCli(["cmd", addr, "--timeout", "300ms", "--", "sleep 10"], { env: ENV }),
  ]);
  assert.equal(three.code, 3);
  assert.equal(three.stdout, "out\n");
  assert.equal(three.stderr, "err\n");
  assert.equal(killed.code, 137);
  assert.equal(timedOut.code, 124);
});

Deno.test("cmd client exits 255 on its own failures, with one line saying why", async () => {
  await using server = await startServer(cmdConfig(`allow_commands = ["true"]`));
  const addr = `127.0.0.1:${server.port("cmd")}`;
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  const [unauthorized, forbidden, refused, noToken] = await Promise.all([
    runCli(["cmd", addr, "--token", "wrong", "--argv", "--", "true"]),
    runCli(["cmd", addr, "--argv", "--", "ls"], { env: ENV }),
    runCli(["cmd", `127.0.0.1:${deadPort}`, "true"], { env: ENV }),
    runCli(["cmd", addr, "--argv", "--", "true"], { env: { SWITCHBOARD_TOKEN: "" } }),
  ]);
  assert.equal(unauthorized.code, 255);
  assert.match(unauthorized.stderr, /^switchboard cmd: unauthorized: /);
  assert.equal(forbidden.code, 255);
  assert.match(forbidden.stderr, /forbidden: Command "ls" is not allowed/);
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /cannot connect to 127\.0\.0\.1:\d+: .*refused/i);
  assert.equal(noToken.code, 255);
});

Deno.test("cmd client sends stdin when it is not a terminal and passes bytes through raw", async () => {
  await using server = await startServer(cmdConfig());
  const addr = `127.0.0.1:${server.port("cmd")}`;
  const input = new Uint8Array(1_500_000);
  crypto.getRandomValues(input.subarray(0, 65536));
  input.set([0x1b, 0x5b, 0x32, 0x4a, 0xff, 0x00], 100);
  for (let i = 65536; i < input.length; i++) input[i] = input[i - 65536]! ^ (i & 0xff);
  const result = await runCli(["cmd", addr, "--argv", "--", "cat"], { stdin: input, env: ENV });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdoutBytes, input, "stdout is not escaped: this is a pipe tool");
  const words = await runCli(["cmd", addr, "--argv", "printf", "[%s]", "a b", "$X"], { env: ENV });
  assert.equal(words.stdout, "[a b][$X]");
  const noStdin = await runCli(["cmd", addr, "-n", "--", "wc -c"], { stdin: "ignored", env: ENV });
  assert.equal(noStdin.stdout.trim(), "0");
});

Deno.test("tar c . | switchboard cmd ADDR -- tar x -C dir copies a tree", async () => {
  const dir = await Deno.makeTempDir();
  await using server = await startServer(cmdConfig());
  try {
    const source = join(dir, "src");
    const target = join(dir, "dst");
    await Deno.mkdir(join(source, "nested"), { recursive: true });
    await Deno.mkdir(target);
    const big = new Uint8Array(3_000_000);
    crypto.getRandomValues(big.subarray(0, 65536));
    await Deno.writeFile(join(source, "nested", "big.bin"), big);
    await Deno.writeTextFile(join(source, "note.txt"), "héllo\n");
    const addr = `127.0.0.1:${server.port("cmd")}`;
    const pipeline = `tar cf - -C '${source}' . | ` +
      switchboardShell(["cmd", addr, "--", "tar", "xf", "-", "-C", target]);
    const output = await new Deno.Command("/bin/sh", {
      args: ["-c", pipeline],
      cwd: ROOT,
      env: ENV,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.deepEqual(await Deno.readFile(join(target, "nested", "big.bin")), big);
    assert.equal(await Deno.readTextFile(join(target, "note.txt")), "héllo\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cmd client: help exits 0, usage errors exit 64", async () => {
  const help = await runCli(["cmd", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: switchboard cmd ADDR/);
  const noCommand = await runCli(["cmd", "127.0.0.1"]);
  assert.equal(noCommand.code, 64);
  assert.match(noCommand.stderr, /missing COMMAND/);
  const noAddr = await runCli(["cmd"]);
  assert.equal(noAddr.code, 64);
  const badTimeout = await runCli(["cmd", "--timeout", "soon", "127.0.0.1", "true"]);
  assert.equal(badTimeout.code, 64);
});

Deno.test("cmd --cwd: kept inside a listener's workdir; without one, any directory", async () => {
  const workdir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await using server = await startServer(
      cmdConfig() + cmdConfig(`workdir = "${workdir}"`).replace('name = "cmd"', 'name = "jailed"'),
    );
    const free = `127.0.0.1:${server.port("cmd")}`;
    const jailed = `127.0.0.1:${server.port("jailed")}`;
    const anywhere = await runCli(["cmd", free, "--cwd", "/", "--", "pwd"], { env: ENV });
    assert.equal(anywhere.code, 0, anywhere.stderr);
    assert.equal(anywhere.stdout, "/\n");
    const inside = await runCli(["cmd", jailed, "--", "pwd"], { env: ENV });
    assert.equal(inside.stdout, `${workdir}\n`);
    const outside = await runCli(["cmd", jailed, "--cwd", "/", "--", "pwd"], { env: ENV });
    assert.equal(outside.code, 255);
    assert.equal(
      outside.stderr,
      'switchboard cmd: forbidden: "cwd" must be inside this listener\'s workdir\n',
    );
  } finally {
    await Deno.remove(workdir, { recursive: true });
  }
});
