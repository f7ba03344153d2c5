/**
 * `banner` on TCP listeners (xinetd's `banner`, ncat's greeting): text sent
 * verbatim at connect, before the service sees the connection; nothing is
 * appended (write the line end in the text, e.g. `"hello\r\n"`).
 *
 * @module
 */

import type { OptionReader } from "./option_reader.ts";
import type { Connection, Transport } from "./service.ts";

/** The longest banner, in bytes of UTF-8. */
export const MAX_BANNER = 65536;

const encoder = new TextEncoder();

/**
 * Reads a listener's `banner` (TCP only, at most {@linkcode MAX_BANNER} bytes).
 * @param reader the listener's option reader (problems go there)
 * @param transport the listener's transport
 * @returns the text, or undefined when absent or empty
 */
export function readBanner(
  reader: OptionReader,
  transport: Transport | undefined,
): string | undefined {
  const banner = reader.string("banner");
  if (banner === undefined) return undefined;
  if (transport === "udp") {
    reader.problem("banner", "has no effect on a udp listener");
  } else if (encoder.encode(banner).length > MAX_BANNER) {
    reader.problem("banner", `is over ${MAX_BANNER} bytes`);
  }
  return banner === "" ? undefined : banner;
}

/**
 * Sends a listener's banner on a new connection (nothing when there is none).
 * @param conn the accepted connection
 * @param banner the listener's `banner`
 * @throws {Deno.errors.BrokenPipe} and other write errors when the peer is gone
 */
export async function sendBanner(conn: Connection, banner: string | undefined): Promise<void> {
  if (banner !== undefined) await conn.writeAll(encoder.encode(banner));
}
