/**
 * A small pool of pre-started process-group leaders, to take the cost of
 * starting a new session (an extra exec of setsid(1), ~0.4 ms) and of the
 * shell itself off each command's latency. Only for listeners whose
 * commands cannot start natively (lib/native_spawn.ts: the offline
 * executable, `user`/`group`, no FFI); a native spawn has no extra exec.
 *
 * Each leader is `/bin/sh -c BOOTSTRAP` started in its own session, with
 * the listener's environment, user and directory, blocked reading one line
 * from stdin. A command is handed to it as one line of shell in which every
 * piece of request text is single-quoted (never interpreted): `eval '…'` for
 * shell text, `exec 'prog' 'arg'…` for argv, optionally preceded by `cd` and
 * `exec </dev/null`. dash's `read` takes bytes one at a time, so whatever
 * follows the line on stdin is the command's stdin, untouched. The leader is
 * thus the command's own shell: `$$` is the group id, `$0` the shell, `$#` 0.
 *
 * @module
 */

import { type GroupSpawnOptions, ProcessGroup } from "../../lib/process_group.ts";

/** The shell every pooled leader runs. */
export const POOL_SHELL = "/bin/sh";

// `__sb_nl` lets a single line carry newlines: quoteLine writes each one as
// '"$__sb_nl"'. The line is read raw (no IFS trimming, no backslash escapes).
const BOOTSTRAP = `__sb_nl='
'
IFS= read -r __sb_l || exit 0
eval "$__sb_l"`;

const encoder = new TextEncoder();

/**
 * Quotes text as one shell word that stays on one line: single quotes, `'`
 * as `'\''`, and each newline as `'"$__sb_nl"'` (the bootstrap defines it).
 * @param text any text without NUL
 * @returns a single-line shell word whose value is `text`
 */
export function quoteWord(text: string): string {
  return "'" + text.replaceAll("'", "'\\''").replaceAll("\n", `'"$__sb_nl"'`) + "'";
}

/** What a pooled leader is asked to run. */
export interface PoolRequest {
  /** Shell text run by the leader's own shell (`eval`), or … */
  text?: string;
  /** … a program and its arguments (`exec`), run without shell interpretation. */
  argv?: readonly string[];
  /** Change to this (absolute, checked) directory first. */
  cwd?: string;
  /** Give the command /dev/null as stdin instead of the pipe. */
  nullStdin: boolean;
  /**
   * For argv: the command's environment, so the shell's own exports (it
   * always exports PWD, and OLDPWD after cd) are undone: argv gets exactly
   * this environment, as when spawned directly.
   */
  env?: Record<string, string>;
}

/**
 * Builds the line a pooled leader evaluates.
 * @param request shell text or argv, directory, stdin
 * @returns one line (without the newline)
 */
export function poolLine(request: PoolRequest): string {
  const parts: string[] = [];
  if (request.cwd !== undefined) parts.push(`cd ${quoteWord(request.cwd)} || exit 126`);
  if (request.nullStdin) parts.push("exec </dev/null");
  if (request.argv) {
    parts.push("unset PWD OLDPWD");
    for (const name of ["PWD", "OLDPWD"]) {
      const value = request.env?.[name];
      if (value !== undefined) parts.push(`export ${name}=${quoteWord(value)}`);
    }
    parts.push(`exec ${request.argv.map(quoteWord).join(" ")}`);
  } else parts.push(`eval ${quoteWord(request.text ?? "")}`);
  return parts.join("; ");
}

/**
 * Whether a command can go through the pool: argv[0] must not look like an
 * option (dash's `exec` has no `--`).
 * @param argv the program and arguments, if any
 * @returns true when poolable
 */
export function poolable(argv: readonly string[] | undefined): boolean {
  return argv === undefined || !argv[0]!.startsWith("-");
}

/** Options for {@linkcode LeaderPool}. */
export interface LeaderPoolOptions {
  /** How many idle leaders to keep. */
  size: number;
  /** How leaders are started (environment, directory, ids); stdin is always piped. */
  spawn: Omit<GroupSpawnOptions, "args" | "stdin">;
  /** Called when starting a leader fails (the pool then stays smaller). */
  onError?: (error: unknown) => void;
}

/** Pre-started process-group leaders waiting for a command. */
export class LeaderPool {
  #options: LeaderPoolOptions;
  #idle: { group: ProcessGroup; exited: boolean }[] = [];
  #refill: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Starts `size` leaders.
   * @param options pool size and how to start leaders
   */
  constructor(options: LeaderPoolOptions) {
    this.#options = options;
    this.#fill();
  }

  /** How many leaders are idle. */
  get idle(): number {
    return this.#idle.length;
  }

  /**
   * Hands a command to an idle leader: writes its line to the leader's stdin.
   * @param request what to run
   * @returns the running group (stdin still open unless `nullStdin`), or
   *   undefined when no leader is idle
   */
  async run(request: PoolRequest): Promise<ProcessGroup | undefined> {
    while (this.#idle.length > 0) {
      const entry = this.#idle.shift()!;
      if (entry.exited) {
        await release(entry.group);
        continue;
      }
      const stdin = entry.group.stdin!;
      try {
        await stdin.write(encoder.encode(poolLine(request) + "\n"));
        if (request.nullStdin) await stdin.close();
        return entry.group;
      } catch {
        entry.group.kill();
        await release(entry.group);
      }
    }
    return undefined;
  }

  /** Ends every idle leader and stops refilling. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#refill);
    const idle = this.#idle.splice(0);
    for (const entry of idle) entry.group.kill();
    await Promise.all(idle.map((entry) => release(entry.group)));
  }

  /**
   * Starts leaders again up to the pool's size, soon. Call it when a command
   * has been answered: starting a leader is a synchronous spawn that blocks
   * the event loop, so it should not delay a command that is still running.
   */
  replenish(): void {
    if (this.#refill === undefined && !this.#closed && this.#idle.length < this.#options.size) {
      this.#refill = setTimeout(() => {
        this.#refill = undefined;
        // One leader per turn of the event loop: requests get in between.
        // After a failure, wait for the next command to try again (no hot loop).
        if (this.#fill(1)) this.replenish();
      }, 0);
    }
  }

  /** Starts up to `count` leaders; false when starting one failed. */
  #fill(count = Infinity): boolean {
    for (let started = 0; started < count; started++) {
      if (this.#closed || this.#idle.length >= this.#options.size) return true;
      let group: ProcessGroup;
      try {
        group = ProcessGroup.spawn(POOL_SHELL, {
          ...this.#options.spawn,
          args: ["-c", BOOTSTRAP],
          stdin: "piped",
        });
      } catch (error) {
        this.#options.onError?.(error);
        return false;
      }
      const entry = { group, exited: false };
      group.status.then(() => entry.exited = true);
      this.#idle.push(entry);
    }
    return true;
  }
}

/** Closes a leader's pipes and reaps it. */
async function release(group: ProcessGroup): Promise<void> {
  group.stdin?.abort();
  group.stdout.cancel();
  group.stderr?.cancel();
  await group.status;
}
