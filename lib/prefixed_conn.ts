/**
 * A connection whose first reads return bytes already read from it (what a
 * PROXY header or a TLS sniff read beyond what it needed), then the
 * connection's own bytes.
 *
 * @module
 */

import type { RawConn } from "./metered_conn.ts";

/** Replays `prefix`, then reads from the connection. */
export class PrefixedConn implements RawConn {
  #conn: RawConn;
  #prefix: Uint8Array | null;

  /**
   * @param conn the connection
   * @param prefix bytes to return first (may be empty)
   */
  constructor(conn: RawConn, prefix: Uint8Array) {
    this.#conn = conn;
    this.#prefix = prefix.length > 0 ? prefix : null;
  }

  /** The local address. */
  get localAddr(): Deno.Addr {
    return this.#conn.localAddr;
  }

  /**
   * Reads the replayed bytes first, then from the connection.
   * @param p the buffer to fill
   * @returns the count, or null at end of stream
   */
  read(p: Uint8Array): Promise<number | null> {
    const prefix = this.#prefix;
    if (prefix === null || p.length === 0) return this.#conn.read(p);
    const n = Math.min(p.length, prefix.length);
    p.set(prefix.subarray(0, n));
    this.#prefix = n === prefix.length ? null : prefix.subarray(n);
    return Promise.resolve(n);
  }

  /**
   * Writes some of `p` to the connection.
   * @param p the bytes
   * @returns the count written
   */
  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  /** Half-closes the connection. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** Closes the connection. */
  close(): void {
    this.#conn.close();
  }
}
