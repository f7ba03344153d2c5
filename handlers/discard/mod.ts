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
import { AdaptiveBuffer } from "../../lib/adaptive_buffer.ts";
import { isDisconnect } from "../../lib/net_errors.ts";

/**
 * Reads a connection to its end and drops the bytes.
 * @param conn the connection
 * @param _context unused: nothing is ever in progress, so shutdown closes it once quiet
 */
export async function discardStream(conn: Connection, _context: ConnectionContext): Promise<void> {
  // Small while idle, grown for bulk senders.
  const buffer = new AdaptiveBuffer();
  try {
    for (let n = await conn.read(buffer.bytes); n !== null; n = await conn.read(buffer.bytes)) {
      buffer.filled(n);
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
