/**
 * The machinery `bench/run` stands on: starting a server and knowing when it
 * is ready (a bound port, or systemd's READY=1 on a notify socket), the CPU
 * and memory of a server's whole process tree from /proc, running a load
 * generator, and stopping everything it started by PID.
 *
 * @module
 */

const CLOCK_TICKS = 100; // USER_HZ on Linux
const decoder = new TextDecoder();

/** How a server says it is ready. */
export type Readiness =
  | { kind: "tcp"; port: number }
  | { kind: "udp"; port: number }
  | { kind: "notify" };

/** A server to start. */
export interface ServerSpec {
  /** The program. */
  program: string;
  /** Its arguments. */
  args: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** How readiness is seen. */
  ready: Readiness;
}

/** A server that is running. */
export interface RunningServer {
  /** Its PID (the root of its process tree). */
  readonly pid: number;
  /** Milliseconds from spawn to ready. */
  readonly startupMs: number;
  /** Whether it is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Whether a port is bound on 127.0.0.1, from /proc/net/{tcp,udp}{,6}.
 * @param transport tcp (listening) or udp (bound)
 * @param port the port
 * @returns true when some socket holds it
 */
export function portBound(transport: "tcp" | "udp", port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const file of [`/proc/net/${transport}`, `/proc/net/${transport}6`]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is field 1; state 0A is LISTEN for tcp, 07 is an unconnected udp socket.
      if (fields[1]?.endsWith(hex) && (transport === "udp" || fields[3] === "0A")) return true;
    }
  }
  return false;
}

/**
 * A free port on 127.0.0.1 for `transport`, chosen by the kernel.
 * @param transport tcp or udp
 * @returns the port
 */
export function freePort(transport: "tcp" | "udp" = "tcp"): number {
  if (transport === "tcp") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    return port;
  }
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

/**
 * A port free on both transports (for a server with a TCP and a UDP side).
 * @returns the port
 */
export function freePortBoth(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = freePort("tcp");
    try {
      Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" }).close();
      return port;
    } catch {
      // Taken on UDP: try another.
    }
  }
  throw new Error("no port free on both tcp and udp");
}

/**
 * Starts a server, its output appended to `logFile`, and waits until it is
 * ready (at most 30 s).
 * @param spec what to run and how readiness shows
 * @param logFile where its stdout and stderr go
 * @returns the running server
 * @throws {Error} when it exits or never becomes ready
 */
export async function startServer(spec: ServerSpec, logFile: string): Promise<RunningServer> {
  const log = await Deno.open(logFile, { create: true, append: true });
  let notify: Deno.DatagramConn | undefined;
  const env: Record<string, string> = { ...spec.env };
  if (spec.ready.kind === "notify") {
    const path = `${logFile}.notify`;
    try {
      Deno.removeSync(path);
    } catch {
      // Not there.
    }
    notify = Deno.listenDatagram({ transport: "unixpacket", path });
    env.NOTIFY_SOCKET = path;
  }
  const started = performance.now();
  const child = new Deno.Command(spec.program, {
    args: spec.args,
    cwd: spec.cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const drains = [child.stdout, child.stderr].map((stream) =>
    stream.pipeTo(
      new WritableStream({ write: (chunk) => void log.writeSync(chunk) }),
    ).catch(() => {})
  );
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const server: RunningServer = {
    pid: child.pid,
    startupMs: 0,
    alive: () => !exited,
    async stop(graceMs = 15_000): Promise<void> {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // Already gone.
          }
        }, graceMs);
        await status;
        clearTimeout(timer);
      }
      await Promise.all(drains);
      try {
        notify?.close();
      } catch {
        // Closed already.
      }
      log.close();
    },
  };
  try {
    await waitReady(spec.ready, notify, () => exited);
  } catch (error) {
    await server.stop(1000);
    throw new Error(`${spec.program} ${spec.args.join(" ")}: ${(error as Error).message}`);
  }
  return { ...server, startupMs: performance.now() - started };
}

async function waitReady(
  ready: Readiness,
  notify: Deno.DatagramConn | undefined,
  exited: () => boolean,
): Promise<void> {
  const deadline = performance.now() + 30_000;
  if (ready.kind === "notify") {
    const timer = setTimeout(() => notify!.close(), 30_000);
    try {
      for (;;) {
        const [data] = await notify!.receive();
        if (decoder.decode(data).split("\n").includes("READY=1")) return;
      }
    } catch {
      throw new Error(exited() ? "exited before READY=1" : "no READY=1 within 30 s");
    } finally {
      clearTimeout(timer);
    }
  }
  while (performance.now() < deadline) {
    if (exited()) throw new Error("exited before listening");
    if (portBound(ready.kind, ready.port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`port ${ready.port}/${ready.kind} not bound within 30 s`);
}

interface ProcStat {
  ppid: number;
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // After ")": state ppid … utime(14) stime(15) cutime(16) cstime(17).
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { ppid: Number(fields[1]), ticks };
}

/**
 * The PIDs of a process and all its live descendants.
 * @param root the root PID
 * @returns the PIDs, root first
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/**
 * CPU seconds used by a process tree: every live member's user and system
 * time, plus what its reaped children used (forking servers and the
 * commands cmd runs count, once reaped).
 * @param root the root PID
 * @returns seconds
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / CLOCK_TICKS;
}

/**
 * Resident memory of a process (VmRSS), or of its whole tree.
 * @param root the PID
 * @param tree include every live descendant
 * @returns MiB
 */
export function rssMiB(root: number, tree = false): number {
  let kib = 0;
  for (const pid of tree ? processTree(root) : [root]) {
    try {
      const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)/m);
      kib += Number(match?.[1] ?? 0);
    } catch {
      // Gone.
    }
  }
  return kib / 1024;
}

/** What one load-generator run gave. */
export interface LoadRun {
  /** Its standard output. */
  stdout: string;
  /** Its exit code. */
  code: number;
  /** Wall-clock seconds it ran. */
  wallSeconds: number;
  /** CPU seconds the server tree used meanwhile. */
  serverCpuSeconds: number;
}

/**
 * Runs a load generator against a server, measuring the server tree's CPU.
 * @param argv the generator's command line
 * @param serverPid the server's PID (0: no CPU figure)
 * @param timeoutMs kill the generator after this long
 * @returns its output and the measurements
 */
export async function runLoad(
  argv: readonly string[],
  serverPid: number,
  timeoutMs = 120_000,
): Promise<LoadRun> {
  const cpuBefore = serverPid ? treeCpuSeconds(serverPid) : 0;
  const started = performance.now();
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Done.
    }
  }, timeoutMs);
  const output = await child.output();
  clearTimeout(timer);
  const wallSeconds = (performance.now() - started) / 1000;
  const serverCpuSeconds = serverPid ? treeCpuSeconds(serverPid) - cpuBefore : 0;
  const stderr = decoder.decode(output.stderr).trim();
  if (stderr) {
    console.error(`  ${argv[0]!.split("/").pop()}: ${stderr.split("\n").slice(-3).join(" | ")}`);
  }
  return {
    stdout: decoder.decode(output.stdout),
    code: output.code,
    wallSeconds,
    serverCpuSeconds,
  };
}

/**
 * Parses `key=value key=value` output (the C load generators' format).
 * @param text one line
 * @returns the numeric fields
 */
export function parseFields(text: string): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const match of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9.]+)/g)) {
    fields[match[1]!] = Number(match[2]);
  }
  return fields;
}

/**
 * Runs a command to completion (a build step), failing loudly.
 * @param program the program
 * @param args its arguments
 * @param cwd working directory
 * @returns its standard output
 * @throws {Error} with its output when it fails
 */
export async function mustRun(program: string, args: string[], cwd?: string): Promise<string> {
  const output = await new Deno.Command(program, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = decoder.decode(output.stdout);
  if (output.code !== 0) {
    throw new Error(
      `${program} ${args.join(" ")} failed (${output.code}): ${decoder.decode(output.stderr)}`,
    );
  }
  return text;
}

/** Median and spread of a sample. */
export interface Summary {
  /** The median. */
  median: number;
  /** The smallest value. */
  min: number;
  /** The largest value. */
  max: number;
  /** How many values. */
  n: number;
}

/**
 * Median, min and max of some numbers (NaN ignored).
 * @param values the sample
 * @returns the summary (NaN median when empty)
 */
export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n };
  const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { median, min: sorted[0]!, max: sorted[n - 1]!, n };
}
