import assert from "node:assert/strict";
import { join } from "node:path";
import { type CmdOptions, parseCmdOptions } from "../handlers/cmd/options.ts";
import { commandEnvironment, DEFAULT_PATH } from "../lib/command_options.ts";
import { parseConfig } from "../lib/config.ts";
import { parseListenAddress } from "../lib/address.ts";
import { OptionReader } from "../lib/option_reader.ts";
import type { ConfigProblem } from "../lib/option_reader.ts";
import { MAIN, ROOT, runCli } from "./_helpers.ts";
import { SERVICES } from "../handlers/mod.ts";

function listener(keys: string, listen = "127.0.0.1:7009"): string {
  return `[[listener]]\nservice = "cmd"\nlisten = "${listen}"\n${keys}\n`;
}

/** Parses one listener; returns its options or the problems' "key: message" lines. */
function parse(keys: string, listen?: string): CmdOptions | string[] {
  try {
    return parseConfig(listener(keys, listen), "t.toml", { services: SERVICES, baseDir: "/" })
      .listeners[0]!
      .options as CmdOptions;
  } catch (error) {
    return (error as { problems: ConfigProblem[] }).problems.map((p) => `${p.key}: ${p.message}`);
  }
}

function problems(keys: string, listen?: string): string[] {
  const result = parse(keys, listen);
  assert.ok(Array.isArray(result), `expected problems for ${keys}`);
  return result;
}

function options(keys: string, listen?: string): CmdOptions {
  const result = parse(keys, listen);
  assert.ok(!Array.isArray(result), `unexpected problems: ${JSON.stringify(result)}`);
  return result;
}

Deno.test("cmd options have safe defaults", () => {
  const o = options(`token = "t"`);
  assert.equal(o.protocol, "framed");
  assert.deepEqual(o.shell, ["/bin/sh", "-c"]);
  assert.equal(o.timeoutMs, 30_000);
  assert.equal(o.maxOutput, 16 * 1024 * 1024);
  assert.equal(o.maxConcurrent, 16);
  assert.equal(o.maxStdin, 1024 ** 3);
  assert.equal(o.allowShell, true);
  assert.equal(o.allowCommands, undefined);
  assert.equal(o.uid, undefined);
  assert.deepEqual(o.env, {});
});

Deno.test("cmd options refuse what is unsafe or contradictory", async (t) => {
  const cases: [string, string, string | undefined, RegExp][] = [
    ["no token at all", ``, undefined, /listener\[0\]\.token: is required/],
    [
      "auth none on every interface",
      `auth = "none"`,
      ":7009",
      /auth: "none" is only allowed on a loopback/,
    ],
    ["auth none on a public address", `auth = "none"`, "0.0.0.0:7009", /loopback/],
    ["auth none with a token", `auth = "none"\ntoken = "t"`, undefined, /contradicts the token/],
    ["an unknown auth", `auth = "pam"\ntoken = "t"`, undefined, /unknown value "pam"/],
    ["an empty shell", `token = "t"\nshell = []`, undefined, /shell: must name a program/],
    ["a bad env name", `token = "t"\nenv = { "A-B" = "x" }`, undefined, /env\.A-B: .*not a valid/],
    [
      "a bad pass_env name",
      `token = "t"\npass_env = ["1X"]`,
      undefined,
      /pass_env\[0\]: .*not a valid/,
    ],
    ["a zero timeout", `token = "t"\ntimeout = 0`, undefined, /timeout: 0 is below the minimum/],
    ["zero max_concurrent", `token = "t"\nmax_concurrent = 0`, undefined, /max_concurrent/],
    [
      "a missing workdir",
      `token = "t"\nworkdir = "/nonexistent-dir"`,
      undefined,
      /workdir: .*does not exist/,
    ],
    [
      "line protocol without a shell",
      `token = "t"\nprotocol = "line"\nallow_commands = ["ls"]`,
      undefined,
      /protocol: "line" runs each line with the shell/,
    ],
    [
      "a misspelt key",
      `token = "t"\nmax_ouput = "1MiB"`,
      undefined,
      /max_ouput: unknown key \(did you mean "max_output"\?\)/,
    ],
    [
      "an unknown user",
      `token = "t"\nuser = "no-such-user-xyz"`,
      undefined,
      /user: no such user "no-such-user-xyz"/,
    ],
  ];
  for (const [name, keys, listen, expected] of cases) {
    await t.step(name, () => {
      const found = problems(keys, listen);
      assert.ok(found.some((p) => expected.test(p)), `${expected} not in ${JSON.stringify(found)}`);
    });
  }
});

Deno.test("cmd options accept auth none on loopback, IPv4 and IPv6", () => {
  assert.equal(options(`auth = "none"`, "127.0.0.1:7009").token, undefined);
  assert.equal(options(`auth = "none"`, "[::1]:7009").token, undefined);
});

Deno.test("cmd options: allow_commands turns the shell off unless allow_shell is set", () => {
  const strict = options(`token = "t"\nallow_commands = ["ls", "/usr/bin/id"]`);
  assert.deepEqual(strict.allowCommands, ["ls", "/usr/bin/id"]);
  assert.equal(strict.allowShell, false);
  assert.equal(
    options(`token = "t"\nallow_commands = ["ls"]\nallow_shell = true`).allowShell,
    true,
  );
  assert.equal(options(`token = "t"\nallow_shell = false`).allowShell, false);
});

Deno.test("cmd options: user and group need a root daemon", () => {
  const problemsOf = (uid: number): ConfigProblem[] => {
    const found: ConfigProblem[] = [];
    const reader = new OptionReader({ token: "t", user: "nobody" }, {
      file: "t.toml",
      prefix: "listener[0]",
      lines: new Map(),
      problems: found,
      baseDir: "/",
    });
    parseCmdOptions(reader, { address: parseListenAddress("127.0.0.1:1"), uid });
    return found;
  };
  const asUser = problemsOf(1000);
  assert.equal(asUser.length, 1);
  assert.match(asUser[0]!.message, /needs the daemon to run as root \(it runs as uid 1000\)/);
  assert.deepEqual(problemsOf(0), []);
});

Deno.test("cmd options resolve user and group names to ids", () => {
  if (Deno.uid() !== 0) return; // resolution is only attempted as root
  const o = options(`token = "t"\nuser = "nobody"\ngroup = "0"`);
  assert.equal(o.uid, 65534);
  assert.equal(o.gid, 0);
  assert.equal(options(`token = "t"\nuser = "nobody"`).gid, 65534, "the user's primary group");
});

Deno.test("cmd environment is the env table, pass_env names and a default PATH only", () => {
  const daemon: Record<string, string> = { HOME: "/root", LANG: "C.UTF-8", SECRET: "x" };
  const env = commandEnvironment(
    { env: { A: "1" }, passEnv: ["LANG", "MISSING"] },
    (name) => daemon[name],
  );
  assert.deepEqual(env, { LANG: "C.UTF-8", A: "1", PATH: DEFAULT_PATH });
  const own = commandEnvironment({ env: { PATH: "/opt/bin" }, passEnv: [] }, () => "/usr/bin");
  assert.equal(own.PATH, "/opt/bin");
  const passed = commandEnvironment({ env: {}, passEnv: ["PATH"] }, () => "/from/daemon");
  assert.equal(passed.PATH, "/from/daemon");
});

Deno.test("check refuses a token file readable by others (exit 78) and accepts mode 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tokenFile = join(dir, "token");
    await Deno.writeTextFile(tokenFile, "s3cret\n");
    await Deno.chmod(tokenFile, 0o644);
    const config = join(dir, "sb.toml");
    await Deno.writeTextFile(config, listener(`token_file = "token"`));
    const bad = await runCli(["check", "-c", config]);
    assert.equal(bad.code, 78, bad.stderr);
    assert.match(
      bad.stderr,
      /token_file: ".*token" is readable by others \(mode 0644\): chmod 600 it/,
    );
    await Deno.chmod(tokenFile, 0o600);
    const good = await runCli(["check", "-c", config]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /cmd-tcp-7009 +cmd +tcp +127\.0\.0\.1:7009 .*auth=token/);
    assert.doesNotMatch(good.stdout, /s3cret/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check refuses auth = none on a non-loopback address (exit 78)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "sb.toml");
    await Deno.writeTextFile(config, listener(`auth = "none"`, "0.0.0.0:7009"));
    const result = await runCli(["check", "-c", config]);
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      /sb\.toml:\d+: listener\[0\]\.auth: "none" is only allowed on a loopback/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the embedded default runs cmd on loopback only when SWITCHBOARD_TOKEN is set", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const withToken = await runCli(["check"], { cwd: dir, env: { SWITCHBOARD_TOKEN: "abc" } });
    assert.equal(withToken.code, 0, withToken.stderr);
    assert.match(withToken.stdout, /^cmd +cmd +tcp +127\.0\.0\.1:7009 /m);
    const without = await runCli(["check"], { cwd: dir, env: { SWITCHBOARD_TOKEN: "" } });
    assert.equal(without.code, 0, without.stderr);
    assert.doesNotMatch(without.stdout, /^cmd /m);
    assert.match(without.stdout, /cmd service skipped/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check as a non-root user refuses user = (exit 78)", async () => {
  if (Deno.uid() !== 0) return; // dropping to another user needs root; the rule is tested above
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o777);
    const config = join(dir, "sb.toml");
    await Deno.writeTextFile(config, listener(`token = "t"\nuser = "nobody"`), { mode: 0o644 });
    const output = await new Deno.Command("setpriv", {
      args: ["--reuid=65534", "--regid=65534", "--clear-groups", Deno.execPath(), "run", "-A"]
        .concat(["--quiet", MAIN, "check", "-c", config]),
      env: { DENO_DIR: join(dir, "cache"), HOME: dir, NO_COLOR: "1" },
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 78, stderr);
    assert.match(stderr, /user: running commands as another user needs the daemon to run as root/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
