/**
 * Running a command as the leader of a new session and process group, and
 * ending the whole group: SIGTERM, then SIGKILL after a grace period.
 *
 * Deno.Command has no process-group option. `detached: true` does call
 * setsid(2) on Linux, but it forces the fork path (measured here: ~700
 * spawns/s against ~1800 with posix_spawn). So the command is started through
 * util-linux `setsid(1)`, which posix_spawn can launch: it calls setsid(2)
 * (it is never a group leader, so it does not fork) and execs the command,
 * keeping its pid (~1050 spawns/s). Without `setsid(1)`, `detached` is used.
 *
 * A process that calls setsid(2) itself, or double-forks into another group,
 * escapes a group kill; under systemd, `KillMode=control-group` catches it.
 *
 * @module
 */

/** Where util-linux's setsid(1) may be. */
const SETSID_CANDIDATES = ["/usr/bin/setsid", "/bin/setsid"];

/** How a command is put in a new session. */
export type GroupStrategy = "setsid" | "detached";

let detectedStrategy: { strategy: GroupStrategy; setsid?: string } | undefined;

/**
 * Finds how this machine can start a command in a new process group.
 * @returns `setsid` (util-linux's setsid(1) was found) or `detached`
 */
export function groupStrategy(): GroupStrategy {
  return detect().strategy;
}

function detect(): { strategy: GroupStrategy; setsid?: string } {
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
  /** Force a strategy (tests). @default {groupStrategy()} */
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
  /** The child process (its stdin/stdout/stderr streams). */
  readonly child: Deno.ChildProcess;
  /** Resolves when the leader has exited (and been reaped). */
  readonly status: Promise<Deno.CommandStatus>;
  /** Whether `child.stderr` is a pipe (else it went to /dev/null). */
  readonly stderrPiped: boolean;
  #terminating?: Promise<void>;

  private constructor(child: Deno.ChildProcess, stderrPiped: boolean) {
    this.child = child;
    this.pid = child.pid;
    this.status = child.status;
    this.stderrPiped = stderrPiped;
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
    const found = detect();
    const strategy = options.strategy ?? found.strategy;
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
      stderr: options.stderr ?? "piped",
      detached: !viaSetsid,
    });
    return new ProcessGroup(command.spawn(), (options.stderr ?? "piped") === "piped");
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
