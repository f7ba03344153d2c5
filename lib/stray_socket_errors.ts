/**
 * A guard for socket errors that no one is listening to any more. Some
 * libraries built on `node:net` (the NATS client among them) remove their
 * listeners from a socket before it is quite done, so a reset that arrives
 * late is emitted with no `error` listener and would end the whole process.
 * A peer that resets must never stop a daemon: such errors are reported to
 * whoever installed the guard and otherwise ignored. Every other uncaught
 * error still ends the process as before.
 *
 * @module
 */

// errno codes that only ever mean "the other side or the network went away".
const DISCONNECTS = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

const reporters = new Set<(error: Error) => void>();
let installed = false;

/**
 * Whether an uncaught error is a stray socket disconnect: a system error
 * with one of the disconnect codes from a socket call.
 * @param error what was thrown
 * @returns true when it is safe to ignore
 */
export function isStraySocketError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as Error & { code?: unknown; syscall?: unknown };
  return typeof code === "string" && DISCONNECTS.has(code) &&
    (syscall === undefined || ["read", "write", "connect", "writev"].includes(String(syscall)));
}

/**
 * Keeps stray socket disconnects from ending the process (see the module
 * text); `report` hears of each. Installing twice installs one guard.
 *
 * @example
 * ```ts
 * import { ignoreStraySocketErrors } from "./stray_socket_errors.ts";
 * const stop = ignoreStraySocketErrors((error) => console.debug(error.message));
 * stop();
 * ```
 *
 * @param report called with each error that was ignored
 * @returns a function that stops reporting to `report`
 */
export function ignoreStraySocketErrors(report: (error: Error) => void): () => void {
  reporters.add(report);
  if (!installed) {
    installed = true;
    globalThis.addEventListener("error", (event: ErrorEvent) => {
      if (!isStraySocketError(event.error)) return;
      event.preventDefault();
      for (const reporter of reporters) reporter(event.error);
    });
  }
  return () => {
    reporters.delete(report);
  };
}
