/**
 * The echo service (RFC 862): every byte received is sent back, optionally
 * with ASCII letters upper-cased. Works on TCP (a read/write loop on a reused
 * buffer) and UDP (each datagram returned whole to its sender).
 *
 * @module
 */

import { AdaptiveBuffer } from "../../lib/adaptive_buffer.ts";
import { defineService, type Service } from "../../lib/service.ts";
import type { Connection, ConnectionContext } from "../../lib/service.ts";

/** Options of an echo listener. */
export interface EchoOptions {
  /** `upper` upper-cases ASCII letters; `none` returns bytes as they came. */
  transform: "none" | "upper";
}

/**
 * Upper-cases ASCII letters in place. Bytes ≥ 0x80 are never touched, so
 * UTF-8 split across reads cannot be damaged.
 * @param bytes the bytes to change in place
 */
export function upperAscii(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte >= 97 && byte <= 122) bytes[i] = byte - 32;
  }
}

/**
 * Echoes a TCP connection until the peer closes its side or the daemon stops.
 * @param conn the connection
 * @param context signal and busy marking
 * @param options the listener's transform
 */
export async function echoStream(
  conn: Connection,
  context: ConnectionContext,
  options: EchoOptions,
): Promise<void> {
  const upper = options.transform === "upper";
  // Small while idle, grown for bulk traffic (lib/adaptive_buffer.ts).
  const buffer = new AdaptiveBuffer();
  // No stop check here: while stopping, the supervisor closes the
  // connection once it is quiet (or at the deadline), so bytes already sent
  // are echoed, not reset away.
  for (;;) {
    const n = await conn.read(buffer.bytes);
    if (n === null) break;
    const chunk = buffer.filled(n);
    if (upper) upperAscii(chunk);
    // Sent at once when the socket takes it: no await, and nothing to mark
    // busy (no one can look between here and the next read).
    const sent = conn.writeNow?.(chunk) ?? 0;
    if (sent === chunk.length) continue;
    context.setBusy(true);
    await conn.writeAll(sent === 0 ? chunk : chunk.subarray(sent));
    context.setBusy(false);
  }
}

/** The echo service's entry in the service table. */
export const echoService: Service = defineService<EchoOptions>({
  name: "echo",
  transports: ["tcp", "udp"],
  defaultPort: 7007,
  embeddedDefault: () => ({
    listeners: [{ name: "echo-tcp", transport: "tcp" }, { name: "echo-udp", transport: "udp" }],
  }),
  parseOptions(reader) {
    return {
      transform: reader.string("transform", { default: "none", choices: ["none", "upper"] }) as
        | "none"
        | "upper",
    };
  },
  describe(options) {
    return options.transform === "upper" ? "transform=upper" : "";
  },
  open(options, listener) {
    return {
      stream: (conn, context) => echoStream(conn, context, options),
      datagram: (data, from) => {
        if (options.transform === "upper") upperAscii(data);
        return listener.send(data, from);
      },
    };
  },
});
