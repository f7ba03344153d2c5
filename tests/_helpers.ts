/**
 * Shared test harness: an in-process supervisor on 127.0.0.1 port 0 with
 * captured logs, the CLI as a subprocess, and small socket helpers.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { ConfigError, parseConfig } from "../lib/config.ts";
import { formatProblem } from "../lib/option_reader.ts";
import { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import { Supervisor } from "../lib/supervisor.ts";
import { writeAll } from "../lib/write_all.ts";
import { SERVICES } from "../handlers/mod.ts";

/** The repository's root directory. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** The path of main.ts. */
export const MAIN: string = fileURLToPath(new URL("../main.ts", import.meta.url));

/**
 * The built executable the end-to-end tests run instead of `main.ts` when
 * `$SWITCHBOARD_BIN` names one (what users deploy is what is tested).
 */
export const BUILT: string | undefined = Deno.env.get("SWITCHBOARD_BIN") || undefined;

/**
 * The command line that runs switchboard with `args`: the built executable,
 * or `deno run -A --quiet main.ts`.
 * @param args the verb and its arguments
 * @returns the program and its arguments, ready for `Deno.Command`
 */
export function switchboardCommand(args: readonly string[]): { program: string; args: string[] } {
  return BUILT
    ? { program: BUILT, args: [...args] }
    : { program: Deno.execPath(), args: ["run", "-A", "--quiet", MAIN, ...args] };
}

/**
 * The same command line for a shell (each word single-quoted).
 * @param args the verb and its arguments (not quoted: they are quoted here)
 * @returns a shell command prefix such as `'/path/switchboard' 'echo'`
 */
export function switchboardShell(args: readonly string[]): string {
  const { program, args: rest } = switchboardCommand(args);
  return [program, ...rest].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
}

/** Captures log lines in memory. */
export interface CapturedLog {
  /** The logger to hand to code under test. */
  log: Logger;
  /** Every line written so far. */
  lines: string[];
}

/**
 * Creates a debug-level logger that keeps its lines in memory.
 * @returns the logger and its lines
 */
export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const log = new Logger({ level: "debug", journal: false, sink: (line) => lines.push(line) });
  return { log, lines };
}

/** A supervisor running a config in-process. */
export interface TestServer extends AsyncDisposable {
  /** The supervisor. */
  supervisor: Supervisor;
  /** Log lines captured so far. */
  lines: string[];
  /** The bound port of a listener, by name. */
  port(name: string): number;
}

/** Options for {@linkcode startServer}. */
export interface StartServerOptions {
  /** Service table override (e.g. to add a test service). */
  services?: readonly Service[];
  /** Directory relative paths resolve against. */
  baseDir?: string;
  /** Shutdown timeout used on dispose, in ms. @default {2000} */
  shutdownMs?: number;
  /** Monotonic clock handed to services. @default {performance.now} */
  clock?: () => number;
  /** Wall clock for `access_times`, ms since the epoch. @default {Date.now} */
  wallClock?: () => number;
}

/**
 * Starts a supervisor on a config text (use `127.0.0.1:0` addresses).
 * @param toml the config
 * @param options service table, base directory, shutdown timeout
 * @returns the running server; dispose it with `await using`
 */
export async function startServer(
  toml: string,
  options: StartServerOptions = {},
): Promise<TestServer> {
  const config = parseConfig(toml, "test.toml", {
    services: options.services ?? SERVICES,
    baseDir: options.baseDir ?? Deno.cwd(),
  });
  const { log, lines } = captureLog();
  const supervisor = new Supervisor({
    log,
    services: options.services ?? SERVICES,
    clock: options.clock,
    wallClock: options.wallClock,
  });
  await supervisor.apply(config);
  return {
    supervisor,
    lines,
    port(name: string): number {
      const found = supervisor.listeners.find((listener) => listener.name === name);
      if (!found) throw new Error(`No listener "${name}"`);
      return found.addr.port;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await supervisor.shutdown(options.shutdownMs ?? 2000);
    },
  };
}

/** What a CLI run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
  /** Standard output as bytes. */
  stdoutBytes: Uint8Array;
}

/** Options for {@linkcode runCli}. */
export interface RunCliOptions {
  /** Bytes or text for stdin (stdin is closed after). */
  stdin?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Kill the process after this long, in ms. @default {20000} */
  timeoutMs?: number;
}

/**
 * Runs `main.ts` with arguments as a subprocess and collects its output.
 * @param args the command line
 * @param options stdin, environment, working directory, timeout
 * @returns exit code and output
 */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const { program, args: argv } = switchboardCommand(args);
  const command = new Deno.Command(program, {
    args: argv,
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  // Collect output while stdin is written: a large input must not deadlock
  // against a child whose stdout pipe is full.
  const collecting = child.output();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const data = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    await writer.write(data).catch(() => {});
    await writer.close().catch(() => {});
  }
  const output = await collecting;
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    stdoutBytes: output.stdout,
  };
}

/**
 * Reads exactly `count` bytes from a connection (or fewer at end of stream).
 * @param conn the connection
 * @param count how many bytes
 * @param timeoutMs give up after this long
 * @returns the bytes read
 */
export async function readBytes(
  conn: Pick<Deno.Conn, "read" | "close">,
  count: number,
  timeoutMs = 5000,
): Promise<Uint8Array> {
  const out = new Uint8Array(count);
  let filled = 0;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    while (filled < count) {
      const n = await conn.read(out.subarray(filled));
      if (n === null) break;
      filled += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return out.subarray(0, filled);
}

/**
 * Reads until the peer closes (bounded by a timeout).
 * @param conn the connection
 * @param timeoutMs give up after this long (the connection is closed)
 * @returns every byte read
 */
export async function readToEnd(
  conn: Pick<Deno.Conn, "read" | "close">,
  timeoutMs = 5000,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      chunks.push(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return concatBytes(chunks);
}

/**
 * Joins byte arrays into one.
 * @param parts the arrays, in order
 * @returns one array holding all their bytes
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Waits until `predicate` holds, checking every 10 ms, bounded in time.
 * @param predicate the condition
 * @param timeoutMs give up after this long
 * @throws {Error} when the condition never held
 */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error("Condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Sends one datagram and waits for one reply (bounded in time).
 * @param port the server's port on 127.0.0.1
 * @param data the payload
 * @param options local port to bind and timeout
 * @returns the reply, or null when none came
 */
export async function udpRequest(
  port: number,
  data: Uint8Array,
  options: { timeoutMs?: number } = {},
): Promise<Uint8Array | null> {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    await socket.send(data, { transport: "udp", hostname: "127.0.0.1", port });
    return await udpReceive(socket, options.timeoutMs ?? 2000);
  } finally {
    socket.close();
  }
}

/**
 * Receives one datagram, or null after the timeout.
 * @param socket a bound datagram socket
 * @param timeoutMs how long to wait
 * @returns the payload or null
 */
export async function udpReceive(
  socket: Deno.DatagramConn,
  timeoutMs: number,
): Promise<Uint8Array | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const receiving = socket.receive();
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  const result = await Promise.race([receiving, timeout]);
  clearTimeout(timer);
  if (result === null) {
    // The receive stays pending until the socket closes; swallow its rejection.
    receiving.catch(() => {});
    return null;
  }
  return result[0];
}

/** A `switchboard serve` subprocess with its log lines. */
export interface Daemon extends AsyncDisposable {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Log lines (stderr) so far. */
  lines: string[];
  /** The port a listener bound, from its "Listening on" line. */
  port(name: string): number;
  /** Waits for a log line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits for exit (bounded; SIGKILL after the timeout). */
  exit(timeoutMs?: number): Promise<Deno.CommandStatus>;
}

/** Options for {@linkcode spawnDaemon}. */
export interface SpawnDaemonOptions {
  /** Working directory. @default {a fresh temp dir is NOT made; ROOT} */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Wait for the "ready" line before returning. @default {true} */
  waitReady?: boolean;
  /** A program (and its arguments) that runs the daemon, e.g. systemd-socket-activate. */
  wrapper?: string[];
}

/**
 * Starts `main.ts serve` with `args` as a subprocess, collecting its log.
 * @param args arguments after `serve` (e.g. `["-c", path]`)
 * @param options working directory, environment, readiness wait
 * @returns the running daemon; dispose it to make sure it is gone
 */
export async function spawnDaemon(
  args: string[],
  options: SpawnDaemonOptions = {},
): Promise<Daemon> {
  const serve = switchboardCommand(["serve", ...args]);
  // A wrapper (strace, systemd-socket-activate…) runs the daemon as its command.
  const [wrapper, ...wrapperArgs] = options.wrapper ?? [];
  const child = new Deno.Command(wrapper ?? serve.program, {
    args: wrapper === undefined ? serve.args : [...wrapperArgs, serve.program, ...serve.args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const pump = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
      for (const wake of waiters) wake();
    }
    if (pending) lines.push(pending);
    for (const wake of waiters) wake();
  })();
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then((s) => {
    status = s;
    for (const wake of waiters) wake();
    return s;
  });
  const waitForLine = async (pattern: RegExp, timeoutMs = 10_000): Promise<string> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = lines.find((line) => pattern.test(line));
      if (found) return found;
      if (status || performance.now() > deadline) {
        throw new Error(`No log line matching ${pattern}; log:\n${lines.join("\n")}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(1, deadline - performance.now()));
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  };
  const exit = async (timeoutMs = 15_000): Promise<Deno.CommandStatus> => {
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    try {
      const result = await exited;
      await pump;
      return result;
    } finally {
      clearTimeout(timer);
    }
  };
  const daemon: Daemon = {
    child,
    lines,
    port(name: string): number {
      const pattern = new RegExp(`Listening on .*:(\\d+)/(tcp|udp) listener=${name}( |$)`);
      const line = lines.find((l) => pattern.test(l));
      if (!line) throw new Error(`No listener "${name}" in log:\n${lines.join("\n")}`);
      return Number(pattern.exec(line)![1]);
    },
    waitForLine,
    exit,
    async [Symbol.asyncDispose](): Promise<void> {
      if (!status) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await exit();
    },
  };
  if (options.waitReady ?? true) {
    try {
      await waitForLine(/switchboard \S+ ready/);
    } catch (error) {
      await daemon[Symbol.asyncDispose]();
      throw error;
    }
  }
  return daemon;
}

/**
 * Writes a config file into a fresh temp dir.
 * @param toml the config text
 * @returns the file's path and a disposer that removes the dir
 */
export async function tempConfig(
  toml: string,
): Promise<{ path: string; dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "switchboard-test-" });
  const path = `${dir}/switchboard.toml`;
  await Deno.writeTextFile(path, toml);
  return {
    path,
    dir,
    async [Symbol.asyncDispose](): Promise<void> {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Renders one `[[listener]]` table from its keys (values as TOML via JSON).
 * @param fields the listener's keys and values
 * @returns the TOML text, ending with a newline
 */
export function listenerToml(fields: Record<string, unknown>): string {
  return "[[listener]]\n" +
    Object.entries(fields).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n";
}

/**
 * The problems a config text has, as `key: message` lines (empty when valid).
 * @param toml the config
 * @returns the problems, in the order they were found
 * @throws {Error} anything parseConfig throws other than a ConfigError
 */
export function configProblems(toml: string): string[] {
  try {
    parseConfig(toml, "test.toml", { services: SERVICES });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((p) => `${p.key}: ${p.message}`);
  }
}

/** What systemd would receive on its notification socket. */
export interface FakeSystemd {
  /** Each datagram received, as text. */
  messages: string[];
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Listens where NOTIFY_SOCKET will point and collects the notifications.
 * @param path the socket's path (`\0name` for an abstract one)
 * @returns the collected messages and a close function
 */
export function fakeSystemd(path: string): FakeSystemd {
  const socket = Deno.listenDatagram({ transport: "unixpacket", path });
  const messages: string[] = [];
  const loop = (async () => {
    try {
      for (;;) messages.push(new TextDecoder().decode((await socket.receive())[0]));
    } catch {
      // Closed.
    }
  })();
  return {
    messages,
    async close() {
      socket.close();
      await loop;
    },
  };
}

/**
 * Waits until a counter stops moving (a stream stalled on a side that does
 * not read): unchanged for `quietMs`, sampled every 50 ms, bounded in time.
 * @param read reads the counter
 * @param options how long it must stay unchanged, and the overall bound
 * @returns the value it stalled at (non-zero)
 * @throws {Error} when it never stalled in time
 */
export async function waitForStall(
  read: () => number,
  options: { quietMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const quietMs = options.quietMs ?? 500;
  const deadline = performance.now() + (options.timeoutMs ?? 15_000);
  let last = read();
  let since = performance.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = read();
    if (now !== last || now === 0) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return now;
    }
    if (performance.now() > deadline) throw new Error("The counter never stopped moving");
  }
}

/**
 * Runs `switchboard check` on a config text written to a temp file.
 * @param toml the config
 * @returns the CLI's result
 */
export async function checkConfig(toml: string): Promise<CliResult> {
  await using config = await tempConfig(toml);
  return await runCli(["check", "-c", config.path]);
}

/**
 * Parses one listener in-process and lists its problems as `file:line: key: message`.
 * @param fields the listener's keys and values (see {@linkcode listenerToml})
 * @returns the problems, empty when the config is valid
 */
export function listenerProblems(fields: Record<string, unknown>): string[] {
  try {
    parseConfig(listenerToml(fields), "t.toml", { services: SERVICES, baseDir: "/" });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(formatProblem);
    throw error;
  }
  return [];
}

/**
 * Sends `size` bytes of a random pattern while reading what comes back,
 * half-closes after the last byte, and reads to the end (both at once, so a
 * peer that answers while it reads cannot deadlock).
 * @param conn a connection to something that sends bytes back (echo, cat, a relay to one)
 * @param size how many bytes to send
 * @param timeoutMs bound on the whole exchange
 * @returns what was sent and what came back
 */
export async function exchange(
  conn: Deno.Conn,
  size: number,
  timeoutMs = 20_000,
): Promise<{ sent: Uint8Array; received: Uint8Array }> {
  const pattern = crypto.getRandomValues(new Uint8Array(65536));
  const sent = new Uint8Array(size);
  for (let at = 0; at < size; at += pattern.length) sent.set(pattern.subarray(0, size - at), at);
  const [, received] = await Promise.all([
    writeAll(conn, sent).then(() => conn.closeWrite()),
    readToEnd(conn, timeoutMs),
  ]);
  return { sent, received };
}
