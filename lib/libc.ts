/**
 * The C library through Deno's FFI, for what Deno has no API for: spawning
 * with posix_spawn(3) (a new session without an extra exec), pipes, pidfds
 * and epoll. Opened once, when this module loads, through the shared
 * loader (lib/libc_loader.ts). A runtime without `Deno.dlopen`, without
 * pointers or without nonblocking calls (the offline executable, built by
 * bun), without FFI permission, or a C library that lacks a symbol (glibc
 * only: the spawn structures are sized after glibc's), gets `undefined`,
 * and callers take their portable path.
 *
 * @module
 */

import { type Libc, SharedLibc } from "./libc_loader.ts";

const SYMBOLS = {
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawn_nonblocking: {
    name: "posix_spawn",
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pidfd_open: { parameters: ["i32", "u32"], result: "i32" },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_pwait: {
    parameters: ["i32", "buffer", "i32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
} as const;

/** The C functions this program calls, as Deno's FFI binds them. */
export type LibC = Libc<typeof SYMBOLS>["symbols"];

/** The C library and a way to read `errno` of the calling (JS) thread. */
export interface LibCHandle {
  /** The bound functions. */
  symbols: LibC;
  /** `errno` as the last failing call on this thread left it. */
  errno(): number;
}

let disabled = false;

/**
 * Gives the FFI paths libc, opened once when this module loads (a library
 * opened later, inside a test, would count as a leak to Deno's sanitizer).
 * @returns the handle, or undefined when this runtime or libc cannot do it
 *   (no FFI, no nonblocking calls, a missing symbol) or it was disabled
 */
export function libc(): LibCHandle | undefined {
  return disabled ? undefined : opened ?? undefined;
}

/**
 * Turns the FFI paths off (or on again) for this process: `libc()` then
 * returns undefined and callers take their portable path. For tests, and
 * for `SWITCHBOARD_SPAWN=portable`.
 * @param off true to disable
 */
export function disableLibC(off: boolean): void {
  disabled = off;
}

function open(): LibCHandle | null {
  try {
    const asked = Deno.permissions.querySync({ name: "env", variable: "SWITCHBOARD_SPAWN" });
    if (asked.state === "granted" && Deno.env.get("SWITCHBOARD_SPAWN") === "portable") return null;
  } catch {
    return null;
  }
  // Kept for the life of the process (lib/libc_loader.ts: no prompt, no FFI
  // in the offline executable). glibc only: native_spawn.ts sizes its
  // opaque types and flags (POSIX_SPAWN_SETSID) after glibc's.
  const library = new SharedLibc(SYMBOLS, { names: ["libc.so.6"] }).acquire();
  return typeof library === "string" ? null : library;
}

const opened: LibCHandle | null = open();
