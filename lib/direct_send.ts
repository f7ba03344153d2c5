/**
 * Sending on a TCP connection at once, when the socket takes the bytes: a
 * `send(2)` through libc (Deno FFI) on the connection's descriptor, without
 * an async op, a promise or a trip through the runtime's reactor. It only
 * ever writes what the kernel accepts right now (`MSG_DONTWAIT`); whatever
 * it cannot send (a full buffer, an error, no FFI) is left to the ordinary
 * async write, which waits or reports the error as usual.
 *
 * Available under `deno run` with FFI permission on Linux; elsewhere (the
 * offline executable, whose connections carry no descriptor, or without
 * `--allow-ffi`) {@linkcode directSocket} returns undefined and callers
 * keep the portable path.
 *
 * `SWITCHBOARD_TCP=portable` in the environment turns it off for the
 * process.
 *
 * @module
 */

import { SharedLibc } from "./libc_loader.ts";

const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const FLAGS = MSG_DONTWAIT | MSG_NOSIGNAL;

type Send = (fd: number, bytes: Uint8Array, length: number, flags: number) => number | bigint;

let fdSymbol: symbol | undefined;

function loadSend(): Send | null {
  try {
    if (Deno.env.get("SWITCHBOARD_TCP") === "portable") return null;
  } catch {
    // No env permission: not forced.
  }
  // lib/libc_loader.ts: never a permission prompt, glibc or musl.
  const library = new SharedLibc({
    send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  }).acquire();
  return typeof library === "string" ? null : library.symbols.send as unknown as Send;
}

// Loaded with the module, not on first use: the library stays open for the
// life of the process (and the test sanitizers see no library opened mid-test).
const send: Send | null = loadSend();

/**
 * Whether this process has the direct path at all (FFI, libc, and not
 * `SWITCHBOARD_TCP=portable`, read when the module loads).
 * @returns true when {@linkcode directSocket} can return a sender
 */
export function directSendAvailable(): boolean {
  return send !== null;
}

/** Deno keeps a TCP connection's descriptor under an internal symbol. */
function findFdSymbol(conn: object): symbol | null {
  for (let o: object | null = conn; o !== null; o = Object.getPrototypeOf(o)) {
    for (const symbol of Object.getOwnPropertySymbols(o)) {
      if (symbol.description === "Deno.internal.fd") return symbol;
    }
  }
  return null;
}

/** Sends what the kernel takes now; see {@linkcode directSocket}. */
export type DirectSend = (bytes: Uint8Array) => number;

/**
 * A direct sender for a plain `Deno.TcpConn` (never a TLS connection or a
 * wrapper: their bytes are not the socket's bytes).
 *
 * The caller must stop using the sender once the connection is closed (the
 * descriptor may then belong to another socket) and must not use it while
 * an async write on the connection is still pending (bytes would overtake
 * it).
 *
 * @example
 * ```ts
 * import { directSocket } from "./direct_send.ts";
 * // Not a Deno connection: no direct path, and no error.
 * if (directSocket({}) !== undefined) throw new Error("a plain object has no socket");
 * ```
 *
 * @param conn the accepted connection
 * @returns a function sending `bytes` at once: how many bytes went (0 to
 *   bytes.length; 0 also when the socket would block or failed — the async
 *   write then finds out why); or undefined when there is no direct path.
 *   Never throws.
 */
export function directSocket(conn: object): DirectSend | undefined {
  // Deno exposes no TcpConn class to test against: its own class name it is
  // (a TlsConn, whose socket carries ciphertext, must never get here).
  if (conn.constructor?.name !== "TcpConn") return undefined;
  // Remembered once found (not when missing: the offline executable's
  // adapter has a TcpConn class of its own, without one).
  const symbol = fdSymbol ?? findFdSymbol(conn);
  if (symbol === null) return undefined;
  fdSymbol = symbol;
  const fd = (conn as unknown as Record<symbol, unknown>)[symbol];
  if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0) return undefined;
  if (send === null) return undefined;
  const call = send;
  return (bytes) => {
    if (bytes.length === 0) return 0;
    const n = Number(call(fd, bytes, bytes.length, FLAGS));
    return n > 0 ? n : 0;
  };
}
