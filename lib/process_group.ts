/**
 * Running a command as the leader of a new session and process group, and
 * ending the whole group: SIGTERM, then SIGKILL after a grace period.
 *
 * Three ways to start it, the first that applies:
 * - `native`: posix_spawn(3) through FFI with glibc's `POSIX_SPAWN_SETSID`
 *   (lib/native_spawn.ts): one clone, one exec, pipes watched by epoll.
 *   Needs Deno's FFI (not the offline executable), glibc, Linux ≥ 5.3, and
 *   no `uid`/`gid` (posix_spawn cannot change ids).
 * - `setsid`: Deno.Command has no process-group option, and `detached: true`
 *   (setsid(2) in a pre-exec hook) forces the fork path (measured here: ~700
 *   spawns/s against ~1800 with posix_spawn). So the command is started
 *   through util-linux `setsid(1)`, which posix_spawn can launch: it calls
 *   setsid(2) (it is never a group leader, so it does not fork) and execs the
 *   command, keeping its pid (~1050 spawns/s).
 * - `detached`: without `setsid(1)`.
 *
 * A process that calls setsid(2) itself, or double-forks into another group,
 * escapes a group kill; under systemd, `KillMode=control-group` catches it.
 *
 * @module
 */

import { resolve } from "node:path";
import { type NativeSpawner, nativeSpawner, type NativeSpawnOptions } from "./native_spawn.ts";
import { locateProgram } from "./program_check.ts";

/** Where util-linux's setsid(1) may be. */
const SETSID_CANDIDATES = ["/usr/bin/setsid", "/bin/setsid"];

/** How a command is put in a new session. */
export type GroupStrategy = "native" | "setsid" | "detached";

let detectedStrategy: { strategy: "setsid" | "detached"; setsid?: string } | undefined;

/**
 * Finds how this machine can start a command in a new process group when
 * the ids are not changed.
 * @returns `native` (posix_spawn through FFI), `setsid` (util-linux's
 *   setsid(1) was found) or `detached`
 */
export function groupStrategy(): GroupStrategy {
  return nativeSpawner() ? "native" : detect().strategy;
}

/**
 * Whether commands with these ids start the native way (no setsid(1), no
 * shell needed in between).
 * @param ids the `uid`/`gid` the commands run as, if any
 * @returns true when {@linkcode ProcessGroup.spawn} takes the native path
 */
export function spawnsNatively(ids: { uid?: number; gid?: number }): boolean {
  return ids.uid === undefined && ids.gid === undefined && nativeSpawner() !== undefined;
}

function detect(): { strategy: "setsid" | "detached"; setsid?: string } {
  if (detectedStrategy) return detectedStrategy;
  for (const path of SETSID_CANDIDATES) {
    try {
      const info = Deno.statSync(path);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) {
        detectedStrategy = { strategy: "setsid", setsid: path };
        return detectedStrategy;
      }
    } catch {
      // Try the next place.
    }
  }
  detectedStrategy = { strategy: "detached" };
  return detectedStrategy;
}

/** The read side of a command's stdout or stderr. */
export interface OutputPipe {
  /**
   * Reads the next bytes, waiting until there are some.
   * @param buffer where they go; it may be transferred (detached): read
   *   next into the returned view's buffer, not this one
   * @returns the bytes read, or null at end of file
   */
  read(buffer: Uint8Array): Promise<Uint8Array | null>;
  /** Stops reading and closes the pipe; a pending read returns null. */
  cancel(): void;
}

/** The write side of a command's stdin. */
export interface InputPipe {
  /**
   * Writes all of `chunk` (waits while the pipe is full).
   * @throws when the command closed its stdin
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the command's stdin (end of file). */
  close(): Promise<void>;
  /** Closes the pipe at once, dropping what is not written. */
  abort(): void;
}

/** A `Deno.ChildProcess` output stream as an {@linkcode OutputPipe}. */
class StreamOutput implements OutputPipe {
  #reader: ReadableStreamBYOBReader;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader({ mode: "byob" });
  }

  async read(buffer: Uint8Array): Promise<Uint8Array | null> {
    const { value, done } = await this.#reader.read(buffer as Uint8Array<ArrayBuffer>);
    return done || value === undefined ? null : value;
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/** A `Deno.ChildProcess` stdin as an {@linkcode InputPipe}. */
class StreamInput implements InputPipe {
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#writer.write(chunk);
  }

  close(): Promise<void> {
    return this.#writer.close();
  }

  abort(): void {
    this.#writer.abort().catch(() => {});
  }
}

/** Options for {@linkcode ProcessGroup.spawn}. */
export interface GroupSpawnOptions {
  /** Arguments after the program (argv[1..]). */
  args: readonly string[];
  /** Working directory (absolute). */
  cwd: string;
  /** The complete environment of the command (nothing is inherited). */
  env: Record<string, string>;
  /** Run as this user id (the daemon must be root). */
  uid?: number;
  /** Run as this group id (the daemon must be root). */
  gid?: number;
  /** `piped` to feed stdin, `null` for /dev/null. */
  stdin: "piped" | "null";
  /** `piped` to read stderr, `null` for /dev/null. @default {"piped"} */
  stderr?: "piped" | "null";
  /**
   * Force a strategy (tests): `native` where available, else the best of the
   * others; `setsid` or `detached` skip the native path.
   * @default {groupStrategy()}
   */
  strategy?: GroupStrategy;
}

/** Options for {@linkcode ProcessGroup.terminate}. */
export interface TerminateOptions {
  /** How long processes get after SIGTERM before SIGKILL, in ms. @default {2000} */
  graceMs?: number;
  /** How often the group is checked while waiting, in ms. @default {20} */
  pollMs?: number;
}

/** A command running as the leader of its own process group. */
export class ProcessGroup {
  /** The command's pid, which is also the group's id. */
  readonly pid: number;
  /** Resolves when the leader has exited (and been reaped). */
  readonly status: Promise<Deno.CommandStatus>;
  /** The command's stdout. */
  readonly stdout: OutputPipe;
  /** The command's stderr, when piped (else it went to /dev/null). */
  readonly stderr: OutputPipe | undefined;
  /** The command's stdin, when piped (else it reads /dev/null). */
  readonly stdin: InputPipe | undefined;
  /** How it was started. */
  readonly strategy: GroupStrategy;
  #terminating?: Promise<void>;

  private constructor(
    parts: {
      pid: number;
      status: Promise<Deno.CommandStatus>;
      stdout: OutputPipe;
      stderr: OutputPipe | undefined;
      stdin: InputPipe | undefined;
    },
    strategy: GroupStrategy,
  ) {
    this.pid = parts.pid;
    this.status = parts.status;
    this.stdout = parts.stdout;
    this.stderr = parts.stderr;
    this.stdin = parts.stdin;
    this.strategy = strategy;
  }

  /** Whether stderr is a pipe (else it went to /dev/null). */
  get stderrPiped(): boolean {
    return this.stderr !== undefined;
  }

  /**
   * Starts `program` as the leader of a new session and process group, with
   * stdout (and unless told otherwise stderr) piped and exactly the given
   * environment.
   * @param program the program (absolute path, or a name looked up in `env.PATH`)
   * @param options arguments, directory, environment, ids and stdin mode
   * @returns the running group
   * @throws {Deno.errors.NotFound} and other spawn errors
   */
  static spawn(program: string, options: GroupSpawnOptions): ProcessGroup {
    const native = nativeRequest(program, options);
    if (native) return new ProcessGroup(native.spawner.spawn(native.request), "native");
    const stderr = options.stderr ?? "piped";
    const found = detect();
    const strategy = options.strategy === "detached" ? "detached" : found.strategy;
    const viaSetsid = strategy === "setsid" && found.setsid !== undefined;
    const command = new Deno.Command(viaSetsid ? found.setsid! : program, {
      // "--" ends setsid's own options, so a program named "-w" stays a program.
      args: viaSetsid ? ["--", program, ...options.args] : [...options.args],
      cwd: options.cwd,
      clearEnv: true,
      env: options.env,
      uid: options.uid,
      gid: options.gid,
      stdin: options.stdin,
      stdout: "piped",
      stderr,
      detached: !viaSetsid,
    });
    const child = command.spawn();
    return new ProcessGroup({
      pid: child.pid,
      status: child.status,
      stdout: new StreamOutput(child.stdout),
      stderr: stderr === "piped" ? new StreamOutput(child.stderr) : undefined,
      stdin: options.stdin === "piped" ? new StreamInput(child.stdin) : undefined,
    }, viaSetsid ? "setsid" : "detached");
  }

  /**
   * Like {@linkcode ProcessGroup.spawn}, but on the native path the event
   * loop is not held while the child is cloned and gets to its exec (that
   * runs on a worker thread): other connections are served meanwhile.
   * @param program the program (absolute path, or a name looked up in `env.PATH`)
   * @param options arguments, directory, environment, ids and stdin mode
   * @returns the running group
   * @throws {Deno.errors.NotFound} and other spawn errors
   */
  static async start(program: string, options: GroupSpawnOptions): Promise<ProcessGroup> {
    const native = nativeRequest(program, options);
    if (native) return new ProcessGroup(await native.spawner.start(native.request), "native");
    return ProcessGroup.spawn(program, options);
  }

  /**
   * Sends a signal to every process of the group.
   * @param signal the signal
   * @returns false when the group has no process left (not even a zombie)
   */
  signal(signal: Deno.Signal): boolean {
    return signalGroup(this.pid, signal);
  }

  /**
   * Ends the group: SIGTERM to every member, then SIGKILL to whatever is
   * still running after the grace period. Resolves once no live (non-zombie)
   * process is left in the group or SIGKILL has been sent. Calling it again
   * returns the same promise.
   * @param options grace period and polling interval
   * @returns when the group is gone or has been sent SIGKILL
   */
  terminate(options: TerminateOptions = {}): Promise<void> {
    // Never rejects: callers keep this promise and await it later.
    this.#terminating ??= terminateGroup(this.pid, options).catch(() => {
      signalGroup(this.pid, "SIGKILL");
    });
    return this.#terminating;
  }

  /** Sends SIGKILL to the whole group at once (daemon shutdown). */
  kill(): void {
    signalGroup(this.pid, "SIGKILL");
  }
}

/** The native spawner and its request, when these options can take that path. */
function nativeRequest(
  program: string,
  options: GroupSpawnOptions,
): { spawner: NativeSpawner; request: NativeSpawnOptions } | undefined {
  if (options.uid !== undefined || options.gid !== undefined) return undefined;
  if (options.strategy !== undefined && options.strategy !== "native") return undefined;
  const spawner = nativeSpawner();
  if (!spawner) return undefined;
  // A path is left to posix_spawn, which says NotFound or PermissionDenied.
  const path = program.includes("/")
    ? resolve(options.cwd, program)
    : locateProgram(program, options.env.PATH ?? "", options.cwd);
  if (path === undefined) {
    throw new Deno.errors.NotFound(`Failed to spawn '${program}': entity not found`);
  }
  return {
    spawner,
    request: {
      path,
      argv: [program, ...options.args],
      env: options.env,
      cwd: options.cwd,
      stdin: options.stdin,
      stderr: options.stderr ?? "piped",
    },
  };
}

/**
 * Signals a process group; false when it has no process left. Other errors
 * (EPERM: no member could be signalled) count as "someone is there".
 */
function signalGroup(pgid: number, signal: Deno.Signal | 0): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound); // ESRCH: nobody left
  }
}

/** Whether live (non-zombie) processes remain; without /proc, any process counts. */
function groupAlive(pgid: number): boolean {
  try {
    return liveGroupMembers(pgid).length > 0;
  } catch {
    return signalGroup(pgid, 0);
  }
}

async function terminateGroup(pgid: number, options: TerminateOptions): Promise<void> {
  // The common case, a finished command with nothing left behind, costs one
  // kill(2) that fails with ESRCH.
  if (!signalGroup(pgid, "SIGTERM")) return;
  const graceMs = options.graceMs ?? 2000;
  const pollMs = options.pollMs ?? 20;
  const deadline = performance.now() + graceMs;
  while (performance.now() < deadline) {
    if (!groupAlive(pgid)) return;
    await sleep(Math.min(pollMs, Math.max(1, deadline - performance.now())));
  }
  signalGroup(pgid, "SIGKILL");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One process as /proc describes it. */
export interface ProcessInfo {
  /** Process id. */
  pid: number;
  /** One-letter state (`R`, `S`, `Z`, …). */
  state: string;
  /** Parent process id. */
  ppid: number;
  /** Process group id. */
  pgid: number;
  /** Session id. */
  sid: number;
}

/**
 * Reads a process's state, group and session from `/proc/PID/stat`.
 * @param pid the process id
 * @returns the fields, or undefined when the process is gone
 */
export function processInfo(pid: number): ProcessInfo | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    pid,
    state: fields[0]!,
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
  };
}

/**
 * Lists the processes of a group that are not zombies (a zombie runs nothing;
 * an init that is slow to reap keeps it listed for a while).
 * @param pgid the process group id
 * @returns their pids (empty when none)
 */
export function liveGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const info = processInfo(pid);
    if (info && info.pgid === pgid && info.state !== "Z" && info.state !== "X") {
      members.push(pid);
    }
  }
  return members;
}
