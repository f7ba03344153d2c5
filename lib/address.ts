/**
 * Listen addresses (`host:port`, `[v6]:port`, `:port`), their overlap rules,
 * and the normalisation of peer addresses for access rules and logs.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** A parsed `listen` value. */
export interface ListenAddress {
  /** Hostname to bind: an IP literal; `::` for "every interface". */
  hostname: string;
  /** Port number, 0–65535 (0 asks the OS for a free port). */
  port: number;
  /** Which addresses a bind covers: one address, every IPv4 one, or every address. */
  scope: "one" | "all4" | "all";
  /** For `listen = "fd:…"`: the socket systemd passes (a name or a number), not bound here. */
  fd?: string;
}

/**
 * Parses a listen address: `host:port`, `[v6]:port` or `:port` (every
 * interface, IPv6 and IPv4). `localhost` means 127.0.0.1.
 *
 * @example
 * ```ts
 * import { parseListenAddress } from "./address.ts";
 * const any = parseListenAddress(":7007");
 * if (any.hostname !== "::" || any.scope !== "all") throw new Error("wrong");
 * ```
 *
 * @param text the address text
 * @returns the hostname, port and scope
 * @throws {SyntaxError} when the text is not an address with a port
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]*)\]|([^:\[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match && !text.includes("[") && (text.match(/:/g) ?? []).length > 1) {
    throw new SyntaxError(`Cannot parse address "${text}": write IPv6 as [addr]:port`);
  }
  if (!match) {
    throw new SyntaxError(
      `Cannot parse address "${text}": expected "host:port", "[v6]:port" or ":port"`,
    );
  }
  const port = Number(match[3]);
  if (port > 65535) {
    throw new SyntaxError(`Cannot parse address "${text}": port ${port} is over 65535`);
  }
  const v6 = match[1];
  let host = v6 ?? match[2]!;
  if (v6 === undefined && host === "") return { hostname: "::", port, scope: "all" };
  if (host === "localhost") host = "127.0.0.1";
  const kind = v6 !== undefined ? "ipv6" : "ipv4";
  const valid = kind === "ipv6"
    ? ipaddr.IPv6.isValid(host)
    : ipaddr.IPv4.isValidFourPartDecimal(host);
  if (!valid) {
    throw new SyntaxError(
      `Cannot parse address "${text}": "${host}" is not an ${
        kind === "ipv6" ? "IPv6" : "IPv4"
      } address${kind === "ipv4" && host.includes(":") ? " (write IPv6 as [addr]:port)" : ""}`,
    );
  }
  const parsed = ipaddr.parse(host);
  const hostname = parsed.toString();
  const unspecified = parsed.range() === "unspecified";
  const scope = !unspecified ? "one" : kind === "ipv4" ? "all4" : "all";
  return { hostname, port, scope };
}

/**
 * Whether two binds on one transport would claim the same port: equal
 * addresses, or a wildcard that covers the other (`[::]` is dual-stack).
 * @param a one listen address
 * @param b another listen address
 * @returns true when binding both would conflict
 */
export function addressesOverlap(a: ListenAddress, b: ListenAddress): boolean {
  if (a.fd !== undefined || b.fd !== undefined) return a.fd === b.fd;
  if (a.port !== b.port || a.port === 0) return false;
  if (a.scope === "all" || b.scope === "all") return true;
  if (a.scope === "all4") return b.scope === "all4" || isIPv4(b.hostname);
  if (b.scope === "all4") return isIPv4(a.hostname);
  return a.hostname === b.hostname;
}

function isIPv4(hostname: string): boolean {
  return ipaddr.IPv4.isValid(hostname) && !hostname.includes(":");
}

/**
 * Normalises a peer's hostname: an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers) becomes
 * the plain IPv4 address; anything else is returned as it is.
 * @param hostname as reported by the socket
 * @returns the hostname access rules and logs use
 */
export function normalizeHost(hostname: string): string {
  // Cheap test first: this runs per accepted connection and per datagram.
  if (hostname.length > 7 && hostname.charCodeAt(0) === 58 /* : */) {
    const lower = hostname.toLowerCase();
    if (lower.startsWith("::ffff:") && lower.includes(".")) return lower.slice(7);
  }
  return hostname;
}

/**
 * Formats a host and port for display: IPv6 in brackets.
 * @param hostname an IP address or name
 * @param port a port number
 * @returns `host:port` or `[v6]:port`
 */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * Whether a listen address is reachable only from this machine.
 * @param address a parsed listen address
 * @returns true for 127.0.0.0/8 and ::1
 */
export function isLoopback(address: ListenAddress): boolean {
  return address.scope === "one" && ipaddr.parse(address.hostname).range() === "loopback";
}
