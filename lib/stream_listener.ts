/**
 * What a TCP listener accepts from: a `Deno.TcpListener` it bound itself, or
 * a socket systemd passed (adopted through `node:net`). Both give
 * connections with the `Deno.TcpConn` calls the listener uses.
 *
 * @module
 */

import type { RawConn } from "./metered_conn.ts";

/** An accepted connection, as the TCP listener uses it. */
export type AcceptedConn = RawConn & {
  /** The peer's address. */
  readonly remoteAddr: Deno.Addr;
  /** Disables Nagle's algorithm. */
  setNoDelay(noDelay?: boolean): void;
  /** Enables TCP keep-alive. */
  setKeepAlive(keepAlive?: boolean): void;
};

/** A listening socket: `Deno.TcpListener` has this shape. */
export interface StreamListener {
  /** The bound address. */
  readonly addr: Deno.Addr;
  /**
   * Waits for the next connection.
   * @throws {Deno.errors.BadResource} once closed
   */
  accept(): Promise<AcceptedConn>;
  /** Stops accepting (for an adopted socket: without closing the descriptor). */
  close(): void;
}
