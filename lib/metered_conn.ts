/**
 * A TCP connection wrapper that counts bytes both ways (for logs, metrics and
 * idle detection) and closes idempotently.
 *
 * @module
 */

import { type DirectSend, directSocket } from "./direct_send.ts";
import type { Connection } from "./service.ts";

const DONE: Promise<void> = Promise.resolve();

/** The parts of a Deno connection the wrapper uses. */
export type RawConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close" | "localAddr">;

/** How a {@linkcode MeteredConn} is made, beyond the connection and the peer's address. */
export interface MeteredConnOptions {
  /** The local address to report @default {conn.localAddr} */
  localAddr?: Deno.NetAddr;
  /**
   * Send at once with `send(2)` on the connection's descriptor when the
   * socket takes the bytes (lib/direct_send.ts). Only for a caller that
   * owns the raw connection and closes it through this wrapper alone: a
   * descriptor closed behind its back may belong to another socket by the
   * next write. @default {false}
   */
  direct?: boolean;
}

/** A counted, idempotently closable connection handed to stream handlers. */
export class MeteredConn implements Connection {
  #conn: RawConn;
  #closed = false;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array>;
  /** A plain TCP socket's send-now path (lib/direct_send.ts), when asked for; cleared on close. */
  #direct?: DirectSend;
  /** Async writes not yet settled: direct sends wait for them (order). */
  #writing = 0;
  /** Settles after the last async write queued so far (never rejects). */
  #tail?: Promise<void>;
  /** Bytes read from the peer so far. */
  bytesIn = 0;
  /** Bytes written to the peer so far. */
  bytesOut = 0;
  /** The peer's address, normalised. */
  readonly remoteAddr: Deno.NetAddr;
  /** The local address. */
  readonly localAddr: Deno.NetAddr;

  /**
   * @param conn the accepted connection
   * @param remoteAddr the peer's normalised address (behind a load balancer: the client's)
   * @param local the local address to report @default {conn.localAddr}
   */
  constructor(conn: RawConn, remoteAddr: Deno.NetAddr, local?: Deno.NetAddr);
  /**
   * @param conn the accepted connection
   * @param remoteAddr the peer's normalised address (behind a load balancer: the client's)
   * @param options the local address, and whether to send directly
   */
  constructor(conn: RawConn, remoteAddr: Deno.NetAddr, options: MeteredConnOptions);
  constructor(
    conn: RawConn,
    remoteAddr: Deno.NetAddr,
    local?: Deno.NetAddr | MeteredConnOptions,
  ) {
    const options: MeteredConnOptions = local === undefined
      ? {}
      : "transport" in local
      ? { localAddr: local as Deno.NetAddr }
      : local;
    this.#conn = conn;
    this.remoteAddr = remoteAddr;
    this.localAddr = options.localAddr ?? conn.localAddr as Deno.NetAddr;
    if (options.direct === true) this.#direct = directSocket(conn);
  }

  /** Whether {@linkcode MeteredConn.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // Counting in a `then` callback instead of an async wrapper: no generator
  // and no extra promise per connection waiting in read (idle connections pin
  // less memory) and fewer microtask hops per read (measured in
  // bench/history/echo.md). One bound function per connection, made once.
  #countIn = (n: number | null): number | null => {
    if (n !== null) this.bytesIn += n;
    return n;
  };

  /**
   * Reads into `p`.
   * @param p the buffer to fill
   * @returns the count, or null at end of stream
   * @throws {Deno.errors.ConnectionReset} and other I/O errors from the socket
   */
  read(p: Uint8Array): Promise<number | null> {
    return this.#conn.read(p).then(this.#countIn);
  }

  /**
   * Writes some of `p`.
   * @param p the bytes
   * @returns the count written
   * @throws {Deno.errors.BrokenPipe} and other I/O errors from the socket
   */
  write(p: Uint8Array): Promise<number> {
    const sent = this.#sendNow(p);
    if (sent > 0) return Promise.resolve(sent);
    return this.#write(p);
  }

  /**
   * Writes all of `p`, looping on short writes. Sent at once when the
   * socket takes it all (no async op, no reactor trip); the rest, or all
   * of it without a direct path, by the runtime's async write.
   * @param p the bytes
   * @throws {Deno.errors.BrokenPipe} and other I/O errors from the socket
   */
  writeAll(p: Uint8Array): Promise<void> {
    if (p.length === 0) return DONE;
    const sent = this.#sendNow(p);
    if (sent === p.length) return DONE;
    return this.#writeAll(sent === 0 ? p : p.subarray(sent));
  }

  /**
   * Writes what the socket takes right now, without waiting (a connection
   * made with `direct: true`, under `deno run` with FFI; elsewhere always
   * 0), counted.
   * @param p the bytes
   * @returns how many went: 0 when the socket would block, failed, an async
   *   write is pending, the connection is closed or there is no direct path
   */
  writeNow(p: Uint8Array): number {
    return this.#sendNow(p);
  }

  /** Sends what the socket takes right now (0 without a direct path, closed, or behind an async write). */
  #sendNow(p: Uint8Array): number {
    if (this.#direct === undefined || this.#closed || this.#writing > 0) return 0;
    const n = this.#direct(p);
    this.bytesOut += n;
    return n;
  }

  #write(p: Uint8Array): Promise<number> {
    return this.#queued(async () => {
      const n = await this.#conn.write(p);
      this.bytesOut += n;
      return n;
    });
  }

  #writeAll(p: Uint8Array): Promise<void> {
    return this.#queued(async () => {
      // One write almost always takes it all: no view is made unless it is short.
      let written = await this.#conn.write(p);
      this.bytesOut += written;
      while (written < p.length) {
        const n = await this.#conn.write(p.subarray(written));
        this.bytesOut += n;
        written += n;
      }
    });
  }

  /**
   * Runs async writes one after another, in call order, each after the one
   * before has settled (failed or not): a later write never overtakes the
   * rest of a short one, and no direct send goes out while one is pending.
   */
  #queued<T>(write: () => Promise<T>): Promise<T> {
    this.#writing++;
    const before = this.#tail;
    const run = before === undefined ? write() : before.then(write);
    const settled = run.then(this.#settled, this.#settled);
    this.#tail = settled;
    return run;
  }

  #settled = (): void => {
    if (--this.#writing === 0) this.#tail = undefined;
  };

  /**
   * Half-closes the connection (the peer reads end of stream).
   * @throws {Deno.errors.NotConnected} when the peer is gone
   */
  async closeWrite(): Promise<void> {
    if (!this.#closed) await this.#conn.closeWrite();
  }

  /** The incoming bytes as a byte stream, counted. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 65536,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        const view = request.view as Uint8Array<ArrayBuffer>;
        const n = await this.read(view);
        if (n === null) {
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      },
    });
    return this.#readable;
  }

  /** The outgoing bytes as a stream, counted; closing it does not close the connection. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream({ write: (chunk) => this.writeAll(chunk) });
    return this.#writable;
  }

  /** Closes the connection; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The descriptor may be reused by the next socket opened.
    this.#direct = undefined;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}
