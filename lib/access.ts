/**
 * `allow` / `deny` CIDR rules: deny wins; with a non-empty allow list a peer
 * must match it.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Parses one rule: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address.
 * @param text the rule text
 * @returns the normalised CIDR text
 * @throws {SyntaxError} when the text is neither
 */
export function parseCidr(text: string): string {
  const range = toRange(text);
  return `${range[0].toString()}/${range[1]}`;
}

function toRange(text: string): Range {
  const trimmed = text.trim();
  try {
    const written = trimmed.split("/")[0]!;
    // ipaddr.js also takes legacy forms such as "10.0.0"; rules must be exact.
    if (!written.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(written)) {
      throw new SyntaxError("not a dotted-quad address");
    }
    if (trimmed.includes("/")) {
      const [address, bits] = ipaddr.parseCIDR(trimmed);
      return [unmap(address), address.kind() === "ipv6" && isMapped(address) ? bits - 96 : bits];
    }
    const address = ipaddr.parse(trimmed);
    const plain = unmap(address);
    return [plain, plain.kind() === "ipv4" ? 32 : 128];
  } catch {
    throw new SyntaxError(
      `Cannot parse CIDR "${text}": expected an address or address/prefix, e.g. "10.0.0.0/8"`,
    );
  }
}

function isMapped(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress();
}

function unmap(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return isMapped(address) ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

const CACHE_LIMIT = 4096;

/**
 * Decides whether a peer may talk to a listener. Decisions are cached per
 * address, since UDP services ask once per datagram.
 */
export class AccessPolicy {
  #allow: Range[];
  #deny: Range[];
  #cache = new Map<string, boolean>();

  /**
   * Compiles the rules.
   * @param allow CIDRs a peer must match when non-empty
   * @param deny CIDRs that refuse a peer (deny wins)
   * @throws {SyntaxError} when a rule is not a CIDR or address
   */
  constructor(allow: readonly string[], deny: readonly string[]) {
    this.#allow = allow.map(toRange);
    this.#deny = deny.map(toRange);
  }

  /** True when there are no rules, so every peer is allowed without a lookup. */
  get open(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }

  /**
   * Whether `host` (a normalised IP address) may connect.
   * @param host the peer's address, IPv4-mapped addresses already unmapped
   * @returns true when allowed
   */
  allows(host: string): boolean {
    if (this.open) return true;
    let verdict = this.#cache.get(host);
    if (verdict === undefined) {
      verdict = this.#decide(host);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(host, verdict);
    }
    return verdict;
  }

  #decide(host: string): boolean {
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = unmap(ipaddr.parse(host.replace(/%.*$/, "")));
    } catch {
      return false;
    }
    const matches = (range: Range): boolean =>
      range[0].kind() === address.kind() && address.match(range[0] as never, range[1]);
    if (this.#deny.some(matches)) return false;
    return this.#allow.length === 0 || this.#allow.some(matches);
  }
}
