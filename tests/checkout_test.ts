/**
 * Running switchboard from a checkout, as the README says: `bin/switchboard`
 * and `npx switchboard` for any verb, and `deno task start` for the daemon,
 * which must never outlive the command that started it.
 */

import assert from "node:assert/strict";
import { VERSION } from "../lib/version.ts";
import { listenerToml, ROOT, tempConfig, waitFor } from "./_helpers.ts";

const LAUNCHER = `${ROOT}/bin/switchboard`;
const decoder = new TextDecoder();

/** A process whose stderr is collected line by line. */
interface Logged extends AsyncDisposable {
  child: Deno.ChildProcess;
  lines: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

function spawnLogged(command: string, args: string[], env: Record<string, string>): Logged {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
    }
    if (pending) lines.push(pending);
  })();
  const waitForLine = async (pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> => {
    let found: RegExpExecArray | null = null;
    await waitFor(() => lines.some((line) => (found = pattern.exec(line)) !== null), timeoutMs)
      .catch(() => {
        throw new Error(`No line matching ${pattern}:\n${lines.join("\n")}`);
      });
    return found!;
  };
  return {
    child,
    lines,
    waitForLine,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      await reading;
    },
  };
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Starts `deno task start` on a config with one echo listener; returns the daemon's pid and port. */
async function startTask(
  command: string,
  args: string[],
  configPath: string,
): Promise<{ task: Logged; pid: number; port: number }> {
  const task = spawnLogged(command, args, { SWITCHBOARD_CONFIG: configPath });
  const port = Number((await task.waitForLine(/Listening on 127\.0\.0\.1:(\d+)\/tcp/))[1]);
  const pid = Number((await task.waitForLine(/switchboard \S+ ready .*pid=(\d+)/))[1]);
  return { task, pid, port };
}

/** Ends a daemon that a failed test left behind, by its pid. */
function reap(pid: number): void {
  if (!alive(pid)) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Gone meanwhile.
  }
}

const ECHO = listenerToml({ name: "echo", service: "echo", listen: "127.0.0.1:0" });

Deno.test("bin/switchboard runs any verb from any directory", async () => {
  await using config = await tempConfig(ECHO);
  const elsewhere = await Deno.makeTempDir();
  try {
    const run = async (args: string[]) => {
      const output = await new Deno.Command(LAUNCHER, {
        args,
        cwd: elsewhere,
        env: { NO_COLOR: "1" },
      })
        .output();
      return {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    };
    const version = await run(["version"]);
    assert.equal(version.code, 0, version.stderr);
    // The checkout runs Deno (runCli may run the built executable instead).
    assert.match(
      version.stdout,
      new RegExp(`^switchboard ${VERSION.replaceAll(".", "\\.")} \\(deno `),
    );
    const check = await run(["check", "-c", config.path]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /echo\s+echo\s+tcp\s+127\.0\.0\.1:0/);
    assert.equal((await run(["echo"])).code, 64, "exit codes pass through");
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("npx switchboard VERB works anywhere in the checkout", async () => {
  const output = await new Deno.Command("npx", {
    args: ["--no-install", "switchboard", "version"],
    cwd: `${ROOT}/docs`,
    env: { NO_COLOR: "1", npm_config_update_notifier: "false" },
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.match(decoder.decode(output.stdout), /^switchboard \S+ \(deno /);
});

Deno.test("deno task start: the process it prints is the daemon, and SIGTERM to it stops it", async () => {
  await using config = await tempConfig(ECHO);
  const { task, pid, port } = await startTask(Deno.execPath(), ["task", "start"], config.path);
  await using _task = task;
  try {
    assert.ok(task.lines.some((line) => line.includes("./bin/switchboard serve")));
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    assert.ok(
      argv.some((arg) => arg.endsWith("/main.ts")) && argv.includes("serve"),
      argv.join(" "),
    );
    Deno.kill(pid, "SIGTERM");
    await task.waitForLine(/SIGTERM: stopping/);
    await task.waitForLine(/Stopped/);
    assert.equal((await task.child.status).code, 0);
    assert.ok(portIsFree(port));
  } finally {
    reap(pid);
  }
});

Deno.test("deno task start: killing the task itself, even with SIGKILL, stops the daemon", async () => {
  await using config = await tempConfig(ECHO);
  const { task, pid, port } = await startTask(Deno.execPath(), ["task", "start"], config.path);
  await using _task = task;
  try {
    task.child.kill("SIGKILL");
    await task.child.status;
    await task.waitForLine(/process \d+ \(.*\) exited: stopping/);
    await task.waitForLine(/Stopped/);
    await waitFor(() => !alive(pid), 10_000);
    assert.ok(portIsFree(port), "the daemon's port is free again");
  } finally {
    reap(pid);
  }
});

Deno.test("npx deno task start: killing npx, the job's leader, stops the daemon", async () => {
  await using config = await tempConfig(ECHO);
  // setsid makes npx lead its own process group, as a shell's job control does.
  const { task, pid, port } = await startTask(
    "setsid",
    ["npx", "--no-install", "deno", "task", "start"],
    config.path,
  );
  await using _task = task;
  try {
    task.child.kill("SIGTERM");
    await task.waitForLine(/Stopped/);
    await waitFor(() => !alive(pid), 10_000);
    assert.ok(portIsFree(port));
  } finally {
    reap(pid);
  }
});

Deno.test("deno task start: Ctrl-C (SIGINT to the job) stops the daemon gracefully, once", async () => {
  await using config = await tempConfig(ECHO);
  const { task, pid } = await startTask("setsid", [Deno.execPath(), "task", "start"], config.path);
  await using _task = task;
  try {
    // The terminal signals the whole foreground group; the task runner also
    // passes it on, so the daemon receives it twice.
    Deno.kill(-task.child.pid, "SIGINT");
    await task.waitForLine(/Stopped/);
    await waitFor(() => !alive(pid), 10_000);
    assert.ok(task.lines.some((line) => /SIGINT: stopping/.test(line)));
    assert.ok(!task.lines.some((line) => line.includes("Second SIGINT")), task.lines.join("\n"));
  } finally {
    reap(pid);
  }
});
