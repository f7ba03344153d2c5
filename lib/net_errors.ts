/**
 * Classification of socket errors: which mean "the peer went away" (normal
 * life of a server, logged at debug) and which are worth a warning.
 *
 * @module
 */

/**
 * Whether an error means the peer closed, reset or vanished, or the socket
 * was closed locally while an operation was pending.
 * @param error anything thrown by a socket operation
 * @returns true for resets, broken pipes, aborts and the like
 */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}

/**
 * Whether an `accept()` failure concerns only one connection that died
 * before it was accepted (Deno 2.9.6 reports such a reset as NotConnected),
 * so the next accept can go ahead at once.
 * @param error what `accept()` threw
 * @returns true when no back-off is needed
 */
export function isTransientAcceptError(error: unknown): boolean {
  return error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * A short description of an error for a log line (name and message, no stack).
 * @param error anything thrown
 * @returns e.g. `ConnectionReset: Connection reset by peer (os error 104)`
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
