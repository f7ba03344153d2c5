/**
 * The character generator service (RFC 864). TCP: from connect, an endless
 * stream of RFC 864's pattern (see `pattern.ts`), as fast as the client
 * reads it (back-pressure: the next chunk is written only once the last one
 * is taken); whatever the client sends is read and dropped; the stream ends
 * when the client closes or the daemon stops. UDP: each datagram gets one
 * datagram of a random 0–512 characters of the pattern back. Because that
 * reply is bigger than the request, a UDP chargen is an amplifier for
 * spoofed requests, so `check` refuses it unless `allow_udp = true`.
 *
 * @module
 */

import { chargenPeriods, PERIOD } from "./pattern.ts";
import { isDisconnect } from "../../lib/net_errors.ts";
import {
  type Connection,
  type ConnectionContext,
  defineService,
  type Service,
} from "../../lib/service.ts";

/** Options of a chargen listener. */
export interface ChargenOptions {
  /** Whether the listener may be UDP (it amplifies spoofed requests). */
  allowUdp: boolean;
}

/** The largest UDP reply, in bytes (RFC 864: 0 to 512 characters). */
export const MAX_DATAGRAM = 512;

// Nine whole periods, 63,270 bytes: consecutive writes of it continue the
// pattern exactly. Shared by every connection (it is only ever read). Built
// on first use: a daemon without chargen never runs the loop (a hot loop at
// start-up pages in V8's optimizing compiler, megabytes of idle RSS).
let streamChunk: Uint8Array | undefined;
// Two periods, so any 512-byte window starting in the first one is contiguous.
let datagramSource: Uint8Array | undefined;
const DRAIN_BUFFER = 4096;

/**
 * Streams the pattern to a connection until the client goes away or the
 * daemon stops; input is dropped.
 * @param conn the connection
 * @param context its signal (the daemon stopping ends the stream)
 */
export async function chargenStream(conn: Connection, context: ConnectionContext): Promise<void> {
  // RFC 864: data from the client is thrown away. A half-close is not the
  // end (nc -N sends one at once when its stdin is empty), a reset is.
  let gone = false;
  const chunk = streamChunk ??= chargenPeriods(9);
  void (async () => {
    const buffer = new Uint8Array(DRAIN_BUFFER);
    while ((await conn.read(buffer)) !== null);
  })().catch(() => {
    gone = true;
  });
  try {
    while (!context.signal.aborted && !gone) await conn.writeAll(chunk);
  } catch (error) {
    if (!isDisconnect(error)) throw error;
  }
}

/**
 * Answers UDP datagrams with a random 0–512 bytes of the pattern, each
 * reply continuing where the last one stopped.
 */
export class ChargenDatagrams {
  #offset = 0;
  #random: () => number;
  #source: Uint8Array = datagramSource ??= chargenPeriods(2);

  /**
   * @param random a source of numbers in [0, 1) @default {Math.random}
   */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /**
   * The next reply.
   * @returns a view of 0 to {@linkcode MAX_DATAGRAM} bytes (valid until the next call)
   */
  next(): Uint8Array {
    const length = Math.min(MAX_DATAGRAM, Math.floor(this.#random() * (MAX_DATAGRAM + 1)));
    const reply = this.#source.subarray(this.#offset, this.#offset + length);
    this.#offset = (this.#offset + length) % PERIOD;
    return reply;
  }
}

/** The chargen service's entry in the service table. */
export const chargenService: Service = defineService<ChargenOptions>({
  name: "chargen",
  transports: ["tcp", "udp"],
  defaultPort: 19,
  parseOptions(reader, transport) {
    const allowUdp = reader.boolean("allow_udp", false);
    if (transport === "udp" && !allowUdp) {
      reader.problem(
        "transport",
        `chargen over udp answers each datagram with up to 512 bytes, an amplifier for ` +
          `spoofed requests: set allow_udp = true to run it anyway (and limit it with allow or rate)`,
      );
    } else if (transport === "tcp" && reader.has("allow_udp")) {
      reader.problem("allow_udp", "has no effect on a tcp listener");
    }
    return { allowUdp };
  },
  describe: (options) => options.allowUdp ? "allow_udp" : "",
  open(_options, listener) {
    const datagrams = new ChargenDatagrams();
    return {
      stream: chargenStream,
      datagram: (_data, from) => listener.send(datagrams.next(), from),
    };
  },
});
