/**
 * The discard service (RFC 863): everything received is read and dropped,
 * and nothing is ever sent. TCP reads until the client closes; UDP drops
 * each datagram (the listener still counts it).
 *
 * @module
 */

import {
  type Connection,
  type ConnectionContext,
  defineService,
  type Service,
} from "../../lib/service.ts";
import { isDisconnect } from "../../lib/net_errors.ts";

// An idle connection pins only a small buffer; bulk senders grow it ×4 per
// full read up to 64 KiB, the size that keeps a fast sender cheap.
const INITIAL_BUFFER = 4096;
const MAX_BUFFER = 65536;

/**
 * Reads a connection to its end and drops the bytes.
 * @param conn the connection
 * @param _context unused: nothing is ever in progress, so shutdown closes it once quiet
 */
export async function discardStream(conn: Connection, _context: ConnectionContext): Promise<void> {
  let buffer = new Uint8Array(INITIAL_BUFFER);
  try {
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      if (n === buffer.length && buffer.length < MAX_BUFFER) {
        buffer = new Uint8Array(Math.min(buffer.length * 4, MAX_BUFFER));
      }
    }
  } catch (error) {
    // A client that resets is done sending: that is how discard ends too.
    if (!isDisconnect(error)) throw error;
  }
}

/** The discard service's entry in the service table. */
export const discardService: Service = defineService<Record<string, never>>({
  name: "discard",
  transports: ["tcp", "udp"],
  defaultPort: 9,
  parseOptions: () => ({}),
  open: () => ({
    stream: discardStream,
    datagram: () => {},
  }),
});
