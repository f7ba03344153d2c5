/**
 * The remote command service (docs/protocol.md "cmd (framed)"): an `exec` request
 * runs a command in a process group of its own, with a clean environment;
 * stdin comes as the body or as streamed `stdin`/`eof` frames, and stdout and
 * stderr go back as frames while it runs (back-pressure both ways), then one
 * `exit` frame. The timeout, a full output budget or a vanished client end
 * the whole group: SIGTERM, then SIGKILL.
 *
 * @module
 */

import { type CmdOptions, describeCmdOptions, parseCmdOptions } from "./options.ts";
import {
  type CmdState,
  OUTPUT_CHUNK,
  startCommand,
  type Started,
  startPool,
  takeSlot,
} from "./launch.ts";
import { type ExecRequest, parseExecRequest, resolveCwd } from "./request.ts";
import { commandEnvironment } from "../../lib/command_options.ts";
import {
  KILL_GRACE_MS,
  PIPE_LINGER_MS,
  runCommand,
  type RunControl,
  type StdinSink,
} from "../../lib/command_run.ts";
import { type FramedRequest, RequestError, serveFrames } from "../../lib/framed_server.ts";
import {
  encodeFrame,
  FrameError,
  type FrameHeader,
  type FrameReader,
} from "../../lib/header_codec.ts";
import { LookaheadConnection } from "./lookahead_conn.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import { describeError, isDisconnect } from "../../lib/net_errors.ts";
import {
  type ConnectionContext,
  defineService,
  type ListenerContext,
  type Service,
  type ServiceInstance,
} from "../../lib/service.ts";
import { formatSize } from "../../lib/units.ts";
import { serveLines } from "./line.ts";

const STDIN_CHUNK = 65536;
const FRAME_BUFFER = 2048;

/** Per-connection state of the framed protocol. */
interface Session {
  conn: LookaheadConnection;
  /** A refused streamed exec's stdin/eof frames are being dropped. */
  discarding: boolean;
}

/** The exit frame's fields. */
export interface ExitFields {
  /** Exit code; null when a signal ended the command. */
  code: number | null;
  /** The signal's name, e.g. `SIGKILL`, or null. */
  signal: string | null;
  /** The timeout ended the command. */
  timed_out: boolean;
  /** Output was cut at `max_output`. */
  truncated: boolean;
  /** Run time in ms. */
  ms: number;
}

/**
 * Serialises frame writes from the two output pumps and the exit frame, so
 * frames never interleave on the wire; each send resolves once written.
 */
class FrameQueue {
  #conn: LookaheadConnection;
  #tail: Promise<void> = Promise.resolve();
  /** Frames queued so far. */
  count = 0;

  constructor(conn: LookaheadConnection) {
    this.#conn = conn;
  }

  send(header: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    this.count++;
    const sent = this.#tail.then(() => this.#conn.writeAll(encodeFrame(header, body)));
    this.#tail = sent.catch(() => {});
    return sent;
  }
}

/** How long a silent command's half-closed client goes unprobed, in ms. */
const PROBE_MS = 500;
const EMPTY = new Uint8Array(0);

function logCommand(header: FrameHeader): string {
  if (typeof header.cmd === "string") return header.cmd;
  if (header.argv !== undefined) return JSON.stringify(header.argv);
  return "";
}

/** Serves one `exec` request of the framed protocol. */
async function execOperation(
  request: FramedRequest,
  state: CmdState,
  session: Session,
): Promise<void> {
  session.discarding = false;
  const { header, context } = request;
  let exec: ExecRequest;
  let cwd: string;
  let release: () => void;
  try {
    exec = parseExecRequest(header, state.options);
    cwd = resolveCwd(exec.cwd, state.options);
    release = await takeSlot(state);
  } catch (error) {
    if (error instanceof RequestError) {
      context.log.info("Command refused", {
        code: error.code,
        reason: error.message,
        command: logCommand(header),
      });
      // The client streams stdin anyway; its frames are dropped, not errors.
      if (header.stdin === "stream") session.discarding = true;
    }
    throw error;
  }
  const running = execCommand(request, { exec, cwd, state, session, release });
  state.runs.add(running);
  try {
    await running;
  } finally {
    state.runs.delete(running);
    release();
  }
}

interface ExecContext {
  exec: ExecRequest;
  cwd: string;
  state: CmdState;
  session: Session;
  /** Frees the concurrency slot (as soon as the process group is gone). */
  release: () => void;
}

async function execCommand(request: FramedRequest, run: ExecContext): Promise<void> {
  const { frames, context } = request;
  const { exec, cwd, state, session } = run;
  const conn = session.conn;
  const out = new FrameQueue(conn);
  const started = performance.now();

  let launched: Started;
  try {
    launched = await startCommand(
      { argv: exec.argv, text: exec.shell ? exec.display : undefined },
      {
        cwd,
        stdin: exec.stdin === "none" ? "null" : "piped",
        state,
      },
    );
  } catch (error) {
    context.log.warn(`Cannot start command: ${describeError(error)}`, { command: exec.display });
    if (exec.stdin === "stream") session.discarding = true;
    throw new RequestError("io_error", "Cannot start the command");
  }
  if ("problem" in launched) {
    // As a shell does: a line on stderr, then 127 / 126. stdin is dropped
    // (a body by the request loop, a stream by the stdin/eof operations).
    if (exec.stdin === "stream") session.discarding = true;
    const message = new TextEncoder().encode(`switchboard: ${launched.problem.message}\n`);
    const exit: ExitFields = {
      code: launched.problem.code,
      signal: null,
      timed_out: false,
      truncated: false,
      ms: Math.round(performance.now() - started),
    };
    await out.send({ op: "stderr" }, message);
    await out.send({ op: "exit", ...exit });
    context.log.info("Command finished", {
      command: exec.display,
      ...exit,
      stdin: 0,
      stdout: 0,
      stderr: message.length,
      outcome: "cannot run",
    });
    return;
  }

  const group = launched.group;
  state.groups.add(group);
  const maxStdin = state.options.maxStdin;
  let result;
  try {
    result = await runCommand(group, {
      timeoutMs: exec.timeoutMs,
      maxOutput: state.options.maxOutput,
      graceMs: KILL_GRACE_MS,
      lingerMs: PIPE_LINGER_MS,
      chunkSize: OUTPUT_CHUNK,
    }, {
      output: (stream, chunk) => out.send({ op: stream, size: chunk.length }, chunk),
      feed: exec.stdin === "body"
        ? (sink, control) => feedBody(frames, sink, control)
        : exec.stdin === "stream"
        ? (sink, control) => feedStream(frames, sink, control, maxStdin)
        : undefined,
      watch: (control) => watchClient(conn, control, out),
    });
  } finally {
    state.groups.delete(group);
    run.release();
  }

  const { status } = result;
  const exit: ExitFields = {
    code: status.signal ? null : status.code,
    signal: status.signal ?? null,
    timed_out: result.timedOut,
    truncated: result.truncated,
    ms: result.ms,
  };
  let disconnected = result.disconnected;
  if (!disconnected && !result.fatal) {
    try {
      await out.send({ op: "exit", ...exit });
    } catch (error) {
      if (!isDisconnect(error)) throw error;
      disconnected = true;
    }
  }
  state.pool?.replenish();
  context.log.info("Command finished", {
    command: exec.display,
    pid: group.pid,
    ...exit,
    stdin: result.stats.stdin,
    stdout: result.stats.stdout,
    stderr: result.stats.stderr,
    outcome: disconnected ? "client disconnected" : result.stopReason ?? "exited",
  });
  // Stdin still arriving after the exit (a child that did not read it all)
  // is read and dropped up to its end, so the next request is in step.
  await result.rest;
  if (result.fatal) throw result.fatal;
}

/**
 * Watches the connection while a command runs. A reset means the client is
 * gone. An end of stream may be a client that only closed its sending side
 * and still reads, or one that is gone: only a write tells, so a silent
 * command's client is probed with an empty stdout frame every 500 ms (the
 * write after a closed peer's reset fails). Bytes that arrive meanwhile (a
 * pipelined next request) are kept for the request loop.
 */
async function watchClient(
  conn: LookaheadConnection,
  control: RunControl,
  out: FrameQueue,
): Promise<void> {
  const ended = control.ended.then(() => "ended" as const);
  for (;;) {
    const seen = await Promise.race([conn.watch(), ended]);
    if (seen === "ended") return;
    if (seen === "closed") break;
    // A full look-ahead (a client that sent more than the command took, or
    // a body left unread by a refusal) waits for room or for the end. Once
    // the run has ended, neither promise is pending: return, never spin.
    if (seen === "full") {
      const room = await Promise.race([conn.space().then(() => "room" as const), ended]);
      if (room === "ended") return;
    }
  }
  if (conn.failed) {
    control.lost();
    return;
  }
  for (;;) {
    const before = out.count;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<"tick">((resolve) =>
      timer = setTimeout(() => resolve("tick"), PROBE_MS)
    );
    const woke = await Promise.race([tick, ended]);
    clearTimeout(timer);
    if (woke === "ended") return;
    if (out.count !== before) continue; // output writes are probes enough
    try {
      await out.send({ op: "stdout" }, EMPTY);
    } catch (error) {
      if (!isDisconnect(error)) throw error;
      control.lost();
      return;
    }
  }
}

async function feedBody(frames: FrameReader, sink: StdinSink, control: RunControl): Promise<void> {
  const buffer = new Uint8Array(STDIN_CHUNK);
  try {
    for (;;) {
      const n = await frames.readBody(buffer);
      if (n === null) break;
      control.stats.stdin += n;
      if (n > 0) await sink.write(buffer.subarray(0, n));
    }
    await sink.close();
  } catch (error) {
    sink.abandon();
    if (error instanceof FrameError || isDisconnect(error)) {
      control.lost();
      return;
    }
    throw error;
  }
}

async function feedStream(
  frames: FrameReader,
  sink: StdinSink,
  control: RunControl,
  maxStdin: number,
): Promise<void> {
  const buffer = new Uint8Array(STDIN_CHUNK);
  try {
    for (;;) {
      const header = await frames.readHeader();
      if (header === null) {
        // The client closed its sending side without "eof": stdin ends there
        // (whether the client is still reading, the watcher finds out).
        await sink.close();
        return;
      }
      if (header.op === "eof") {
        await sink.close();
        return;
      }
      if (header.op !== "stdin") {
        sink.abandon();
        control.fatal(
          new RequestError(
            "bad_request",
            `Expected a "stdin" or "eof" frame while stdin is streamed, got "${String(header.op)}"`,
            { close: true },
          ),
        );
        return;
      }
      control.stats.stdin += header.size ?? 0;
      if (control.stats.stdin > maxStdin) {
        sink.abandon();
        control.fatal(
          new RequestError(
            "too_large",
            `stdin is over this listener's max_stdin (${formatSize(maxStdin)})`,
            { close: true },
          ),
        );
        return;
      }
      for (let n = await frames.readBody(buffer); n !== null; n = await frames.readBody(buffer)) {
        if (n > 0) await sink.write(buffer.subarray(0, n));
      }
    }
  } catch (error) {
    sink.abandon();
    if (error instanceof FrameError && error.reason !== "truncated") {
      control.fatal(error);
      return;
    }
    if (error instanceof FrameError || isDisconnect(error)) {
      control.lost();
      return;
    }
    throw error;
  }
}

function dropStray(session: Session, op: "stdin" | "eof"): Promise<void> {
  if (!session.discarding) {
    return Promise.reject(
      new RequestError(
        "bad_request",
        `No command is reading stdin ("${op}" outside a streamed exec)`,
      ),
    );
  }
  if (op === "eof") session.discarding = false;
  // The request loop drops the frame's body.
  return Promise.resolve();
}

/** An opened cmd service, with its state visible to tests. */
export interface CmdInstance extends ServiceInstance {
  /** The listener's state. */
  state: CmdState;
}

/**
 * Opens a cmd listener: its state and its connection handler.
 * @param options the parsed options
 * @param listener the listener's context
 * @returns the service instance
 */
export function openCmd(options: CmdOptions, listener: ListenerContext): CmdInstance {
  const slots = listener.slots ??
    listener.shared.obtain(`cmd:slots:${listener.name}`, () => ({ running: 0 }));
  const state: CmdState = {
    options,
    env: commandEnvironment(options),
    slots,
    groups: new Set(),
    runs: new Set(),
    log: listener.log,
  };
  state.poolCwd = options.workdir ?? Deno.cwd();
  state.pool = startPool(state, state.poolCwd);
  const malformedLog = new LogThrottle();
  return {
    state,
    stream: (conn, context: ConnectionContext) => {
      if (options.protocol === "line") return serveLines(conn, context, state);
      const session: Session = { conn: new LookaheadConnection(conn), discarding: false };
      return serveFrames(session.conn, context, {
        token: options.token,
        // Requests are one small header; stdin goes straight to the command.
        bufferSize: FRAME_BUFFER,
        malformedLog,
        operations: {
          exec: (request) => execOperation(request, state, session),
          stdin: () => dropStray(session, "stdin"),
          eof: () => dropStray(session, "eof"),
        },
        // Refusals before dispatch (bad token, unknown op) are worth a line:
        // repeated unauthorized attempts are what fail2ban-like tools watch.
        onRefused: (header, error) => {
          context.log.info(`Request refused: ${error.code}`, {
            op: typeof header.op === "string" ? header.op : "?",
          });
          // A refused streamed exec (e.g. a wrong token): its client sends
          // its stdin frames anyway; they are dropped like after any refusal.
          if (header.op === "exec") session.discarding = header.stdin === "stream";
        },
      });
    },
    status: () => ({ running: slots.running }),
    close: async () => {
      // The daemon is going (after shutdown_timeout): nothing may outlive it.
      for (const group of state.groups) group.kill();
      await Promise.allSettled([...state.runs, state.pool?.close()]);
    },
  };
}

/** The cmd service's entry in the service table. */
export const cmdService: Service = defineService<CmdOptions>({
  name: "cmd",
  transports: ["tcp"],
  defaultPort: 7009,
  // Running commands needs a secret, so only with one from the environment.
  embeddedDefault: ({ env }) => {
    const token = env("SWITCHBOARD_TOKEN");
    return token
      ? { listeners: [{ name: "cmd", token }] }
      : { listeners: [], note: "cmd service skipped (SWITCHBOARD_TOKEN is not set)" };
  },
  parseOptions(reader, _transport, address) {
    return parseCmdOptions(reader, { address });
  },
  describe: describeCmdOptions,
  open: openCmd,
});
