/**
 * Bridges between Deno-style connections (`read(p)` / `write(p)`) and Node
 * duplex streams, in both directions: {@linkcode NodeStreamConn} lets the
 * daemon and the clients treat a `node:tls` or `node:net` socket like a
 * `Deno.Conn`, and {@linkcode connDuplex} lets `node:tls` run over a
 * connection the daemon accepted itself (after a PROXY header, say).
 *
 * `node:tls` is used because it can swap certificates without closing the
 * listening socket and accepts the self-signed certificates `openssl req
 * -x509` makes; `node:net` because it is how Deno adopts an inherited socket.
 *
 * @module
 */

import { Duplex } from "node:stream";
import type { RawConn } from "./metered_conn.ts";
import { writeAll } from "./write_all.ts";

/** The parts of a `net.Socket` (or `tls.TLSSocket`) the adapter uses when present. */
export interface NodeSocketLike extends Duplex {
  /** The peer's address. */
  readonly remoteAddress?: string;
  /** The peer's port. */
  readonly remotePort?: number;
  /** The local address. */
  readonly localAddress?: string;
  /** The local port. */
  readonly localPort?: number;
  /** Disables Nagle's algorithm. */
  setNoDelay?(noDelay?: boolean): unknown;
  /** Enables TCP keep-alive. */
  setKeepAlive?(enable?: boolean): unknown;
}

/** Addresses a {@linkcode NodeStreamConn} reports instead of the socket's own. */
export interface NodeStreamConnOptions {
  /** The peer. @default {the socket's remoteAddress/remotePort} */
  remoteAddr?: Deno.NetAddr;
  /** The local end. @default {the socket's localAddress/localPort} */
  localAddr?: Deno.NetAddr;
}

/**
 * Turns a Node stream error into the `Deno.errors` class the daemon's
 * classification (`isDisconnect`) knows.
 * @param error what the stream emitted
 * @returns an equivalent Deno error, or the error itself
 */
export function toDenoError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "ECONNRESET":
      return new Deno.errors.ConnectionReset(message);
    case "EPIPE":
    case "ERR_STREAM_WRITE_AFTER_END":
    case "ERR_STREAM_DESTROYED":
      return new Deno.errors.BrokenPipe(message);
    case "ECONNABORTED":
      return new Deno.errors.ConnectionAborted(message);
    case "ETIMEDOUT":
      return new Deno.errors.TimedOut(message);
    case "ENOTCONN":
      return new Deno.errors.NotConnected(message);
    case "ECONNREFUSED":
      return new Deno.errors.ConnectionRefused(message);
    default:
      return error;
  }
}

function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/**
 * A Node duplex socket with the shape of a `Deno.TcpConn`: `read` into a
 * caller's buffer, `write` resolving once the bytes are taken (so the caller
 * may reuse its buffer), `closeWrite` as a half-close, idempotent `close`.
 */
export class NodeStreamConn {
  #socket: NodeSocketLike;
  #pending: Uint8Array | null = null;
  #ended = false;
  #error: unknown = undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  // Writes waiting for their callback; failed at once when the socket goes,
  // whether or not the runtime still calls them back.
  #writes = new Set<(error: unknown) => void>();
  /** The peer's address. */
  readonly remoteAddr: Deno.NetAddr;
  /** The local address. */
  readonly localAddr: Deno.NetAddr;

  /**
   * @param socket a connected Node socket (its reading is taken over)
   * @param options addresses to report instead of the socket's own
   */
  constructor(socket: NodeSocketLike, options: NodeStreamConnOptions = {}) {
    this.#socket = socket;
    this.remoteAddr = options.remoteAddr ?? netAddr(socket.remoteAddress, socket.remotePort);
    this.localAddr = options.localAddr ?? netAddr(socket.localAddress, socket.localPort);
    const wake = (): void => {
      const waiter = this.#wake;
      this.#wake = undefined;
      waiter?.();
    };
    socket.on("readable", wake);
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (error) => {
      this.#error ??= error;
      wake();
    });
    socket.on("close", () => {
      wake();
      this.#failWrites(new Deno.errors.BrokenPipe("The connection was closed"));
    });
  }

  #failWrites(error: unknown): void {
    const writes = [...this.#writes];
    this.#writes.clear();
    for (const fail of writes) fail(error);
  }

  /** The wrapped socket. */
  get socket(): NodeSocketLike {
    return this.#socket;
  }

  /**
   * Reads into `p`.
   * @param p the buffer to fill
   * @returns the count, or null at end of stream
   * @throws {Deno.errors.BadResource} after {@linkcode NodeStreamConn.close}
   * @throws {Deno.errors.ConnectionReset} and other errors of the socket
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("The connection is closed");
      const pending = this.#pending;
      if (pending !== null) {
        const n = Math.min(p.length, pending.length);
        p.set(n === pending.length ? pending : pending.subarray(0, n));
        this.#pending = n === pending.length ? null : pending.subarray(n);
        return n;
      }
      const chunk = this.#socket.read() as Uint8Array | null;
      if (chunk !== null && chunk.length > 0) {
        this.#pending = chunk;
        continue;
      }
      if (this.#error !== undefined) throw toDenoError(this.#error);
      if (this.#ended) return null;
      if (this.#socket.destroyed) {
        throw new Deno.errors.ConnectionReset("The connection was closed before its end");
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /**
   * Writes `p`; resolves once the socket has taken all of it.
   * @param p the bytes
   * @returns `p.length`
   * @throws {Deno.errors.BadResource} after {@linkcode NodeStreamConn.close}
   * @throws {Deno.errors.BrokenPipe} and other errors of the socket
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("The connection is closed"));
    }
    if (this.#socket.destroyed || this.#socket.writableEnded) {
      return Promise.reject(new Deno.errors.BrokenPipe("The connection is closed for writing"));
    }
    if (p.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      const fail = (error: unknown): void => reject(error);
      this.#writes.add(fail);
      this.#socket.write(p, (error) => {
        if (!this.#writes.delete(fail)) return;
        if (error) reject(toDenoError(error));
        else resolve(p.length);
      });
    });
  }

  /**
   * Half-closes: the peer reads end of stream; reading stays possible.
   * @throws {Deno.errors.NotConnected} when the socket is already gone
   */
  closeWrite(): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.NotConnected("The connection is closed"));
    }
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  /** Disables Nagle's algorithm when the socket has one. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay?.(noDelay);
  }

  /** Enables TCP keep-alive when the socket has it. */
  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive?.(keepAlive);
  }

  /** Closes the connection at once; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Pending writes fail as a closed resource, before destroy reports its own errors.
    this.#failWrites(new Deno.errors.BadResource("The connection is closed"));
    this.#socket.destroy();
    const waiter = this.#wake;
    this.#wake = undefined;
    waiter?.();
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A Node duplex stream over a Deno-style connection, for `node:tls` to run
 * on: reads are copied out of one reused buffer, writes wait for the
 * connection, `end()` half-closes and `destroy()` closes it.
 * @param conn the connection (owned by the stream from now on)
 * @returns the stream
 */
export function connDuplex(conn: RawConn): Duplex {
  const buffer = new Uint8Array(16384);
  return new Duplex({
    allowHalfOpen: true,
    read(): void {
      conn.read(buffer).then(
        (n) => this.push(n === null ? null : buffer.slice(0, n)),
        (error) => this.destroy(error as Error),
      );
    },
    write(chunk: Uint8Array, _encoding, callback): void {
      writeAll(conn, chunk).then(() => callback(), (error) => callback(error as Error));
    },
    final(callback): void {
      conn.closeWrite().then(() => callback(), () => callback());
    },
    destroy(error, callback): void {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      callback(error);
    },
  });
}
