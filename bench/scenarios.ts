/**
 * What `bench/run` measures: each scenario names its servers (switchboard's
 * variants, the peers people would use instead, the C reference where there
 * is one), how each is started, and how one measurement of it runs.
 *
 * @module
 */

import { join } from "node:path";
import { parseConfig } from "../lib/config.ts";
import { SERVICES } from "../handlers/mod.ts";
import {
  freePort,
  freePortBoth,
  type LoadRun,
  parseFields,
  runLoad,
  type ServerSpec,
} from "./harness.ts";

/** Paths and settings every scenario needs. */
export interface BenchContext {
  /** The repository. */
  root: string;
  /** Built load generators and C servers. */
  out: string;
  /** A scratch directory for configs and logs. */
  tmp: string;
  /** The Deno binary. */
  deno: string;
  /** The offline executable. */
  executable: string;
  /** Served root of the file scenarios. */
  files: string;
  /** Seconds per measurement (after warm-up). */
  duration: number;
  /** Warm-up seconds. */
  warmup: number;
  /** How many processes `workers = "auto"` gives here. */
  autoWorkers: number;
}

/** One measurement's result. */
export interface Sample {
  /** The scenario's primary figure. */
  value: number;
  /** Server CPU per operation, in the scenario's CPU unit. */
  cpu?: number;
  /** Secondary figures (latency percentiles, loss). */
  extra?: Record<string, number>;
  /** Why this sample is suspect, if it is. */
  flaw?: string;
}

/** A server as a scenario runs it. */
export interface BenchServer {
  /** Short id, used in tables and the chart. */
  id: string;
  /** Which side it is on. */
  role: "switchboard" | "peer" | "reference";
  /** Starts on `port`; the spec says how. */
  spec(port: number): ServerSpec;
  /** Measures it once. */
  measure(port: number, pid: number): Promise<Sample>;
  /** The command line shown in the report (`PORT` for the port). */
  command: string;
  /** The load generator's command line shown in the report. */
  load: string;
}

/** A scenario: servers, what is measured, and how the ratio is read. */
export interface Scenario {
  /** Short id (`ONLY=` picks scenarios by it). */
  id: string;
  /** The service section it belongs to in RESULTS.md. */
  service: string;
  /** A one-line title. */
  title: string;
  /** Unit of the primary figure. */
  unit: string;
  /** Unit of the CPU figure. */
  cpuUnit: string;
  /** Whether more is better (throughput) or less (latency). */
  higherIsBetter: boolean;
  /** Server id the ratio is taken against; "best-peer" for the best of the peers. */
  reference: string;
  /** The target for switchboard ÷ reference (or reference ÷ switchboard). */
  target?: number;
  /** A fresh server for every measurement (a chat relay remembers its members). */
  fresh?: boolean;
  /** The servers. */
  servers: BenchServer[];
  /** Extra figures to show as columns, by key. */
  columns?: { key: string; label: string; digits?: number }[];
}

/** The switchboard variants every scenario can run. */
export interface Variant {
  /** Short id. */
  id: string;
  /** `deno run` or the offline executable. */
  build: "deno" | "executable";
  /** `[daemon] workers`. */
  workers: number | "auto";
}

/**
 * The three switchboard variants: `deno run` with one process, `deno run`
 * with `workers = "auto"`, and the offline executable with one process.
 * @param context the bench context
 * @returns the variants (auto dropped on a one-core machine)
 */
export function variants(context: BenchContext): Variant[] {
  const list: Variant[] = [
    { id: "switchboard", build: "deno", workers: 1 },
    { id: `switchboard workers=auto (${context.autoWorkers})`, build: "deno", workers: "auto" },
    { id: "executable", build: "executable", workers: 1 },
  ];
  const several = context.autoWorkers > 1 && acceptsWorkers();
  return several ? list : list.filter((v) => v.workers === 1);
}

/** Whether this checkout's config knows `[daemon] workers` (the multi-process daemon). */
function acceptsWorkers(): boolean {
  try {
    parseConfig("[daemon]\nworkers = 2\n", "probe.toml", { services: SERVICES });
    return true;
  } catch {
    return false;
  }
}

function toml(lines: Record<string, unknown>[], workers: number | "auto"): string {
  const daemon = `[daemon]\nlog_level = "warn"\nshutdown_timeout = "2s"\n` +
    (workers === 1 ? "" : `workers = ${JSON.stringify(workers)}\n`);
  const listeners = lines.map((table) =>
    "[[listener]]\n" +
    Object.entries(table).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n")
  );
  return `${daemon}\n${listeners.join("\n\n")}\n`;
}

/**
 * Writes a switchboard config and returns how to run a variant on it.
 * @param context the bench context
 * @param variant which build and how many workers
 * @param name the config's file name
 * @param listeners the listener tables
 * @returns the server spec
 */
export function switchboardSpec(
  context: BenchContext,
  variant: Variant,
  name: string,
  listeners: Record<string, unknown>[],
): ServerSpec {
  const file = join(context.tmp, `${name}-${variant.build}-${variant.workers}.toml`);
  Deno.writeTextFileSync(file, toml(listeners, variant.workers));
  return variant.build === "deno"
    ? {
      program: context.deno,
      args: ["run", "-A", "--quiet", join(context.root, "main.ts"), "serve", "-c", file],
      cwd: context.root,
      ready: { kind: "notify" },
    }
    : {
      program: context.executable,
      args: ["serve", "-c", file],
      cwd: context.root,
      ready: { kind: "notify" },
    };
}

function switchboardCommand(variant: Variant): string {
  const base = variant.build === "deno"
    ? "deno run -A main.ts serve -c CFG"
    : "dist/switchboard serve -c CFG";
  return `${base} (workers = ${JSON.stringify(variant.workers)})`;
}

function cpuPer(run: LoadRun, operationsPerSecond: number, scale: number): number | undefined {
  if (!(operationsPerSecond > 0) || run.wallSeconds <= 0) return undefined;
  return run.serverCpuSeconds / run.wallSeconds / operationsPerSecond * scale;
}

function xinetdConfig(context: BenchContext, name: string, services: string[]): string {
  const file = join(context.tmp, `xinetd-${name}.conf`);
  Deno.writeTextFileSync(
    file,
    "defaults\n{\n\tinstances = UNLIMITED\n\tper_source = UNLIMITED\n\tcps = 1000000 1\n}\n" +
      services.join("\n"),
  );
  return file;
}

function xinetdSpec(config: string, ready: ServerSpec["ready"]): ServerSpec {
  return { program: "xinetd", args: ["-dontfork", "-stayalive", "-f", config], ready };
}

const user = (): string => Deno.env.get("USER") ?? "root";

// ---------------------------------------------------------------------------
// TCP echo

function tcpEcho(context: BenchContext): Scenario {
  const { out, duration, warmup } = context;
  const loadArgs = (port: number) => [
    join(out, "echo_load"),
    "-c",
    "50",
    "-s",
    "64",
    "-w",
    String(warmup),
    "-d",
    String(duration),
    `${port}`,
  ];
  const load = `bench/out/echo_load -c 50 -s 64 -w ${warmup} -d ${duration} PORT`;
  const measure = async (port: number, pid: number): Promise<Sample> => {
    const run = await runLoad(loadArgs(port), pid);
    const fields = parseFields(run.stdout);
    const rate = fields.rt_per_s ?? NaN;
    return {
      value: rate,
      cpu: cpuPer(run, rate, 1e6),
      extra: { p50: fields.p50_us ?? NaN, p99: fields.p99_us ?? NaN },
      flaw: run.code === 0 ? undefined : `exit ${run.code}`,
    };
  };
  const sb = variants(context).map((variant): BenchServer => ({
    id: variant.id,
    role: "switchboard",
    spec: (port) =>
      switchboardSpec(context, variant, "echo-tcp", [{
        name: "echo",
        service: "echo",
        listen: `127.0.0.1:${port}`,
        max_connections: 11000,
      }]),
    measure,
    command: switchboardCommand(variant),
    load,
  }));
  const peer = (
    id: string,
    role: BenchServer["role"],
    spec: (port: number) => ServerSpec,
    command: string,
  ): BenchServer => ({ id, role, spec, measure, command, load });
  const tcpReady = (port: number) => ({ kind: "tcp" as const, port });
  return {
    id: "tcp-echo",
    service: "echo",
    title: "TCP echo, 50 connections × 64 B, closed loop",
    unit: "round trips/s",
    cpuUnit: "µs CPU per round trip",
    higherIsBetter: true,
    reference: "C epoll server",
    target: 0.9,
    columns: [{ key: "p50", label: "p50 µs" }, { key: "p99", label: "p99 µs" }],
    servers: [
      ...sb,
      peer("C epoll server", "reference", (port) => ({
        program: join(out, "c_echo_server"),
        args: [`${port}`],
        ready: tcpReady(port),
      }), "bench/out/c_echo_server PORT"),
      peer("bare Deno loop", "peer", (port) => ({
        program: context.deno,
        args: ["run", "-A", join(context.root, "bench/deno_echo_bare.ts"), `${port}`, "2048"],
        ready: tcpReady(port),
      }), "deno run -A bench/deno_echo_bare.ts PORT 2048"),
      peer("Python asyncio", "peer", (port) => ({
        program: "python3",
        args: [join(context.root, "bench/reference/py_echo_tcp.py"), `${port}`, "proto"],
        ready: tcpReady(port),
      }), "python3 bench/reference/py_echo_tcp.py PORT proto"),
      peer("xinetd", "peer", (port) =>
        xinetdSpec(
          xinetdConfig(context, "echo", [
            `service echo\n{\n\ttype = INTERNAL UNLISTED\n\tid = echo-stream\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = ${port}\n\tbind = 127.0.0.1\n\twait = no\n\tuser = ${user()}\n}\n`,
          ]),
          tcpReady(port),
        ), "xinetd -dontfork -f CFG (internal echo-stream)"),
      peer("socat", "peer", (port) => ({
        program: "socat",
        args: [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, "EXEC:cat"],
        ready: tcpReady(port),
      }), "socat TCP-LISTEN:PORT,bind=127.0.0.1,fork,reuseaddr EXEC:cat"),
      peer("ncat", "peer", (port) => ({
        program: "ncat",
        args: ["-k", "-l", "127.0.0.1", `${port}`, "-e", "/bin/cat"],
        ready: tcpReady(port),
      }), "ncat -k -l 127.0.0.1 PORT -e /bin/cat"),
    ],
  };
}

// ---------------------------------------------------------------------------
// UDP echo and time

function udpLoad(
  context: BenchContext,
  request: string,
): { args: (port: number) => string[]; load: string; measure: BenchServer["measure"] } {
  const { out, duration, warmup } = context;
  const args = (port: number) => [
    join(out, "time_udp_load"),
    `${port}`,
    "16",
    String(duration),
    String(warmup),
    request,
  ];
  const measure = async (port: number, pid: number): Promise<Sample> => {
    const run = await runLoad(args(port), pid);
    const fields = parseFields(run.stdout);
    const rate = fields.rate ?? NaN;
    const flaw = run.code !== 0
      ? `exit ${run.code}`
      : (fields.bad ?? 0) > 0
      ? `${fields.bad} bad replies`
      : undefined;
    return {
      value: rate,
      cpu: cpuPer(run, rate, 1e6),
      extra: { timeouts: fields.timeouts ?? 0 },
      flaw,
    };
  };
  return {
    args,
    load: `bench/out/time_udp_load PORT 16 ${duration} ${warmup} '${request}'`,
    measure,
  };
}

function udpEcho(context: BenchContext): Scenario {
  const { load, measure } = udpLoad(context, "0123456789abcdef0123456789abcdef");
  const ready = (port: number) => ({ kind: "udp" as const, port });
  return {
    id: "udp-echo",
    service: "echo",
    title: "UDP echo, 16 client sockets, closed loop, 32 B",
    unit: "requests/s",
    cpuUnit: "µs CPU per request",
    higherIsBetter: true,
    reference: "Python recvfrom/sendto",
    target: 1.0,
    columns: [{ key: "timeouts", label: "timeouts" }],
    servers: [
      ...variants(context).map((variant): BenchServer => ({
        id: variant.id,
        role: "switchboard",
        spec: (port) =>
          switchboardSpec(context, variant, "echo-udp", [{
            name: "echo",
            service: "echo",
            transport: "udp",
            listen: `127.0.0.1:${port}`,
          }]),
        measure,
        command: switchboardCommand(variant),
        load,
      })),
      {
        id: "Python recvfrom/sendto",
        role: "reference",
        spec: (port) => ({
          program: "python3",
          args: [join(context.root, "bench/reference/py_echo_udp.py"), `${port}`],
          ready: ready(port),
        }),
        measure,
        command: "python3 bench/reference/py_echo_udp.py PORT",
        load,
      },
      {
        id: "C recvfrom/sendto",
        role: "peer",
        spec: (port) => ({
          program: join(context.out, "c_udp_echo_server"),
          args: [`${port}`],
          ready: ready(port),
        }),
        measure,
        command: "bench/out/c_udp_echo_server PORT",
        load,
      },
    ],
  };
}

function udpTime(context: BenchContext): Scenario {
  const format = "%Y-%m-%d %H:%M:%S";
  const { load, measure } = udpLoad(context, format);
  const ready = (port: number) => ({ kind: "udp" as const, port });
  return {
    id: "udp-time",
    service: "time",
    title: `UDP time, 16 client sockets, closed loop, format '${format}'`,
    unit: "requests/s",
    cpuUnit: "µs CPU per request",
    higherIsBetter: true,
    reference: "Python strftime",
    target: 1.0,
    columns: [{ key: "timeouts", label: "timeouts" }],
    servers: [
      ...variants(context).map((variant): BenchServer => ({
        id: variant.id,
        role: "switchboard",
        spec: (port) =>
          switchboardSpec(context, variant, "time-udp", [{
            name: "time",
            service: "time",
            listen: `127.0.0.1:${port}`,
          }]),
        measure,
        command: switchboardCommand(variant),
        load,
      })),
      {
        id: "Python strftime",
        role: "reference",
        spec: (port) => ({
          program: "python3",
          args: [join(context.root, "bench/reference/py_time_udp.py"), `${port}`],
          ready: ready(port),
        }),
        measure,
        command: "python3 bench/reference/py_time_udp.py PORT",
        load,
      },
      {
        id: "xinetd daytime-dgram",
        role: "peer",
        spec: (port) =>
          xinetdSpec(
            xinetdConfig(context, "daytime", [
              `service daytime\n{\n\ttype = INTERNAL UNLISTED\n\tid = daytime-dgram\n\tsocket_type = dgram\n\tprotocol = udp\n\tport = ${port}\n\tbind = 127.0.0.1\n\twait = yes\n\tuser = ${user()}\n}\n`,
            ]),
            ready(port),
          ),
        measure,
        command: "xinetd -dontfork -f CFG (internal daytime-dgram: ignores the format)",
        load,
      },
    ],
  };
}

// ---------------------------------------------------------------------------
// Chat

const CHAT_LISTENER = (transport: "udp" | "tcp", port: number): Record<string, unknown> => ({
  name: "chat",
  service: "chat",
  transport,
  listen: `127.0.0.1:${port}`,
  max_members: 1000,
  member_rate: "100000000/s",
  member_burst: 1000000,
  ...(transport === "tcp" ? { max_connections: 1000 } : {}),
});

function chatScenario(
  context: BenchContext,
  options: {
    id: string;
    title: string;
    transport: "udp" | "tcp";
    loadArgs: string[];
    higherIsBetter: boolean;
    reference: BenchServer;
    target: number;
    value: (fields: Record<string, number>) => number;
    unit: string;
  },
): Scenario {
  const program = join(
    context.out,
    options.transport === "udp" ? "chat_udp_load" : "chat_tcp_load",
  );
  const load = `bench/out/${
    options.transport === "udp" ? "chat_udp_load" : "chat_tcp_load"
  } -p PORT ${options.loadArgs.join(" ")}`;
  const measure = async (port: number, pid: number): Promise<Sample> => {
    const run = await runLoad([program, "-p", `${port}`, ...options.loadArgs], pid);
    const f = parseFields(run.stdout);
    const deliveries = f.deliveries_per_s ?? NaN;
    const flaw = run.code !== 0
      ? `exit ${run.code}`
      : (f.stalled ?? 0) > 0 || (f.join_missing ?? 0) > 0
      ? "stalled or a join went missing"
      : undefined;
    return {
      value: options.value(f),
      cpu: cpuPer(run, deliveries, 1e6),
      extra: { p50: f.p50_us ?? NaN, p99: f.p99_us ?? NaN, loss: f.loss_pct ?? NaN, deliveries },
      flaw,
    };
  };
  const sb = variants(context).filter((v) => v.workers === 1).map((variant): BenchServer => ({
    id: variant.id,
    role: "switchboard",
    spec: (port) =>
      switchboardSpec(context, variant, `chat-${options.transport}`, [
        CHAT_LISTENER(options.transport, port),
      ]),
    measure,
    command: switchboardCommand(variant),
    load,
  }));
  return {
    id: options.id,
    service: "chat",
    title: options.title,
    unit: options.unit,
    cpuUnit: "µs CPU per delivery",
    higherIsBetter: options.higherIsBetter,
    reference: options.reference.id,
    target: options.target,
    fresh: true,
    columns: [
      { key: "deliveries", label: "deliveries/s" },
      { key: "p50", label: "p50 µs" },
      { key: "p99", label: "p99 µs" },
      { key: "loss", label: "loss %", digits: 2 },
    ],
    servers: [...sb, { ...options.reference, measure, load }],
  };
}

function chatScenarios(context: BenchContext): Scenario[] {
  const python: BenchServer = {
    id: "Python relay",
    role: "reference",
    spec: (port) => ({
      program: "python3",
      args: [join(context.root, "bench/reference/py_chat_udp.py"), `${port}`],
      ready: { kind: "udp", port },
    }),
    measure: () => Promise.reject(new Error("replaced")),
    command: "python3 bench/reference/py_chat_udp.py PORT",
    load: "",
  };
  const ncat: BenchServer = {
    id: "ncat --chat",
    role: "reference",
    spec: (port) => ({
      program: "ncat",
      args: ["--chat", "-l", "127.0.0.1", `${port}`, "-m", "1000"],
      ready: { kind: "tcp", port },
    }),
    measure: () => Promise.reject(new Error("replaced")),
    command: "ncat --chat -l 127.0.0.1 PORT -m 1000",
    load: "",
  };
  return [
    chatScenario(context, {
      id: "chat-udp",
      title: "chat over UDP, 50 members, closed loop (≤ 64 messages in flight)",
      transport: "udp",
      loadArgs: ["-n", "50", "-m", "8000"],
      higherIsBetter: true,
      reference: python,
      target: 1.0,
      value: (f) => f.deliveries_per_s ?? NaN,
      unit: "deliveries/s",
    }),
    chatScenario(context, {
      id: "chat-latency",
      title: "chat over UDP, 50 members, open loop at 1,000 messages/s: p99 delivery latency",
      transport: "udp",
      loadArgs: ["-n", "50", "-m", "3000", "-r", "1000"],
      higherIsBetter: false,
      reference: python,
      target: 1.0,
      value: (f) => f.p99_us ?? NaN,
      unit: "µs p99",
    }),
    chatScenario(context, {
      id: "chat-tcp",
      title: "chat over TCP, 50 members, window 4 messages",
      transport: "tcp",
      loadArgs: ["-n", "50", "-m", "20000", "-w", "4"],
      higherIsBetter: true,
      reference: ncat,
      target: 1.0,
      value: (f) => f.deliveries_per_s ?? NaN,
      unit: "deliveries/s",
    }),
  ];
}

// ---------------------------------------------------------------------------
// cmd

const TOKEN = "bench-token";

function cmdScenario(context: BenchContext, clients: number, command: string): Scenario {
  const { out, duration } = context;
  const measureWith = (mode: string) => async (port: number, pid: number): Promise<Sample> => {
    const run = await runLoad([
      join(out, "cmd_load"),
      mode,
      `${port}`,
      `${clients}`,
      String(duration),
      TOKEN,
      command,
    ], pid);
    let parsed: Record<string, number> = {};
    try {
      parsed = JSON.parse(run.stdout);
    } catch {
      // Reported as a flaw below.
    }
    const rate = parsed.per_second ?? NaN;
    const flaw = run.code !== 0
      ? `exit ${run.code}`
      : (parsed.errors ?? 0) > 0
      ? `${parsed.errors} errors`
      : undefined;
    return {
      value: rate,
      cpu: cpuPer(run, rate, 1e3),
      extra: { p50: parsed.p50_ms ?? NaN, p99: parsed.p99_ms ?? NaN },
      flaw,
    };
  };
  const load = (mode: string) =>
    `bench/out/cmd_load ${mode} PORT ${clients} ${duration} ${TOKEN} '${command}'`;
  const ready = (port: number) => ({ kind: "tcp" as const, port });
  const script = join(context.tmp, `cmd-${clients}.sh`);
  Deno.writeTextFileSync(script, `${command}\n`);
  const sb = variants(context).map((variant): BenchServer => ({
    id: variant.id,
    role: "switchboard",
    spec: (port) =>
      switchboardSpec(context, variant, `cmd-${clients}`, [{
        name: "cmd",
        service: "cmd",
        listen: `127.0.0.1:${port}`,
        token: TOKEN,
        max_concurrent: 64,
      }]),
    measure: measureWith("framed"),
    command: switchboardCommand(variant),
    load: load("framed"),
  }));
  return {
    id: `cmd-${clients}`,
    service: "cmd",
    title: `cmd \`${command}\`, ${clients} client${
      clients > 1 ? "s" : ""
    }, a connection per command`,
    unit: "commands/s",
    cpuUnit: "ms CPU per command (server and its children)",
    higherIsBetter: true,
    reference: "xinetd",
    target: 1.0,
    columns: [{ key: "p50", label: "p50 ms", digits: 2 }, {
      key: "p99",
      label: "p99 ms",
      digits: 2,
    }],
    servers: [
      ...sb,
      {
        id: "xinetd",
        role: "reference",
        spec: (port) =>
          xinetdSpec(
            xinetdConfig(context, `cmd-${clients}`, [
              `service sbbench\n{\n\ttype = UNLISTED\n\tport = ${port}\n\tsocket_type = stream\n\tprotocol = tcp\n\twait = no\n\tuser = ${user()}\n\tserver = /bin/sh\n\tserver_args = ${script}\n\tbind = 127.0.0.1\n}\n`,
            ]),
            ready(port),
          ),
        measure: measureWith("eof"),
        command:
          `xinetd -dontfork -f CFG (server = /bin/sh, server_args = a script holding '${command}')`,
        load: load("eof"),
      },
      {
        id: "socat",
        role: "peer",
        spec: (port) => ({
          program: "socat",
          args: [`TCP-LISTEN:${port},fork,reuseaddr,bind=127.0.0.1`, `SYSTEM:${command}`],
          ready: ready(port),
        }),
        measure: measureWith("eof"),
        command: `socat TCP-LISTEN:PORT,fork,reuseaddr,bind=127.0.0.1 'SYSTEM:${command}'`,
        load: load("eof"),
      },
      {
        id: "ncat --sh-exec",
        role: "peer",
        spec: (port) => ({
          program: "ncat",
          args: ["-k", "-l", "127.0.0.1", `${port}`, "--sh-exec", command],
          ready: ready(port),
        }),
        measure: measureWith("eof"),
        command: `ncat -k -l 127.0.0.1 PORT --sh-exec '${command}'`,
        load: load("eof"),
      },
      {
        id: "Python subprocess",
        role: "peer",
        spec: (port) => ({
          program: "python3",
          args: [join(context.root, "bench/reference/py_cmd_tcp.py"), `${port}`],
          ready: ready(port),
        }),
        measure: measureWith("line"),
        command: "python3 bench/reference/py_cmd_tcp.py PORT",
        load: load("line"),
      },
    ],
  };
}

// ---------------------------------------------------------------------------
// file

function fileScenarios(context: BenchContext): Scenario[] {
  const { out, files, duration } = context;
  const ready = (port: number) => ({ kind: "tcp" as const, port });
  const sbListener = (port: number) => [{
    name: "file",
    service: "file",
    listen: `127.0.0.1:${port}`,
    root: files,
  }];
  const servers = (
    measure: (mode: string) => BenchServer["measure"],
    load: (mode: string) => string,
  ): BenchServer[] => [
    ...variants(context).map((variant): BenchServer => ({
      id: variant.id,
      role: "switchboard",
      spec: (port) => switchboardSpec(context, variant, "file", sbListener(port)),
      measure: measure("framed"),
      command: switchboardCommand(variant),
      load: load("framed"),
    })),
    {
      id: "Python threads",
      role: "peer",
      spec: (port) => ({
        program: "python3",
        args: [join(context.root, "bench/reference/py_file_tcp.py"), `${port}`, files],
        ready: ready(port),
      }),
      measure: measure("raw"),
      command: "python3 bench/reference/py_file_tcp.py PORT ROOT",
      load: load("raw"),
    },
    {
      id: "python3 -m http.server",
      role: "peer",
      spec: (port) => ({
        program: "python3",
        args: ["-m", "http.server", `${port}`, "--bind", "127.0.0.1", "--directory", files],
        ready: ready(port),
      }),
      measure: measure("http"),
      command: "python3 -m http.server PORT --bind 127.0.0.1 --directory ROOT",
      load: load("http"),
    },
  ];
  const bigMeasure = (mode: string) => async (port: number, pid: number): Promise<Sample> => {
    const values: number[] = [];
    let cpu = 0;
    for (let i = 0; i < 2; i++) {
      const args = [join(out, "file_load"), mode, `${port}`, "big.bin", "1", "0", "1"];
      if (mode === "framed") args.push("nosha");
      const run = await runLoad(args, pid);
      values.push(parseFields(run.stdout).gb_per_s ?? NaN);
      cpu += run.serverCpuSeconds;
    }
    const value = values.reduce((a, b) => a + b, 0) / values.length;
    // ms of CPU per GiB moved: two downloads of 1 GiB.
    return { value, cpu: cpu / 2 * 1000 };
  };
  const smallMeasure = (mode: string) => async (port: number, pid: number): Promise<Sample> => {
    const run = await runLoad([
      join(out, "file_load"),
      mode,
      `${port}`,
      "f%04d.bin",
      "8",
      String(duration),
      "1000",
    ], pid);
    const fields = parseFields(run.stdout);
    const rate = fields.files_per_s ?? NaN;
    return {
      value: rate,
      cpu: cpuPer(run, rate, 1e6),
      flaw: (fields.errors ?? 0) > 0 ? `${fields.errors} errors` : undefined,
    };
  };
  return [
    {
      id: "file-big",
      service: "file",
      title: "file: one 1 GiB download (framed without sha256; peers read to EOF)",
      unit: "GB/s",
      cpuUnit: "ms CPU per GiB",
      higherIsBetter: true,
      reference: "best-peer",
      target: 1.0,
      servers: servers(
        bigMeasure,
        (mode) =>
          `bench/out/file_load ${mode} PORT big.bin 1 0 1${mode === "framed" ? " nosha" : ""}`,
      ),
    },
    {
      id: "file-small",
      service: "file",
      title: "file: 4 KiB files, 8 clients, a connection per file",
      unit: "files/s",
      cpuUnit: "µs CPU per file",
      higherIsBetter: true,
      reference: "best-peer",
      target: 1.0,
      servers: servers(
        smallMeasure,
        (mode) => `bench/out/file_load ${mode} PORT f%04d.bin 8 ${duration} 1000`,
      ),
    },
  ];
}

/**
 * Every scenario, in report order.
 * @param context the bench context
 * @returns the scenarios
 */
export function scenarios(context: BenchContext): Scenario[] {
  return [
    tcpEcho(context),
    udpEcho(context),
    udpTime(context),
    ...chatScenarios(context),
    cmdScenario(context, 1, "true"),
    cmdScenario(context, 8, "echo hi"),
    ...fileScenarios(context),
  ];
}

/**
 * A port for a server of a scenario (UDP, TCP or both).
 * @param scenario the scenario
 * @returns a free port
 */
export function portFor(scenario: Scenario): number {
  if (
    scenario.id.startsWith("udp") || scenario.id === "chat-udp" || scenario.id === "chat-latency"
  ) {
    return freePort("udp");
  }
  return freePortBoth();
}
