/**
 * Relaying one TCP connection to another, both ways at once: each direction
 * reads a chunk and writes it whole before reading the next, so a side that
 * does not read stops the other from sending (back-pressure; the daemon
 * holds at most one buffer per direction). An end of stream is passed on as
 * a half-close; the relay is over when both directions have ended, or at
 * the first error on either side.
 *
 * @module
 */

import { AdaptiveBuffer } from "../../lib/adaptive_buffer.ts";
import type { Connection } from "../../lib/service.ts";
import { writeAll } from "../../lib/write_all.ts";

/** Which side an error came from. */
export type RelaySide = "client" | "target";

/** How a relay ended. */
export interface RelayEnd {
  /** Both directions reached their end of stream and passed it on. */
  complete: boolean;
  /** When not complete: the side whose read or write failed first. */
  failed?: RelaySide;
  /** The first error. */
  error?: unknown;
}

/** What the relay needs from the connection's context. */
export interface RelayHooks {
  /** Marked true while one direction has ended and the other still runs. */
  setBusy(busy: boolean): void;
  /** Aborted when the supervisor closes the client connection. */
  closing: AbortSignal;
}

class SideError extends Error {
  constructor(readonly side: RelaySide, override readonly cause: unknown) {
    super(`${side} failed`);
  }
}

async function pump(
  read: (p: Uint8Array) => Promise<number | null>,
  write: (p: Uint8Array) => Promise<void>,
  closeWrite: () => Promise<void>,
  sides: { from: RelaySide; to: RelaySide },
): Promise<void> {
  const buffer = new AdaptiveBuffer();
  for (;;) {
    let n: number | null;
    try {
      n = await read(buffer.bytes);
    } catch (error) {
      throw new SideError(sides.from, error);
    }
    if (n === null) break;
    try {
      await write(buffer.filled(n));
    } catch (error) {
      throw new SideError(sides.to, error);
    }
  }
  try {
    await closeWrite();
  } catch (error) {
    throw new SideError(sides.to, error);
  }
}

/**
 * Relays `client` and `target` until both directions end or one fails.
 * The target is closed when it returns; the client is the caller's.
 * @param client the accepted connection
 * @param target the connection to the target (owned from now on)
 * @param hooks busy marking and the client's closing signal
 * @returns how it ended
 */
export async function relay(
  client: Connection,
  target: Deno.TcpConn,
  hooks: RelayHooks,
): Promise<RelayEnd> {
  const closeTarget = (): void => {
    try {
      target.close();
    } catch {
      // Already closed.
    }
  };
  // A direction blocked writing to a target that does not read would not
  // notice the supervisor closing the client: closing the target wakes it.
  hooks.closing.addEventListener("abort", closeTarget, { once: true });
  const up = pump(
    (p) => client.read(p),
    (p) => writeAll(target, p),
    () => target.closeWrite(),
    { from: "client", to: "target" },
  );
  const down = pump(
    (p) => target.read(p),
    (p) => client.writeAll(p),
    () => client.closeWrite(),
    { from: "target", to: "client" },
  );
  try {
    return await new Promise<RelayEnd>((resolve) => {
      let ended = 0;
      let settled = false;
      const done = (): void => {
        if (settled) return;
        if (++ended < 2) return hooks.setBusy(true); // one way is over; the answer may still come
        settled = true;
        resolve({ complete: true });
      };
      const failed = (error: unknown): void => {
        if (settled) return;
        settled = true;
        const side = error instanceof SideError ? error.side : "target";
        resolve({
          complete: false,
          failed: side,
          error: error instanceof SideError ? error.cause : error,
        });
      };
      up.then(done, failed);
      down.then(done, failed);
    });
  } finally {
    hooks.closing.removeEventListener("abort", closeTarget);
    hooks.setBusy(false);
    // Ends the other direction too: its target read or write fails, and its
    // client side fails once the caller closes the connection.
    closeTarget();
  }
}
