/**
 * Shared test harness: an in-process supervisor on 127.0.0.1 port 0 with
 * captured logs, the CLI as a subprocess, and small socket helpers.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseConfig } from "../lib/config.ts";
import { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import { Supervisor } from "../lib/supervisor.ts";

/** The repository's root directory. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** The path of main.ts. */
export const MAIN: string = fileURLToPath(new URL("../main.ts", import.meta.url));

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
    services: options.services,
    baseDir: options.baseDir ?? Deno.cwd(),
  });
  const { log, lines } = captureLog();
  const supervisor = new Supervisor({ log, services: options.services, clock: options.clock });
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
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  // stdin is written while the output is read: a child that echoes a large
  // input would otherwise block on a full stdout pipe, and the write with it.
  let writing: Promise<void> = Promise.resolve();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const data = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    writing = (async () => {
      await writer.write(data).catch(() => {});
      await writer.close().catch(() => {});
    })();
  }
  const output = await child.output();
  await writing;
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
  conn: Deno.Conn,
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
export async function readToEnd(conn: Deno.Conn, timeoutMs = 5000): Promise<Uint8Array> {
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
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
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
