/**
 * A connection wrapper that can notice the peer going away while nobody is
 * reading: {@linkcode LookaheadConnection.watch} reads ahead into a small
 * buffer, and later reads are served from it first, so no byte is lost or
 * reordered (a pipelined next request stays intact).
 *
 * TCP only tells a silent peer's departure to a reader (end of stream or a
 * reset). A service that runs long work per request (cmd) watches this way
 * to stop the work when its client disconnects.
 *
 * @module
 */

import type { Connection } from "../../lib/service.ts";

/** What {@linkcode LookaheadConnection.watch} saw. */
export type WatchResult = "data" | "closed" | "full";

/** The default look-ahead capacity (16 KiB). */
export const DEFAULT_LOOKAHEAD = 16384;

const EMPTY = new Uint8Array(0);
const INITIAL_LOOKAHEAD = 1024;

/**
 * Wraps a {@linkcode Connection}; every underlying read goes through it, one
 * at a time, so `watch` and `read` may be used concurrently.
 */
export class LookaheadConnection implements Connection {
  #conn: Connection;
  #capacity: number;
  // Allocated on the first watch: a connection that is never watched pays nothing.
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  #eof = false;
  #error: unknown = undefined;
  #pending: Promise<void> | undefined;
  #spaceWaiters: (() => void)[] = [];
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;

  /**
   * @param conn the connection to wrap
   * @param capacity how many bytes `watch` may read ahead
   */
  constructor(conn: Connection, capacity: number = DEFAULT_LOOKAHEAD) {
    this.#conn = conn;
    this.#capacity = capacity;
  }

  /** The peer's address. */
  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr;
  }

  /** The local address. */
  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr;
  }

  /** Whether the peer has closed or the connection failed (seen by a read). */
  get closed(): boolean {
    return this.#eof || this.#error !== undefined;
  }

  /** Whether a read failed (a reset, not an orderly end of stream). */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  /**
   * Reads into `p`: bytes read ahead first, then from the connection.
   * @param p where to put the bytes
   * @returns the count, or null at end of stream
   * @throws {Deno.errors.ConnectionReset} and other socket errors
   */
  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      // Buffered bytes go first, even while a look-ahead read is pending
      // (it fills the free tail; waiting for it could wait forever).
      if (this.#end > this.#start) {
        const n = Math.min(p.length, this.#end - this.#start);
        p.set(this.#buf.subarray(this.#start, this.#start + n));
        this.#start += n;
        if (this.#start === this.#end && !this.#pending) this.#start = this.#end = 0;
        this.#wakeSpaceWaiters();
        return n;
      }
      if (this.#pending) {
        await this.#pending;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#eof) return null;
      let result: number | null = null;
      let failed = false;
      this.#pending = this.#conn.read(p).then(
        (n) => {
          result = n;
          if (n === null) this.#eof = true;
        },
        (error) => {
          failed = true;
          this.#error = error;
        },
      ).finally(() => {
        this.#pending = undefined;
      });
      await this.#pending;
      if (failed) throw this.#error;
      return result;
    }
  }

  /**
   * Reads ahead once: waits for the peer to send something (kept for later
   * reads) or to close.
   * @returns `data` when bytes arrived, `closed` at end of stream or on an
   *   error, `full` when the look-ahead buffer is full (wait for
   *   {@linkcode LookaheadConnection.space}, then watch again)
   */
  async watch(): Promise<WatchResult> {
    while (this.#pending) await this.#pending;
    if (this.closed) return "closed";
    // Small first, grown up to the capacity as bytes pile up: most
    // connections never read ahead more than a frame header, and a 16 KiB
    // store per command is what drove the daemon's major collections.
    if (this.#buf === EMPTY) {
      this.#buf = new Uint8Array(Math.min(this.#capacity, INITIAL_LOOKAHEAD));
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#start > 0 && this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length && this.#buf.length < this.#capacity) {
      const grown = new Uint8Array(Math.min(this.#capacity, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#end));
      this.#buf = grown;
    }
    if (this.#end === this.#buf.length) return "full";
    this.#pending = this.#conn.read(this.#buf.subarray(this.#end)).then(
      (n) => {
        if (n === null) this.#eof = true;
        else this.#end += n;
      },
      (error) => {
        this.#error = error;
      },
    ).finally(() => {
      this.#pending = undefined;
    });
    await this.#pending;
    return this.closed ? "closed" : "data";
  }

  /**
   * Resolves when a read has consumed look-ahead bytes (after `watch`
   * returned `full`).
   * @returns when there is room again
   */
  space(): Promise<void> {
    if (this.#end < this.#capacity || this.#start > 0) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  #wakeSpaceWaiters(): void {
    const waiters = this.#spaceWaiters;
    if (waiters.length === 0) return;
    this.#spaceWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Writes some of `p`.
   * @param p the bytes
   * @returns the count written
   */
  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  /**
   * Writes all of `p`.
   * @param p the bytes
   */
  writeAll(p: Uint8Array): Promise<void> {
    return this.#conn.writeAll(p);
  }

  /** Half-closes the connection. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** The incoming bytes as a stream (through the look-ahead); do not mix with `read`. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      pull: async (controller) => {
        const chunk = new Uint8Array(16384);
        const n = await this.read(chunk);
        if (n === null) controller.close();
        else controller.enqueue(chunk.subarray(0, n));
      },
    });
    return this.#readable;
  }

  /** The outgoing bytes as a stream. */
  get writable(): WritableStream<Uint8Array> {
    return this.#conn.writable;
  }
}
