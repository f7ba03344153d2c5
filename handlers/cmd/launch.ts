/**
 * What the cmd protocols (framed and line) share per listener: its state,
 * the concurrency slots, and starting a checked command in its own process
 * group the way a shell would report a program it cannot run.
 *
 * @module
 */

import type { CmdOptions } from "./options.ts";
import { acquireSlot, type SlotCounter } from "../../lib/command_slots.ts";
import { RequestError } from "../../lib/framed_server.ts";
import type { Logger } from "../../lib/log.ts";
import { LeaderPool, POOL_SHELL, poolable } from "./leader_pool.ts";
import { describeError } from "../../lib/net_errors.ts";
import { ProcessGroup, spawnsNatively } from "../../lib/process_group.ts";
import { checkProgram, type ProgramProblem } from "../../lib/program_check.ts";
/** Idle pre-started leaders per listener (at most max_concurrent). */
export const POOL_SIZE = 8;
/** The largest stdout/stderr frame body (docs/protocol.md: at most 64 KiB). */
export const OUTPUT_CHUNK = 65536;

/** Per-listener state of an opened cmd service. */
export interface CmdState {
  /** The listener's options. */
  options: CmdOptions;
  /** The environment every command gets. */
  env: Record<string, string>;
  /** Commands running on this listener (shared across reloads of it). */
  slots: SlotCounter;
  /** Process groups running in this instance (killed when it closes). */
  groups: Set<ProcessGroup>;
  /** Commands in progress in this instance. */
  runs: Set<Promise<unknown>>;
  /** The listener's logger. */
  log: Logger;
  /** Pre-started leaders (none when /bin/sh is missing). */
  pool?: LeaderPool;
  /** The directory pooled leaders start in. */
  poolCwd?: string;
}

/** A command that could be started, or why it could not (as a shell reports it). */
export type Started = { group: ProcessGroup } | { problem: ProgramProblem };

/** What to start: a program and its arguments, and the shell text when it came as `cmd`. */
export interface Launch {
  /** The full argv (for shell text: the listener's shell, its flags, the text). */
  argv: readonly string[];
  /** The shell text, when the request was `cmd`. */
  text?: string;
}

/**
 * Starts a checked command in its own process group — through an idle
 * pooled leader when there is one, else by spawning — or says why it cannot
 * run (127 not found, 126 not executable) as a shell would.
 * @param launch argv, and the shell text for `cmd` requests
 * @param options where and how: directory, stdin mode, the listener's state
 * @returns the group, or the problem
 * @throws {Error} for spawn failures that are not the command's fault
 */
export async function startCommand(
  launch: Launch,
  options: { cwd: string; stdin: "piped" | "null"; state: CmdState },
): Promise<Started> {
  const { cwd, stdin, state } = options;
  const { argv } = launch;
  const program = argv[0]!;
  const problem = checkProgram(program, state.env.PATH ?? "", cwd);
  if (problem) return { problem };
  if (state.pool && poolable(argv)) {
    const ownShell = launch.text !== undefined && state.options.shell.length === 2 &&
      state.options.shell[0] === POOL_SHELL && state.options.shell[1] === "-c";
    const group = await state.pool.run({
      ...(ownShell ? { text: launch.text } : { argv, env: state.env }),
      cwd: cwd === state.poolCwd ? undefined : cwd,
      nullStdin: stdin === "null",
    });
    if (group) return { group };
  }
  try {
    const spawn = {
      args: argv.slice(1),
      cwd,
      env: state.env,
      uid: state.options.uid,
      gid: state.options.gid,
      stdin,
    };
    // Alone, the command is started on the event loop (no trip to a worker
    // thread and back); with others running, off it, so they are served
    // while this one is cloned and gets to its exec.
    const group = state.slots.running > 1
      ? await ProcessGroup.start(program, spawn)
      : ProcessGroup.spawn(program, spawn);
    return { group };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { problem: { code: 127, message: `${program}: command not found` } };
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      return { problem: { code: 126, message: `${program}: Permission denied` } };
    }
    throw error;
  }
}

/**
 * Starts the pool of idle leaders for a listener (when /bin/sh can run, and
 * commands do not start natively: a native spawn costs no extra exec, so a
 * pooled shell would only add its own work).
 * @param state the listener's state (its environment, ids and directory)
 * @param cwd the directory leaders start in
 * @returns the pool, or undefined when there is none to have
 */
export function startPool(state: CmdState, cwd: string): LeaderPool | undefined {
  if (spawnsNatively(state.options)) return undefined;
  if (checkProgram(POOL_SHELL, "", "/")) return undefined;
  return new LeaderPool({
    size: Math.min(POOL_SIZE, state.options.maxConcurrent),
    spawn: { cwd, env: state.env, uid: state.options.uid, gid: state.options.gid },
    onError: (error) => state.log.warn(`Cannot pre-start a command shell: ${describeError(error)}`),
  });
}

/**
 * Takes a concurrency slot of the listener (with workers, the supervisor's count).
 * @param state the listener's state
 * @returns a release function (idempotent)
 * @throws {RequestError} `busy` when `max_concurrent` commands are running
 */
export async function takeSlot(state: CmdState): Promise<() => void> {
  const release = await acquireSlot(state.slots, state.options.maxConcurrent);
  if (release) return release;
  throw new RequestError(
    "busy",
    `${state.options.maxConcurrent} commands are already running here (max_concurrent); ` +
      `try again later`,
  );
}
