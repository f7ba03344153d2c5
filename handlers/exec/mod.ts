/**
 * The exec service, inetd's classic job: for each TCP connection, run
 * `argv` (no shell) in a process group of its own with a clean environment,
 * the client's bytes as its stdin and its stdout sent back to the client.
 * Its stderr goes to the log (or to the client, or nowhere). The program
 * exiting closes the connection; the client's EOF closes the program's stdin
 * and ends its group `eof_grace` later unless it exits first; a client that
 * goes away (a failed write, a reset, the supervisor closing the connection)
 * ends the group at once. The process machinery is cmd's (`lib/`).
 *
 * @module
 */

import { normalizeHost } from "../../lib/address.ts";
import { commandEnvironment } from "../../lib/command_options.ts";
import {
  runCommand,
  type RunControl,
  type RunResult,
  type StdinSink,
} from "../../lib/command_run.ts";
import { acquireSlot, type SlotCounter } from "../../lib/command_slots.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import { describeError } from "../../lib/net_errors.ts";
import { ProcessGroup } from "../../lib/process_group.ts";
import { checkProgram } from "../../lib/program_check.ts";
import {
  type Connection,
  type ConnectionContext,
  defineService,
  type ListenerContext,
  type Service,
  type ServiceInstance,
} from "../../lib/service.ts";
import { settlesBy } from "../../lib/settles_by.ts";
import { describeExecOptions, type ExecOptions, parseExecOptions } from "./options.ts";
import { StderrLog } from "./stderr_log.ts";

const STDIN_CHUNK = 65536;
/**
 * After the program is done and its output sent, how long the client's
 * unread input is still read and dropped before the socket is closed:
 * closing with unread input would send a reset, and a reset can destroy
 * output the client has not read yet.
 */
export const LINGER_MS = 1000;

/** Per-listener state of an opened exec service. */
export interface ExecState {
  /** The listener's options. */
  options: ExecOptions;
  /** The environment every program gets before the connection's own variables. */
  env: Record<string, string>;
  /** Programs running on this listener (shared across reloads of it). */
  slots: SlotCounter;
  /** Process groups running in this instance (killed when it closes). */
  groups: Set<ProcessGroup>;
  /** Connections being served by this instance. */
  runs: Set<Promise<void>>;
  /** Throttles the line about connections refused at max_concurrent. */
  busyLog: LogThrottle;
}

/**
 * The variables that tell a program who it talks to, as inetd-style
 * servers set them.
 * @param conn the connection (its peer already unmapped from IPv4-in-IPv6)
 * @returns `REMOTE_ADDR`, `REMOTE_PORT`, `LOCAL_ADDR`, `LOCAL_PORT`
 */
export function connectionEnvironment(
  conn: Pick<Connection, "remoteAddr" | "localAddr">,
): Record<string, string> {
  return {
    REMOTE_ADDR: conn.remoteAddr.hostname,
    REMOTE_PORT: String(conn.remoteAddr.port),
    LOCAL_ADDR: normalizeHost(conn.localAddr.hostname),
    LOCAL_PORT: String(conn.localAddr.port),
  };
}

/**
 * Serves one connection: takes a `max_concurrent` slot (or closes the
 * connection at once), runs the program, and closes gently.
 * @param conn the connection
 * @param context its logger, busy marking, last-line notes and closing signal
 * @param state the listener's state
 */
export async function serveExec(
  conn: Connection,
  context: ConnectionContext,
  state: ExecState,
): Promise<void> {
  const release = await acquireSlot(state.slots, state.options.maxConcurrent);
  if (!release) {
    const count = state.busyLog.hit(performance.now());
    if (count > 0) {
      context.log.warn(
        `Connection refused: ${state.options.maxConcurrent} programs are running (max_concurrent)`,
        { count },
      );
    }
    context.note({ outcome: "busy" });
    return;
  }
  const running = runProgram(conn, context, state, release).finally(release);
  state.runs.add(running);
  try {
    await running;
  } finally {
    state.runs.delete(running);
  }
}

function cannotRun(context: ConnectionContext, why: string, code?: number): void {
  context.log.warn(`Cannot run program: ${why}`);
  context.note({ outcome: "cannot run", exit: code });
}

/** Runs the program for one connection; `release` frees its slot once the group is gone. */
async function runProgram(
  conn: Connection,
  context: ConnectionContext,
  state: ExecState,
  release: () => void,
): Promise<void> {
  const { options } = state;
  const cwd = options.workdir ?? Deno.cwd();
  const env = { ...state.env, ...connectionEnvironment(conn) };
  const [program, ...args] = options.argv as [string, ...string[]];
  // Checked at config load too; the file may have gone since.
  const problem = checkProgram(program, env.PATH ?? "", cwd);
  if (problem) return cannotRun(context, problem.message, problem.code);
  let group: ProcessGroup;
  try {
    group = await ProcessGroup.start(program, {
      args,
      cwd,
      env,
      uid: options.uid,
      gid: options.gid,
      stdin: "piped",
      stderr: options.stderr === "null" ? "null" : "piped",
    });
  } catch (error) {
    return cannotRun(context, `${program}: ${describeError(error)}`);
  }
  state.groups.add(group);
  const stderrLog = options.stderr === "log"
    ? new StderrLog(context.log.child({ pid: group.pid }))
    : undefined;
  const send = serialWriter(conn);
  let result: RunResult;
  try {
    result = await runCommand(group, { timeoutMs: options.timeoutMs, maxOutput: Infinity }, {
      output: (stream, chunk) => {
        if (stream === "stderr" && stderrLog) {
          stderrLog.write(chunk);
          return Promise.resolve();
        }
        return send(chunk);
      },
      feed: (sink, control) => feedFromClient(conn, sink, control, context, options.eofGraceMs),
    });
  } finally {
    state.groups.delete(group);
    release();
  }
  stderrLog?.flush();
  const { status } = result;
  context.note({
    pid: group.pid,
    exit: status.signal ? undefined : status.code,
    signal: status.signal ?? undefined,
    outcome: result.stopReason ?? "exited",
    stderr_lines: stderrLog?.logged || undefined,
    stderr_dropped: stderrLog?.dropped || undefined,
  });
  context.setBusy(false);
  if (result.disconnected) return;
  // All output is sent: the client reads its end, then its leftover input
  // is drained for a moment so that the close is not a reset.
  try {
    await conn.closeWrite();
  } catch {
    return; // Already gone.
  }
  await settlesBy(result.rest, performance.now() + LINGER_MS);
}

/** Writes chunks one after another (stdout and stderr may both go to the client). */
function serialWriter(conn: Connection): (chunk: Uint8Array) => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  return (chunk) => {
    const written = tail.then(() => conn.writeAll(chunk));
    tail = written.catch(() => {});
    return written;
  };
}

/**
 * Copies the client's bytes to the program's stdin (a full pipe stops the
 * reading: back-pressure). At the client's EOF the program's stdin is
 * closed and its group is ended `eofGraceMs` later unless it is done. A
 * reset, or the supervisor closing the connection, ends the group at once.
 * After the run it goes on reading (and dropping) until the client's EOF.
 */
async function feedFromClient(
  conn: Connection,
  sink: StdinSink,
  control: RunControl,
  context: ConnectionContext,
  eofGraceMs: number,
): Promise<void> {
  // The feeder may be blocked on a full pipe, not on the socket: it is told.
  const closing = context.closing;
  const onClosing = (): void => {
    sink.abandon();
    control.lost();
  };
  closing.addEventListener("abort", onClosing, { once: true });
  const buffer = new Uint8Array(STDIN_CHUNK);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      control.stats.stdin += n;
      await sink.write(buffer.subarray(0, n));
    }
  } catch {
    // Reset, or closed under us: the client is gone.
    onClosing();
    return;
  } finally {
    closing.removeEventListener("abort", onClosing);
  }
  if (control.isEnded()) return;
  // A half-close and a close look alike: writes will tell a gone client.
  context.setBusy(true);
  const grace = setTimeout(() => control.stop("eof_grace"), eofGraceMs);
  void control.ended.then(() => clearTimeout(grace));
  await sink.close();
}

/** An opened exec service, with its state visible to tests. */
export interface ExecInstance extends ServiceInstance {
  /** The listener's state. */
  state: ExecState;
}

/**
 * Opens an exec listener: its state and its connection handler.
 * @param options the parsed options
 * @param listener the listener's context
 * @returns the service instance
 */
export function openExec(options: ExecOptions, listener: ListenerContext): ExecInstance {
  const state: ExecState = {
    options,
    env: commandEnvironment(options),
    slots: listener.slots ??
      listener.shared.obtain(`exec:slots:${listener.name}`, () => ({ running: 0 })),
    groups: new Set(),
    runs: new Set(),
    busyLog: new LogThrottle(),
  };
  return {
    state,
    stream: (conn, context) => serveExec(conn, context, state),
    close: async () => {
      // The daemon is going (after shutdown_timeout): nothing may outlive it.
      for (const group of state.groups) group.kill();
      await Promise.allSettled([...state.runs]);
    },
  };
}

/** The exec service's entry in the service table. */
export const execService: Service = defineService<ExecOptions>({
  name: "exec",
  transports: ["tcp"],
  defaultPort: 7010,
  parseOptions: (reader) => parseExecOptions(reader),
  describe: describeExecOptions,
  open: openExec,
});
