/**
 * The `chat` verb's connection to a room, over UDP (one datagram per line)
 * or TCP (`\n`-terminated lines). Incoming lines are handed to a callback
 * as they arrive, so the user can type while messages come in.
 *
 * @module
 */

import type { ClientAddress } from "./args.ts";
import { connectTcp } from "./connect.ts";
import type { TlsChoice } from "./tls_client.ts";
import { UdpClient } from "./udp_client.ts";
import { writeAll } from "../lib/write_all.ts";

/** A connection to a chat room. */
export interface ChatLink extends Disposable {
  /** `udp` or `tcp`, for messages. */
  readonly transport: "udp" | "tcp";
  /**
   * Sends one line (without its newline).
   * @throws {Error} when the connection is gone
   */
  send(line: Uint8Array): Promise<void>;
  /** Sends a keep-alive: an empty datagram, or an empty line. */
  keepAlive(): Promise<void>;
  /** Resolves with a reason when the server closes the connection (TCP only). */
  readonly ended: Promise<string>;
  /** Closes the socket; the receive loop ends. */
  close(): void;
}

const LF = 0x0a;
const encoder = new TextEncoder();

/**
 * Joins over UDP: each incoming datagram from the server is one line.
 * @param address the server
 * @param onLine called with each datagram (a fresh copy)
 * @returns the link
 */
export async function openUdpLink(
  address: ClientAddress,
  onLine: (line: Uint8Array) => void,
): Promise<ChatLink> {
  const client = await UdpClient.open(address);
  let closed = false;
  const ended = new Promise<string>(() => {});
  void (async () => {
    while (!closed) {
      let data: Uint8Array | null;
      try {
        data = await client.receive(1000);
      } catch {
        if (closed) return;
        continue; // e.g. ICMP port unreachable reported on the socket: keep listening
      }
      if (data !== null) onLine(data);
    }
  })();
  const close = (): void => {
    closed = true;
    client.close();
  };
  return {
    transport: "udp",
    send: (line) => client.send(line),
    keepAlive: () => client.send(new Uint8Array(0)),
    ended,
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * Joins over TCP: incoming bytes are split into lines (`\r\n` or `\n`).
 * @param address the server
 * @param onLine called with each line, without its newline (a fresh copy)
 * @param tls connect over TLS with these settings
 * @returns the link, once connected
 * @throws {ConnectError} naming the address and why (TLS problems included)
 */
export async function openTcpLink(
  address: ClientAddress,
  onLine: (line: Uint8Array) => void,
  tls?: TlsChoice,
): Promise<ChatLink> {
  const conn = await connectTcp(address, { tls });
  let closed = false;
  const ended = (async (): Promise<string> => {
    const buffer = new Uint8Array(65536);
    let pending = new Uint8Array(0);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        const joined = new Uint8Array(pending.length + n);
        joined.set(pending);
        joined.set(buffer.subarray(0, n), pending.length);
        let start = 0;
        for (let i = joined.indexOf(LF); i >= 0; i = joined.indexOf(LF, start)) {
          const end = i > start && joined[i - 1] === 0x0d ? i - 1 : i;
          onLine(joined.slice(start, end));
          start = i + 1;
        }
        pending = joined.slice(start);
      }
      if (pending.length > 0) onLine(pending);
      return "the server closed the connection";
    } catch (error) {
      return closed ? "closed" : `connection lost: ${(error as Error).message}`;
    }
  })();
  const link: ChatLink = {
    transport: "tcp",
    send: (line) => {
      const out = new Uint8Array(line.length + 1);
      out.set(line);
      out[line.length] = LF;
      return writeAll(conn, out);
    },
    keepAlive: () => writeAll(conn, encoder.encode("\n")),
    ended,
    close(): void {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
    [Symbol.dispose](): void {
      this.close();
    },
  };
  return link;
}
