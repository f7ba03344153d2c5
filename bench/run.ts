/**
 * `bench/run`: the one benchmark command. Builds the load generators and
 * the offline executable, installs the peers from Debian when missing
 * (xinetd, socat, ncat), runs every scenario with its servers measured in
 * alternation round by round, measures start-up and memory, and writes
 * bench/RESULTS.md and bench/results.svg (raw figures in bench/out/).
 *
 * Environment: ROUNDS (3), DURATION seconds per measurement (3), WARMUP (1),
 * ONLY="tcp-echo udp-echo … footprint" to run some scenarios, SKIP_BUILD=1
 * to reuse dist/switchboard, STARTS (10) start-ups per build for the
 * footprint. A development run: `ROUNDS=1 DURATION=2 bench/run`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import {
  freePort,
  freePortBoth,
  mustRun,
  parseFields,
  rssMiB,
  runLoad,
  type RunningServer,
  startServer,
  summarize,
} from "./harness.ts";
import { type Footprint, type Measured, ratios, renderMarkdown, renderSvg } from "./report.ts";
import {
  type BenchContext,
  type BenchServer,
  portFor,
  type Scenario,
  scenarios,
  switchboardSpec,
  variants,
} from "./scenarios.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "bench", "out");
const env = (name: string, fallback: string): string => Deno.env.get(name) || fallback;
const ROUNDS = Number(env("ROUNDS", "3"));
const DURATION = Number(env("DURATION", "3"));
const WARMUP = Number(env("WARMUP", "1"));
const STARTS = Number(env("STARTS", "10"));
const ONLY = env("ONLY", "").split(/[\s,]+/).filter(Boolean);
// A bound on the whole run: scenarios that would start after it are skipped.
const BUDGET_MS = Number(env("BUDGET_SECONDS", "1500")) * 1000;

const running = new Set<RunningServer>();
const progress = (text: string): void => console.error(`[bench] ${text}`);

async function stopAll(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop(5000)));
  running.clear();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    progress(`${signal}: stopping every server started`);
    void stopAll().finally(() => Deno.exit(130));
  });
}

const C_PROGRAMS: [string, string[]][] = [
  ["echo_load", []],
  ["c_echo_server", []],
  ["c_udp_echo_server", []],
  ["time_udp_load", []],
  ["chat_udp_load", []],
  ["chat_tcp_load", []],
  ["cmd_load", ["-pthread"]],
  ["file_load", ["-pthread"]],
];

async function build(): Promise<void> {
  await Deno.mkdir(OUT, { recursive: true });
  for (const [name, flags] of C_PROGRAMS) {
    await mustRun(
      "gcc",
      ["-O2", "-Wall", ...flags, "-o", join(OUT, name), `bench/${name}.c`],
      ROOT,
    );
  }
  const executable = join(ROOT, "dist", "switchboard");
  let exists = false;
  try {
    exists = Deno.statSync(executable).isFile;
  } catch {
    // Not built.
  }
  if (!exists || env("SKIP_BUILD", "") !== "1") {
    progress("building dist/switchboard (deno task build)");
    await mustRun(Deno.execPath(), ["run", "--allow-all", "deploy/executable/build.ts"], ROOT);
  }
}

function has(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(dir, program)).isFile) return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

async function installPeers(): Promise<void> {
  const missing = [["xinetd", "xinetd"], ["socat", "socat"], ["ncat", "ncat"]]
    .filter(([program]) => !has(program!)).map(([, pkg]) => pkg!);
  if (missing.length === 0) return;
  progress(`installing ${missing.join(" ")} from Debian`);
  const sudo = Deno.uid() === 0 ? [] : ["sudo", "-n"];
  const apt = async (args: string[]): Promise<void> => {
    const [program, ...rest] = [...sudo, "apt-get", ...args];
    await mustRun(program!, rest);
  };
  try {
    await apt(["install", "-y", "-qq", "--no-install-recommends", ...missing]);
  } catch {
    await apt(["update", "-qq"]);
    await apt(["install", "-y", "-qq", "--no-install-recommends", ...missing]);
  }
}

async function prepareFiles(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const big = join(dir, "big.bin");
  let size = 0;
  try {
    size = Deno.statSync(big).size;
  } catch {
    // Made below.
  }
  if (size !== 2 ** 30) {
    progress("writing a 1 GiB file of random bytes");
    const file = await Deno.open(big, { write: true, create: true, truncate: true });
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 1024; i++) {
      for (let off = 0; off < chunk.length; off += 65536) {
        crypto.getRandomValues(chunk.subarray(off, off + 65536));
      }
      await file.write(chunk);
    }
    file.close();
  }
  for (let i = 0; i < 1000; i++) {
    const name = join(dir, `f${String(i).padStart(4, "0")}.bin`);
    try {
      if (Deno.statSync(name).size === 4096) continue;
    } catch {
      // Made now.
    }
    Deno.writeFileSync(name, crypto.getRandomValues(new Uint8Array(4096)));
  }
  // Warm the page cache, as every server reads the same files.
  await mustRun("sh", ["-c", `cat '${dir}'/*.bin > /dev/null`]);
}

function rotate<T>(items: readonly T[], round: number): T[] {
  const k = (round - 1) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function launch(
  scenario: Scenario,
  server: BenchServer,
  tmp: string,
): Promise<{ running: RunningServer; port: number }> {
  const port = portFor(scenario);
  const log = join(tmp, `${scenario.id}-${server.id.replace(/\W+/g, "_")}.log`);
  const started = await startServer(server.spec(port), log);
  running.add(started);
  return { running: started, port };
}

async function stop(server: RunningServer): Promise<void> {
  running.delete(server);
  await server.stop();
}

async function runScenario(scenario: Scenario, tmp: string, measured: Measured[]): Promise<void> {
  progress(`${scenario.id}: ${scenario.title}`);
  const live = new Map<string, { running: RunningServer; port: number }>();
  try {
    if (!scenario.fresh) {
      for (const server of scenario.servers) {
        live.set(server.id, await launch(scenario, server, tmp));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const server of rotate(scenario.servers, round)) {
        let instance = live.get(server.id);
        if (!instance || !instance.running.alive()) {
          if (instance) progress(`  ${server.id} died; restarting it`);
          instance = await launch(scenario, server, tmp);
          live.set(server.id, instance);
        }
        const sample = await server.measure(instance.port, instance.running.pid);
        measured.push({ scenario: scenario.id, server: server.id, round, sample });
        progress(
          `  round ${round} ${server.id}: ${sample.value.toFixed(2)} ${scenario.unit}${
            sample.cpu === undefined ? "" : `, ${sample.cpu.toFixed(2)} ${scenario.cpuUnit}`
          }${sample.flaw ? ` (${sample.flaw})` : ""}`,
        );
        if (scenario.fresh) {
          await stop(instance.running);
          live.delete(server.id);
        }
      }
    }
  } finally {
    await Promise.all([...live.values()].map((instance) => stop(instance.running)));
  }
}

async function footprint(context: BenchContext): Promise<Footprint> {
  progress("footprint: start-up to READY, idle RSS, 10,000 idle connections");
  const rows: Footprint["rows"] = [];
  const notes: string[] = [];
  const idleListeners = (port: number) => [
    { name: "echo-tcp", service: "echo", listen: `127.0.0.1:${port}`, max_connections: 11000 },
    { name: "echo-udp", service: "echo", transport: "udp", listen: `127.0.0.1:${port}` },
    { name: "chat", service: "chat", listen: `127.0.0.1:${port + 1}` },
    { name: "time", service: "time", listen: `127.0.0.1:${port + 2}` },
  ];
  for (const variant of variants(context)) {
    const startup: number[] = [];
    const rss: number[] = [];
    const starts = variant.workers === 1 ? STARTS : 3;
    for (let i = 0; i < starts; i++) {
      const port = freePortBoth();
      const spec = switchboardSpec(context, variant, "idle", idleListeners(port));
      const server = await startServer(spec, join(context.tmp, `idle-${variant.build}.log`));
      running.add(server);
      startup.push(server.startupMs);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      rss.push(rssMiB(server.pid, true));
      await stop(server);
    }
    rows.push({
      what: "start-up to READY=1",
      variant: variant.id,
      summary: summarize(startup),
      unit: "ms",
      target: variant.workers === 1 ? 150 : undefined,
    });
    rows.push({
      what: "idle RSS (echo tcp+udp, chat, time)",
      variant: variant.id,
      summary: summarize(rss),
      unit: "MiB",
      target: variant.workers === 1 ? 40 : undefined,
    });
  }
  const peers: [string, (port: number) => Parameters<typeof startServer>[0]][] = [
    ["bare Deno echo loop", (port) => ({
      program: context.deno,
      args: ["run", "-A", join(ROOT, "bench/deno_echo_bare.ts"), `${port}`, "2048"],
      ready: { kind: "tcp", port },
    })],
    ["Python asyncio echo", (port) => ({
      program: "python3",
      args: [join(ROOT, "bench/reference/py_echo_tcp.py"), `${port}`, "proto"],
      ready: { kind: "tcp", port },
    })],
  ];
  for (const [name, spec] of peers) {
    const server = await startServer(spec(freePort()), join(context.tmp, "idle-peer.log"));
    running.add(server);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    rows.push({
      what: "idle RSS",
      variant: name,
      summary: summarize([rssMiB(server.pid)]),
      unit: "MiB",
    });
    await stop(server);
  }
  for (const variant of variants(context).filter((v) => v.workers === 1)) {
    const added: number[] = [];
    for (let i = 0; i < Math.max(1, Math.min(ROUNDS, 2)); i++) {
      const port = freePortBoth();
      const spec = switchboardSpec(context, variant, "idle", idleListeners(port));
      const server = await startServer(spec, join(context.tmp, `conns-${variant.build}.log`));
      running.add(server);
      const run = await runLoad([
        join(OUT, "echo_load"),
        "-m",
        `${server.pid}`,
        "-c",
        "10000",
        "-s",
        "64",
        "-t",
        "2",
        `${port}`,
      ], 0);
      const fields = parseFields(run.stdout);
      added.push(((fields.rss_idle_kib ?? NaN) - (fields.rss_before_kib ?? NaN)) / 1024);
      await stop(server);
    }
    rows.push({
      what: "RSS added by 10,000 idle TCP connections",
      variant: variant.id,
      summary: summarize(added),
      unit: "MiB",
      target: 160,
    });
  }
  const size = Deno.statSync(context.executable).size / 2 ** 20;
  const denoSize = Deno.statSync(context.deno).size / 2 ** 20;
  notes.push(
    `dist/switchboard is ${size.toFixed(1)} MiB, one file; \`deno run\` needs the Deno binary (${
      denoSize.toFixed(1)
    } MiB) and the source tree.`,
    `Start-up is spawn → READY=1 on NOTIFY_SOCKET, ${STARTS} starts per single-process build; RSS is VmRSS 1.5 s after READY (the whole process tree for workers=auto).`,
  );
  return { rows, notes };
}

async function main(): Promise<number> {
  const started = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "switchboard-bench-" });
  try {
    await build();
    await installPeers();
    const context: BenchContext = {
      root: ROOT,
      out: OUT,
      tmp,
      deno: Deno.execPath(),
      executable: join(ROOT, "dist", "switchboard"),
      files: join(OUT, "files"),
      duration: DURATION,
      warmup: WARMUP,
      autoWorkers: availableParallelism(),
    };
    const all = scenarios(context);
    const chosen = ONLY.length ? all.filter((s) => ONLY.includes(s.id)) : all;
    if (chosen.some((s) => s.service === "file")) await prepareFiles(context.files);
    const measured: Measured[] = [];
    const ran: Scenario[] = [];
    for (const scenario of chosen) {
      if (performance.now() - started > BUDGET_MS) {
        progress(`time budget spent: ${scenario.id} skipped`);
        continue;
      }
      await runScenario(scenario, tmp, measured);
      ran.push(scenario);
    }
    const foot = ONLY.length === 0 || ONLY.includes("footprint")
      ? await footprint(context)
      : undefined;
    const load = Deno.loadavg().map((v) => v.toFixed(1)).join(", ");
    const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
    const input = {
      scenarios: ran,
      measured,
      footprint: foot,
      header: [
        `Run ${
          new Date().toISOString().slice(0, 16)
        }Z on ${availableParallelism()} cores (${cpu}),`,
        `Linux ${Deno.osRelease()}, Deno ${Deno.version.deno}; ${ROUNDS} rounds of ${DURATION} s`,
        `(+${WARMUP} s warm-up); load average at the end ${load}; the whole run took`,
        `${((performance.now() - started) / 60000).toFixed(1)} min.`,
      ],
      command: `ROUNDS=${ROUNDS} DURATION=${DURATION} bench/run${
        ONLY.length ? ` (ONLY=${ONLY.join(",")})` : ""
      }`,
    };
    const stamp = new Date().toISOString().replaceAll(/[:.]/g, "-").slice(0, 19);
    await Deno.writeTextFile(join(OUT, `results-${stamp}.json`), JSON.stringify(input, null, 1));
    const partial = ONLY.length > 0;
    const markdown = renderMarkdown(input);
    const svg = renderSvg(ratios(input), "switchboard against what people use instead");
    const mdPath = join(ROOT, "bench", partial ? "out/RESULTS-partial.md" : "RESULTS.md");
    const svgPath = join(ROOT, "bench", partial ? "out/results.svg" : "results.svg");
    await Deno.writeTextFile(mdPath, markdown);
    await Deno.writeTextFile(svgPath, svg);
    progress(`wrote ${mdPath} and ${svgPath}`);
    return 0;
  } finally {
    await stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

Deno.exit(await main());
