/**
 * Marks inherited descriptors close-on-exec, as sd_listen_fds(3) does for
 * the sockets systemd passes: they arrive without the flag, and every
 * command cmd or exec runs would otherwise inherit them (and keep a port
 * open after the daemon is gone). Deno has no fcntl, so this calls libc's
 * through FFI (`--allow-ffi`); where that is not possible it says so and
 * the caller decides.
 *
 * @module
 */

import { SharedLibc } from "./libc_loader.ts";

const F_SETFD = 2;
const F_GETFD = 1;
const FD_CLOEXEC = 1;
// Opened around each call (lib/libc_loader.ts: no prompt, glibc or musl;
// plain calls, so the offline executable's FFI shim does too).
const FCNTL = new SharedLibc(
  { fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" } },
  { pointers: false },
);

/**
 * Sets FD_CLOEXEC on each descriptor.
 * @param fds the descriptors
 * @returns undefined when done, else why it could not be done
 */
export function setCloseOnExec(fds: readonly number[]): string | undefined {
  return changeCloseOnExec(fds, { on: true });
}

/**
 * Clears FD_CLOEXEC on each descriptor (the supervisor hands systemd's
 * sockets to its workers that way, for the spawn only).
 * @param fds the descriptors
 * @returns undefined when done, else why it could not be done
 */
export function clearCloseOnExec(fds: readonly number[]): string | undefined {
  return changeCloseOnExec(fds, { on: false });
}

function changeCloseOnExec(fds: readonly number[], { on }: { on: boolean }): string | undefined {
  if (fds.length === 0) return undefined;
  const library = FCNTL.acquire();
  if (typeof library === "string") return `cannot call fcntl: ${library}`;
  try {
    const failed: number[] = [];
    for (const fd of fds) {
      const flags = library.symbols.fcntl(fd, F_GETFD, 0);
      const wanted = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
      if (flags < 0 || library.symbols.fcntl(fd, F_SETFD, wanted) < 0) {
        failed.push(fd);
      }
    }
    return failed.length === 0 ? undefined : `fcntl failed on descriptor(s) ${failed.join(", ")}`;
  } finally {
    FCNTL.release();
  }
}

/**
 * Whether a descriptor of this process has FD_CLOEXEC, read from
 * /proc/self/fdinfo (for tests and diagnostics).
 * @param fd the descriptor
 * @returns true or false, or undefined when the descriptor is not open
 */
export function isCloseOnExec(fd: number): boolean | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`);
  } catch {
    return undefined;
  }
  const flags = /^flags:\s*([0-7]+)/m.exec(text)?.[1];
  // O_CLOEXEC as fdinfo reports it.
  return flags === undefined ? undefined : (parseInt(flags, 8) & 0o2000000) !== 0;
}
