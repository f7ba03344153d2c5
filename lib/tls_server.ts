/**
 * The server side of a TLS handshake on a connection the daemon accepted
 * itself (so a PROXY header can come first): `node:tls` over the
 * connection, bounded in time, with the failure told apart — a client that
 * speaks plain TCP to a TLS port, a handshake that fails, one that takes
 * too long, a client that leaves before saying anything.
 *
 * @module
 */

import { type SecureContext, TLSSocket } from "node:tls";
import type { RawConn } from "./metered_conn.ts";
import { connDuplex, NodeStreamConn } from "./node_stream_conn.ts";
import { PrefixedConn } from "./prefixed_conn.ts";

/** Why a handshake did not complete. */
export type TlsFailureReason = "plain" | "handshake" | "timeout" | "closed";

/** A TLS handshake did not complete; `reason` says how. */
export class TlsHandshakeError extends Error {
  /** `plain`: the client did not start with a TLS record; `closed`: it left first. */
  readonly reason: TlsFailureReason;

  /**
   * @param reason how it failed
   * @param message what happened
   */
  constructor(reason: TlsFailureReason, message: string) {
    super(message);
    this.name = "TlsHandshakeError";
    this.reason = reason;
  }
}

/** Options for {@linkcode acceptTls}. */
export interface AcceptTlsOptions {
  /** The certificate and key to present. */
  context: SecureContext;
  /** The whole handshake must finish within this many ms. */
  timeoutMs: number;
  /** The peer to report on the secure connection. */
  remoteAddr: Deno.NetAddr;
  /** The local address to report on the secure connection. */
  localAddr: Deno.NetAddr;
}

// Every TLS connection starts with a handshake record (content type 22).
const HANDSHAKE_RECORD = 0x16;
const SNIFF = 5;

/**
 * Runs the server side of a TLS handshake over `conn`.
 * @param conn the accepted connection (owned from now on: closed on failure)
 * @param options context, time limit and the addresses to report
 * @returns the secure connection, whose reads and writes are plaintext
 * @throws {TlsHandshakeError} when the handshake does not complete
 */
export async function acceptTls(conn: RawConn, options: AcceptTlsOptions): Promise<NodeStreamConn> {
  let timedOut = false;
  let socket: TLSSocket | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    socket?.destroy();
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, options.timeoutMs);
  try {
    // A first look, to tell a plain-TCP client from a failed handshake.
    const head = new Uint8Array(SNIFF);
    let n: number | null;
    try {
      n = await conn.read(head);
    } catch (error) {
      if (timedOut) throw timeoutError(options.timeoutMs);
      throw new TlsHandshakeError("closed", `Client left before the handshake: ${String(error)}`);
    }
    if (n === null || n === 0) {
      throw new TlsHandshakeError("closed", "Client closed the connection before the handshake");
    }
    if (head[0] !== HANDSHAKE_RECORD) {
      throw new TlsHandshakeError("plain", "Client did not start a TLS handshake (plain TCP?)");
    }
    const tlsSocket = new TLSSocket(connDuplex(new PrefixedConn(conn, head.subarray(0, n))), {
      isServer: true,
      secureContext: options.context,
    });
    socket = tlsSocket;
    await new Promise<void>((resolve, reject) => {
      const fail = (error?: Error): void => {
        reject(
          timedOut ? timeoutError(options.timeoutMs) : new TlsHandshakeError(
            "handshake",
            error ? `TLS handshake failed: ${error.message}` : "TLS handshake failed: closed",
          ),
        );
      };
      tlsSocket.once("secure", () => resolve());
      tlsSocket.once("error", fail);
      tlsSocket.once("close", () => fail());
    });
    if (timedOut) throw timeoutError(options.timeoutMs);
    // Later errors are the secure connection's to report.
    tlsSocket.on("error", () => {});
    return new NodeStreamConn(tlsSocket, {
      remoteAddr: options.remoteAddr,
      localAddr: options.localAddr,
    });
  } catch (error) {
    socket?.destroy();
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function timeoutError(ms: number): TlsHandshakeError {
  return new TlsHandshakeError("timeout", `TLS handshake not finished within ${ms}ms`);
}
