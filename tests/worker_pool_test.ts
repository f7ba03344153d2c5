/**
 * The worker pool against stand-in workers (tests/testdata/fake_worker.ts)
 * that misbehave on purpose: a late answer to a revocation, a restarted
 * worker that hangs while starting.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { WorkerPool } from "../lib/worker_pool.ts";
import { SERVICES } from "../handlers/mod.ts";
import { captureLog, listenerToml, waitFor } from "./_helpers.ts";

const FAKE = new URL("./testdata/fake_worker.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

function fakePool(args: string[]): { pool: WorkerPool; lines: string[] } {
  const { log, lines } = captureLog();
  const pool = new WorkerPool({
    count: 1,
    log,
    services: SERVICES,
    command: { program: Deno.execPath(), args: ["run", "--allow-all", FAKE, ...args] },
  });
  return { pool, lines };
}

function echoConfig() {
  const text = listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" });
  return { ...parseConfig(text, "t.toml", { services: SERVICES }), text };
}

Deno.test("spare slots given back after the pool stopped waiting still come back", async () => {
  const { pool } = fakePool(["late-revoke"]);
  try {
    await pool.apply(echoConfig());
    await waitFor(() => pool.broker.held("x") === 8, 10_000);
    // The worker gave up all 8 when asked; its answer comes after the wait.
    await waitFor(() => pool.broker.held("x") === 0, 15_000);
  } finally {
    await pool.stop(100);
  }
});

Deno.test("a restarted worker that hangs while starting does not stall the stop", async () => {
  const dir = await Deno.makeTempDir();
  const { pool, lines } = fakePool(["hang-on-restart", `${dir}/started`]);
  try {
    await pool.apply(echoConfig());
    // Started again (and waiting, forever, for its config's answer).
    await waitFor(() => lines.filter((l) => l.includes("Worker 1 started")).length === 2, 10_000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<"stalled">((resolve) => {
      timer = setTimeout(() => resolve("stalled"), 20_000);
    });
    const stopping = pool.stop(100);
    const outcome = await Promise.race([stopping.then(() => "stopped" as const), stalled]);
    clearTimeout(timer);
    if (outcome === "stalled") {
      for (const pid of pool.pids) Deno.kill(pid, "SIGKILL");
      await stopping;
    }
    assert.equal(outcome, "stopped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker gets the supervisor's permissions, no more", async () => {
  const script = `import { selfCommand } from ${
    JSON.stringify(new URL("../lib/worker_pool.ts", import.meta.url).href)
  };
console.log(JSON.stringify(selfCommand().args));`;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const run = async (flags: string[]): Promise<string[]> => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", "--config", CONFIG, ...flags, file],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.ok(output.success);
    return JSON.parse(new TextDecoder().decode(output.stdout)) as string[];
  };
  const narrow = await run(["--allow-net", "--allow-run", "--allow-read=/tmp"]);
  const allows = narrow.filter((a) => a.startsWith("--allow"));
  assert.deepEqual(allows, ["--allow-net", "--allow-run"]);
  const all = await run(["--allow-all"]);
  for (const name of ["read", "write", "net", "env", "sys", "run", "ffi", "import"]) {
    assert.ok(all.includes(`--allow-${name}`), `${name}: ${all}`);
  }
  await Deno.remove(file);
});
