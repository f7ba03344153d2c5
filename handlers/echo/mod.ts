/**
 * The echo service (RFC 862): every byte received is sent back, optionally
 * with ASCII letters upper-cased. Works on TCP (a read/write loop on a reused
 * buffer) and UDP (each datagram returned whole to its sender).
 *
 * @module
 */

import { defineService, type Service } from "../../lib/service.ts";
import type { Connection, ConnectionContext } from "../../lib/service.ts";

/** Options of an echo listener. */
export interface EchoOptions {
  /** `upper` upper-cases ASCII letters; `none` returns bytes as they came. */
  transform: "none" | "upper";
}

// An idle connection holds only a small buffer (a waiting read pins it):
// bulk traffic grows it ×4 on each full read up to 64 KiB (512 B, 2 KiB,
// 8 KiB, 32 KiB, 64 KiB), and a run of reads that would have fit the small
// one (interactive use after a transfer) gives the large one back.
// Measured in bench/results_echo.md.
const INITIAL_BUFFER = 512;
const MAX_BUFFER = 65536;
const SHRINK_AFTER_SMALL_READS = 4;

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
  let buffer = new Uint8Array(INITIAL_BUFFER);
  let smallReads = 0;
  // No stop check here: while stopping, the supervisor closes the
  // connection once it is quiet (or at the deadline), so bytes already sent
  // are echoed, not reset away.
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    context.setBusy(true);
    const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
    if (upper) upperAscii(chunk);
    await conn.writeAll(chunk);
    context.setBusy(false);
    if (n === buffer.length) {
      smallReads = 0;
      if (buffer.length < MAX_BUFFER) {
        buffer = new Uint8Array(Math.min(buffer.length * 4, MAX_BUFFER));
      }
    } else if (buffer.length > INITIAL_BUFFER && n <= INITIAL_BUFFER) {
      if (++smallReads >= SHRINK_AFTER_SMALL_READS) {
        smallReads = 0;
        buffer = new Uint8Array(INITIAL_BUFFER);
      }
    } else {
      smallReads = 0;
    }
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
