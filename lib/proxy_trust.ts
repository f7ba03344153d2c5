/**
 * The `proxy_protocol = ["CIDR", …]` key of a TCP listener: the load
 * balancers whose connections start with a PROXY header. Such a listener
 * serves only them.
 *
 * @module
 */

import { parseCidr } from "./access.ts";
import type { OptionReader } from "./option_reader.ts";
import type { Transport } from "./service.ts";

/**
 * Reads `proxy_protocol`: a non-empty list of CIDRs or addresses.
 * @param reader the listener's option reader
 * @param transport the listener's transport (TCP only)
 * @returns the CIDRs (empty when the key is absent or wrong)
 */
export function readProxyPeers(reader: OptionReader, transport: Transport | undefined): string[] {
  if (!reader.has("proxy_protocol")) return [];
  if (transport === "udp") {
    reader.problem("proxy_protocol", "the PROXY protocol is for tcp listeners only");
    return [];
  }
  const before = reader.problemCount;
  const peers = reader.stringArray("proxy_protocol", {
    check: (item) => {
      try {
        parseCidr(item);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  if (peers.length === 0 && reader.problemCount === before) {
    reader.problem(
      "proxy_protocol",
      'lists no peer: list the load balancers\' addresses (e.g. ["10.0.0.0/8"]), or remove the key',
    );
  }
  return peers;
}
