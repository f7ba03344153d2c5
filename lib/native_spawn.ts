/**
 * Starting a command with posix_spawn(3) through FFI, as the leader of a new
 * session (glibc's `POSIX_SPAWN_SETSID`): one clone and one exec, no
 * setsid(1) in between, and no thread per child. Its pipes are nonblocking
 * on our side and read, written and waited on through {@linkcode FdPoller};
 * its exit is seen on a pidfd and reaped with waitid(2).
 *
 * Only where {@linkcode nativeSpawner} says so: Linux with glibc ≥ 2.29
 * (`posix_spawn_file_actions_addchdir_np`), `pidfd_open` (Linux ≥ 5.3),
 * and a runtime with Deno's FFI. Elsewhere callers use `Deno.Command`.
 *
 * @module
 */

import { EPOLLIN, EPOLLOUT, type FdPoller, fdPoller, type Watch } from "./fd_poller.ts";
import { libc, type LibCHandle } from "./libc.ts";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_SETFL = 4;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const P_PID = 1;
const WEXITED = 4;
const WNOHANG = 1;
const CLD_EXITED = 1;
const EINTR = 4;
const EAGAIN = 11;
const ENOENT = 2;
const EACCES = 13;
const ENOEXEC = 8;
const EPIPE = 32;
const SHELL = "/bin/sh";
// Generous sizes for glibc's opaque types (x86-64: 80, 336, 128 bytes).
const FILE_ACTIONS_SIZE = 256;
const ATTR_SIZE = 512;
const SIGSET_SIZE = 256;
const SIGINFO_SIZE = 128;

const SIGNAL_NAMES = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

const encoder = new TextEncoder();

/** Bytes with a stable address (an ArrayBuffer's store never moves). */
function cBuffer(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(Math.max(size, 8)));
}

function address(buffer: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as Uint8Array<ArrayBuffer>)));
}

/** NUL-terminated strings and the NULL-terminated array pointing at them. */
interface CStrings {
  block: Uint8Array;
  pointers: Uint8Array;
}

function cStrings(strings: readonly string[]): CStrings {
  let size = 0;
  for (const s of strings) size += s.length * 3 + 1;
  const block = cBuffer(size);
  const offsets: number[] = [];
  let at = 0;
  for (const s of strings) {
    offsets.push(at);
    const { written } = encoder.encodeInto(s, block.subarray(at));
    at += written;
    block[at++] = 0;
  }
  const base = address(block);
  const pointers = cBuffer((strings.length + 1) * 8);
  const view = new BigUint64Array(pointers.buffer, 0, strings.length + 1);
  for (let i = 0; i < offsets.length; i++) view[i] = base + BigInt(offsets[i]!);
  view[strings.length] = 0n;
  return { block, pointers };
}

function cString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const buffer = cBuffer(bytes.length + 1);
  buffer.set(bytes);
  return buffer;
}

/** An error from a C call, with the `Deno.errors` class its errno maps to. */
export function errnoError(errno: number, what: string): Error {
  const message = `${what} failed (os error ${errno})`;
  if (errno === ENOENT) return new Deno.errors.NotFound(message);
  if (errno === EACCES || errno === ENOEXEC) return new Deno.errors.PermissionDenied(message);
  return new Error(message);
}

/** The read end of a child's output pipe. */
export class NativeReader {
  #lib: LibCHandle;
  #fd: number;
  #watch: Watch;
  #closed = false;

  /** @internal */
  constructor(lib: LibCHandle, poller: FdPoller, fd: number) {
    this.#lib = lib;
    this.#fd = fd;
    this.#watch = poller.add(fd, EPOLLIN);
  }

  /**
   * Reads what the pipe holds, waiting until there is something.
   * @param buffer where the bytes go
   * @returns the bytes read (a view of `buffer`), or null at end of file
   *   (also once cancelled)
   * @throws {Error} on a read error other than EAGAIN/EINTR
   */
  async read(buffer: Uint8Array): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#closed) return null;
      const n = Number(this.#lib.symbols.read(this.#fd, buffer, BigInt(buffer.length)));
      if (n > 0) return buffer.subarray(0, n);
      if (n === 0) {
        this.cancel();
        return null;
      }
      const errno = this.#lib.errno();
      if (errno === EAGAIN) await this.#watch.wait();
      else if (errno !== EINTR) {
        this.cancel();
        throw errnoError(errno, "read");
      }
    }
  }

  /** Closes the pipe; a pending read returns null. Idempotent. */
  cancel(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.remove(true);
    this.#lib.symbols.close(this.#fd);
  }
}

/** The write end of a child's stdin pipe. */
export class NativeWriter {
  #lib: LibCHandle;
  #fd: number;
  #watch: Watch;
  #closed = false;

  /** @internal */
  constructor(lib: LibCHandle, poller: FdPoller, fd: number) {
    this.#lib = lib;
    this.#fd = fd;
    this.#watch = poller.add(fd, EPOLLOUT);
  }

  /**
   * Writes all of `chunk`, waiting while the pipe is full.
   * @param chunk the bytes (may be reused once this resolves)
   * @throws {Deno.errors.BrokenPipe} when the child closed its end, or the
   *   pipe was closed here meanwhile; {Error} for other write errors
   */
  async write(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.#closed) throw new Deno.errors.BrokenPipe("stdin is closed");
      const rest = at === 0 ? chunk : chunk.subarray(at);
      const n = Number(this.#lib.symbols.write(this.#fd, rest, BigInt(rest.length)));
      if (n >= 0) {
        at += n;
        continue;
      }
      const errno = this.#lib.errno();
      if (errno === EAGAIN) await this.#watch.wait();
      else if (errno !== EINTR) {
        this.abort();
        if (errno === EPIPE) throw new Deno.errors.BrokenPipe("write to stdin: broken pipe");
        throw errnoError(errno, "write");
      }
    }
  }

  /** Closes the pipe: the child sees end of file. Idempotent. */
  close(): Promise<void> {
    this.abort();
    return Promise.resolve();
  }

  /** Closes the pipe at once; a pending write fails. Idempotent. */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.remove(true);
    this.#lib.symbols.close(this.#fd);
  }
}

/** Options for {@linkcode NativeSpawner.spawn}. */
export interface NativeSpawnOptions {
  /** The program's path (absolute, or relative to `cwd`): no PATH search here. */
  path: string;
  /** The full argv, argv[0] included. */
  argv: readonly string[];
  /** The complete environment. */
  env: Record<string, string>;
  /** Working directory. */
  cwd: string;
  /** `piped` or `null` (/dev/null). */
  stdin: "piped" | "null";
  /** `piped` or `null` (/dev/null). */
  stderr: "piped" | "null";
}

/** A child started by {@linkcode NativeSpawner.spawn}. */
export interface NativeChild {
  /** Its pid, which is also its session and process group id. */
  pid: number;
  /** Resolves once it has exited and been reaped. */
  status: Promise<Deno.CommandStatus>;
  /** Its stdout. */
  stdout: NativeReader;
  /** Its stderr, when piped. */
  stderr: NativeReader | undefined;
  /** Its stdin, when piped. */
  stdin: NativeWriter | undefined;
}

/** One spawn's descriptors and C memory. */
interface SpawnJob {
  actions: Uint8Array;
  pidOut: Uint8Array;
  cwd: Uint8Array;
  path: Uint8Array;
  argv: CStrings;
  env: CStrings;
  viaShell: () => [CStrings, Uint8Array];
  stdinPipe: [number, number] | undefined;
  stdoutPipe: [number, number];
  stderrPipe: [number, number] | undefined;
  closeAll: () => void;
}

/** Spawns children as session leaders through posix_spawn. */
export class NativeSpawner {
  #lib: LibCHandle;
  #poller: FdPoller;
  #attr = cBuffer(ATTR_SIZE);
  #devNull = cString("/dev/null");
  #envCache = new WeakMap<Record<string, string>, CStrings>();

  /**
   * Prepares the spawn attributes (new session, empty signal mask, every
   * signal at its default action).
   * @param lib the C library
   * @param poller where pipes and pidfds are watched
   * @throws {Error} when the attributes cannot be set
   */
  constructor(lib: LibCHandle, poller: FdPoller) {
    this.#lib = lib;
    this.#poller = poller;
    const { symbols } = lib;
    const mask = cBuffer(SIGSET_SIZE);
    const defaults = cBuffer(SIGSET_SIZE);
    symbols.sigemptyset(mask);
    symbols.sigfillset(defaults);
    if (
      symbols.posix_spawnattr_init(this.#attr) !== 0 ||
      symbols.posix_spawnattr_setflags(
          this.#attr,
          POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF,
        ) !== 0 ||
      symbols.posix_spawnattr_setsigmask(this.#attr, mask) !== 0 ||
      symbols.posix_spawnattr_setsigdefault(this.#attr, defaults) !== 0
    ) {
      throw new Error("posix_spawnattr setup failed");
    }
  }

  /**
   * Starts a child in a new session with piped stdout (and stdin/stderr as
   * asked), exactly the given environment, in `cwd`. The event loop waits
   * while the child gets to its exec (vfork semantics).
   * @param options path, argv, environment, directory, stdio
   * @returns the running child
   * @throws {Deno.errors.NotFound} or {Deno.errors.PermissionDenied} when the
   *   program cannot be executed; {Error} for other failures
   */
  spawn(options: NativeSpawnOptions): NativeChild {
    const job = this.#prepare(options);
    const { symbols } = this.#lib;
    const call = (args: CStrings, path: Uint8Array): number =>
      symbols.posix_spawn(
        job.pidOut,
        path,
        job.actions,
        this.#attr,
        args.pointers,
        job.env.pointers,
      );
    let code = call(job.argv, job.path);
    if (code === ENOEXEC) code = call(...job.viaShell());
    return this.#finish(job, code, options);
  }

  /**
   * Like {@linkcode NativeSpawner.spawn}, but the posix_spawn call runs on
   * a worker thread: the event loop goes on serving while the child is
   * cloned and gets to its exec (which takes long when the CPUs are busy).
   * @param options path, argv, environment, directory, stdio
   * @returns the running child
   * @throws {Deno.errors.NotFound} or {Deno.errors.PermissionDenied} when the
   *   program cannot be executed; {Error} for other failures
   */
  async start(options: NativeSpawnOptions): Promise<NativeChild> {
    const job = this.#prepare(options);
    const { symbols } = this.#lib;
    const call = (args: CStrings, path: Uint8Array): Promise<number> =>
      symbols.posix_spawn_nonblocking(
        job.pidOut,
        path,
        job.actions,
        this.#attr,
        args.pointers,
        job.env.pointers,
      );
    let code = await call(job.argv, job.path);
    if (code === ENOEXEC) code = await call(...job.viaShell());
    return this.#finish(job, code, options);
  }

  /** Pipes, file actions and C strings for one spawn (all kept alive by the job). */
  #prepare(options: NativeSpawnOptions): SpawnJob {
    const { symbols } = this.#lib;
    const opened: number[] = [];
    const closeAll = (): void => {
      for (const fd of opened) symbols.close(fd);
    };
    const pipeOut = cBuffer(8);
    // Both ends nonblocking from pipe2; the child's end is made blocking
    // again (one fcntl instead of two on ours).
    const pipe = (childEnd: 0 | 1): [number, number] => {
      if (symbols.pipe2(pipeOut, O_CLOEXEC | O_NONBLOCK) !== 0) {
        const error = errnoError(this.#lib.errno(), "pipe2");
        closeAll();
        throw error;
      }
      const fds = new Int32Array(pipeOut.buffer, 0, 2);
      const ends: [number, number] = [fds[0]!, fds[1]!];
      opened.push(ends[0], ends[1]);
      symbols.fcntl(ends[childEnd], F_SETFL, 0);
      return ends;
    };
    const stdinPipe = options.stdin === "piped" ? pipe(0) : undefined;
    const stdoutPipe = pipe(1);
    const stderrPipe = options.stderr === "piped" ? pipe(1) : undefined;
    const actions = cBuffer(FILE_ACTIONS_SIZE);
    symbols.posix_spawn_file_actions_init(actions);
    if (stdinPipe) symbols.posix_spawn_file_actions_adddup2(actions, stdinPipe[0], 0);
    else symbols.posix_spawn_file_actions_addopen(actions, 0, this.#devNull, O_RDONLY, 0);
    symbols.posix_spawn_file_actions_adddup2(actions, stdoutPipe[1], 1);
    if (stderrPipe) symbols.posix_spawn_file_actions_adddup2(actions, stderrPipe[1], 2);
    else symbols.posix_spawn_file_actions_addopen(actions, 2, this.#devNull, O_WRONLY, 0);
    const cwd = cString(options.cwd);
    symbols.posix_spawn_file_actions_addchdir_np(actions, cwd);
    const shell = cString(SHELL);
    return {
      actions,
      pidOut: cBuffer(8),
      cwd,
      path: cString(options.path),
      argv: cStrings(options.argv),
      env: this.#environment(options.env),
      // A script without "#!" runs in /bin/sh, as execvp(3) does it.
      viaShell: () => [cStrings([SHELL, options.path, ...options.argv.slice(1)]), shell],
      stdinPipe,
      stdoutPipe,
      stderrPipe,
      closeAll,
    };
  }

  #finish(job: SpawnJob, code: number, options: NativeSpawnOptions): NativeChild {
    const { symbols } = this.#lib;
    const { stdinPipe, stdoutPipe, stderrPipe } = job;
    symbols.posix_spawn_file_actions_destroy(job.actions);
    if (code !== 0) {
      job.closeAll();
      throw errnoError(code, `spawn '${options.argv[0]}'`);
    }
    const pid = new Int32Array(job.pidOut.buffer, 0, 1)[0]!;
    // The child's ends belong to the child now.
    if (stdinPipe) symbols.close(stdinPipe[0]);
    symbols.close(stdoutPipe[1]);
    if (stderrPipe) symbols.close(stderrPipe[1]);
    const pidfd = symbols.pidfd_open(pid, 0);
    if (pidfd < 0) {
      // Cannot happen for our own unreaped child; do not leave it behind.
      const errno = this.#lib.errno();
      Deno.kill(-pid, "SIGKILL");
      symbols.waitid(P_PID, pid, cBuffer(SIGINFO_SIZE), WEXITED);
      for (const fd of [stdinPipe?.[1], stdoutPipe[0], stderrPipe?.[0]]) {
        if (fd !== undefined) symbols.close(fd);
      }
      throw errnoError(errno, "pidfd_open");
    }
    return {
      pid,
      status: this.#reap(pid, pidfd),
      stdout: new NativeReader(this.#lib, this.#poller, stdoutPipe[0]),
      stderr: stderrPipe ? new NativeReader(this.#lib, this.#poller, stderrPipe[0]) : undefined,
      stdin: stdinPipe ? new NativeWriter(this.#lib, this.#poller, stdinPipe[1]) : undefined,
    };
  }

  #environment(env: Record<string, string>): CStrings {
    let strings = this.#envCache.get(env);
    if (strings === undefined) {
      strings = cStrings(Object.entries(env).map(([key, value]) => `${key}=${value}`));
      this.#envCache.set(env, strings);
    }
    return strings;
  }

  async #reap(pid: number, pidfd: number): Promise<Deno.CommandStatus> {
    const { symbols } = this.#lib;
    const watch = this.#poller.add(pidfd, EPOLLIN);
    const info = cBuffer(SIGINFO_SIZE);
    const view = new DataView(info.buffer);
    try {
      for (;;) {
        // The first wait returns at once if it is gone already (an
        // edge-triggered registration of a ready pidfd reports it).
        await watch.wait();
        view.setInt32(16, 0, true); // si_pid: stays 0 while the child runs
        const result = symbols.waitid(P_PID, pid, info, WEXITED | WNOHANG);
        if (result === 0 && view.getInt32(16, true) === pid) break;
        if (result !== 0 && this.#lib.errno() !== EINTR) {
          // ECHILD: someone else reaped it; nothing more to learn.
          return { success: false, code: 1, signal: null };
        }
      }
    } finally {
      watch.remove(true);
      symbols.close(pidfd);
    }
    const how = view.getInt32(8, true);
    const value = view.getInt32(24, true);
    if (how === CLD_EXITED) return { success: value === 0, code: value, signal: null };
    const signal = (SIGNAL_NAMES[value] || `SIG${value}`) as Deno.Signal;
    return { success: false, code: 128 + value, signal };
  }
}

let spawner: NativeSpawner | null | undefined;

/**
 * The process's native spawner, when this system and runtime allow one.
 * @returns the spawner, or undefined (no FFI, no epoll, …)
 */
export function nativeSpawner(): NativeSpawner | undefined {
  const lib = libc();
  if (lib === undefined) return undefined;
  if (spawner === undefined) {
    try {
      spawner = new NativeSpawner(lib, fdPoller(lib));
    } catch {
      spawner = null;
    }
  }
  return spawner ?? undefined;
}
