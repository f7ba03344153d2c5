/**
 * How `switchboard cmd` turns a remote `exit` frame into its own exit code,
 * the way ssh and timeout(1) do: the remote code; 128+n for signal n; 124
 * when the timeout ended the command.
 *
 * @module
 */

/** Linux signal numbers by name (signal(7), x86/ARM numbering). */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** The client's exit code for its own failures (refused, unauthorized, connection lost). */
export const OWN_FAILURE = 255;

/** The exit code when the remote command timed out (as timeout(1)). */
export const TIMED_OUT = 124;

/**
 * Maps an `exit` frame to the client's exit code.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./cmd_exit.ts";
 * if (exitCodeFor({ code: null, signal: "SIGKILL", timed_out: false }) !== 137) throw new Error();
 * ```
 *
 * @param exit the frame's `code`, `signal` and `timed_out`
 * @returns 124 when timed out, else 128+n for signal n, else the code (0–255)
 */
export function exitCodeFor(exit: Record<string, unknown>): number {
  if (exit.timed_out === true) return TIMED_OUT;
  if (typeof exit.signal === "string") {
    const number = SIGNAL_NUMBERS[exit.signal] ??
      Number(/^SIGRTMIN\+(\d+)$/.exec(exit.signal)?.[1]) + 34;
    return Number.isInteger(number) && number > 0 && number < 128 ? 128 + number : OWN_FAILURE;
  }
  if (typeof exit.code === "number" && Number.isInteger(exit.code)) return exit.code & 0xff;
  return OWN_FAILURE;
}
