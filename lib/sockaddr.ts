/**
 * Socket addresses as Linux lays them out (`sockaddr_in`, `sockaddr_in6`),
 * written and read in caller-owned buffers for the FFI socket paths
 * (lib/udp_mmsg.ts): hostnames as Deno writes them, ready-made
 * `Deno.NetAddr` objects for recent sources, and destinations encoded
 * without allocating for IPv4 (IPv6 ones are remembered).
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;
/** Room for one socket address (a sockaddr_in6 is 28 bytes). */
export const SOCKADDR_ROOM = 32;

// IPv6 destinations remembered as address words (IPv4 is parsed each time, without allocating).
const MAX_ADDRESSES = 64;
// Sources remembered as ready-made addresses, in a direct-mapped table: a
// flood of new sources replaces entries while they are young (a Map of
// thousands kept them long enough to reach V8's old generation: +30 MiB
// RSS for 40,000 sources).
const SOURCE_SLOTS = 256;

/**
 * The length of a socket address of `family`.
 * @param family AF_INET or AF_INET6
 * @returns 16 or 28
 */
export function sockaddrLength(family: number): number {
  return family === AF_INET6 ? 28 : 16;
}

/**
 * IPv6 text as Deno prints it (Rust's `Ipv6Addr`): lower-case hex, the
 * longest run of two or more zero groups (the first of equals) as `::`,
 * and `::ffff:a.b.c.d` for IPv4-mapped addresses.
 * @param bytes the 16 address bytes
 * @param offset where they start in `bytes`
 * @returns the text
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(bytes[offset + 2 * i]! << 8 | bytes[offset + 2 * i + 1]!);
  if (
    groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 &&
    groups[4] === 0 && groups[5] === 0xffff
  ) {
    const o = offset + 12;
    return `::ffff:${bytes[o]}.${bytes[o + 1]}.${bytes[o + 2]}.${bytes[o + 3]}`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestLength < 2) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * An IPv4 dotted quad as a number, without allocating.
 * @param text the hostname
 * @returns the address, or -1 when `text` is not `a.b.c.d`
 */
export function dottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + c - 48;
      digits++;
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/**
 * The address a socket binds to.
 * @param hostname an IP literal (`::` is dual-stack to the caller)
 * @param port the port
 * @returns the family and the socket address (its length by
 *   {@linkcode sockaddrLength}), or undefined when `hostname` is no IP literal
 */
export function bindAddress(
  hostname: string,
  port: number,
): { family: number; name: Uint8Array } | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(hostname);
  } catch {
    return undefined;
  }
  const v6 = parsed.kind() === "ipv6";
  const family = v6 ? AF_INET6 : AF_INET;
  const name = new Uint8Array(SOCKADDR_ROOM);
  const view = new DataView(name.buffer);
  view.setUint16(0, family, true);
  view.setUint16(2, port, false);
  name.set(parsed.toByteArray(), v6 ? 8 : 4);
  return { family, name };
}

/**
 * Reads source addresses, handing out one shared `Deno.NetAddr` per recent
 * source (a small direct-mapped table: no allocation for a repeat sender).
 */
export class SourceAddresses {
  #keys: (number | string | undefined)[] = new Array(SOURCE_SLOTS).fill(undefined);
  #addrs: (Deno.NetAddr | undefined)[] = new Array(SOURCE_SLOTS).fill(undefined);

  /**
   * The address at `offset`, as Deno's datagram API reports it
   * (null-prototype object; IPv4-mapped sources as `::ffff:a.b.c.d`).
   * Scope ids are not kept (Deno drops them too).
   * @param names the bytes holding the socket address
   * @param view a DataView over the same buffer as `names`
   * @param offset where the address starts
   * @returns the address (shared by the datagrams of the same source; do not change it)
   */
  read(names: Uint8Array, view: DataView, offset: number): Deno.NetAddr {
    const family = view.getUint16(offset, true);
    const port = view.getUint16(offset + 2, false);
    if (family === AF_INET) {
      const ip = view.getUint32(offset + 4, false);
      const key = ip * 65536 + port;
      const slot = (ip ^ port ^ ip >>> 8) & (SOURCE_SLOTS - 1);
      if (this.#keys[slot] === key) return this.#addrs[slot]!;
      const o = offset + 4;
      const hostname = `${names[o]}.${names[o + 1]}.${names[o + 2]}.${names[o + 3]}`;
      return this.#remember(slot, key, hostname, port);
    }
    const low = view.getUint32(offset + 20);
    let key: number | string;
    if (
      view.getUint32(offset + 8) === 0 && view.getUint32(offset + 12) === 0 &&
      view.getUint32(offset + 16) === 0xffff
    ) {
      key = -(low * 65536 + port) - 1;
    } else {
      key = `${view.getUint32(offset + 8)},${view.getUint32(offset + 12)},${
        view.getUint32(offset + 16)
      },${low},${port}`;
    }
    const slot = (low ^ port ^ low >>> 8) & (SOURCE_SLOTS - 1);
    if (this.#keys[slot] === key) return this.#addrs[slot]!;
    return this.#remember(slot, key, formatIPv6(names, offset + 8), port);
  }

  #remember(slot: number, key: number | string, hostname: string, port: number): Deno.NetAddr {
    // Null-prototype, as the objects Deno's own receive returns.
    const addr = { __proto__: null, transport: "udp", hostname, port } as unknown as Deno.NetAddr;
    this.#keys[slot] = key;
    this.#addrs[slot] = addr;
    return addr;
  }
}

/** One destination's address as big-endian 32-bit words: 1 (AF_INET) or 4 (AF_INET6, IPv4 mapped). */
type Words = number[];

/**
 * Writes destination addresses for a socket of one family: IPv4 text is
 * parsed without allocating, IPv6 text once per recent destination; an
 * IPv4 destination on an IPv6 socket is written IPv4-mapped.
 */
export class DestinationAddresses {
  readonly #family: number;
  #words = new Map<string, Words>();

  /** @param family the socket's: AF_INET or AF_INET6 */
  constructor(family: number) {
    this.#family = family;
  }

  /**
   * Writes `to` at `offset`.
   * @param names a DataView over the buffer
   * @param offset where the socket address goes (room: {@linkcode SOCKADDR_ROOM})
   * @param to the destination (an IP literal)
   * @returns the socket address's length
   * @throws {Deno.errors.InvalidData} for an IPv6 destination on an IPv4
   *   socket; an Error for a hostname that is no IP literal
   */
  write(names: DataView, offset: number, to: Deno.NetAddr): number {
    const v4 = dottedQuad(to.hostname);
    names.setUint32(offset, this.#family | to.port << 24 | (to.port >> 8) << 16, true);
    if (this.#family === AF_INET6) {
      names.setUint32(offset + 4, 0);
      if (v4 >= 0) {
        names.setUint32(offset + 8, 0);
        names.setUint32(offset + 12, 0);
        names.setUint32(offset + 16, 0xffff);
        names.setUint32(offset + 20, v4);
      } else {
        const words = this.#lookup(to.hostname);
        for (let i = 0; i < 4; i++) names.setUint32(offset + 8 + 4 * i, words[i]!);
      }
      names.setUint32(offset + 24, 0);
      return 28;
    }
    names.setUint32(offset + 4, v4 >= 0 ? v4 : this.#lookup(to.hostname)[0]!);
    names.setUint32(offset + 8, 0);
    names.setUint32(offset + 12, 0);
    return 16;
  }

  #lookup(hostname: string): Words {
    let found = this.#words.get(hostname);
    if (found !== undefined) return found;
    const parsed = ipaddr.parse(hostname);
    let bytes: number[];
    if (this.#family === AF_INET6) {
      const v6 = parsed.kind() === "ipv6"
        ? parsed as ipaddr.IPv6
        : (parsed as ipaddr.IPv4).toIPv4MappedAddress();
      bytes = v6.toByteArray();
    } else {
      const v4 = parsed.kind() === "ipv4"
        ? parsed as ipaddr.IPv4
        : (parsed as ipaddr.IPv6).isIPv4MappedAddress()
        ? (parsed as ipaddr.IPv6).toIPv4Address()
        : undefined;
      if (!v4) {
        throw new Deno.errors.InvalidData(`Cannot send to ${hostname} from an IPv4 socket`);
      }
      bytes = v4.toByteArray();
    }
    if (this.#words.size >= MAX_ADDRESSES) this.#words.clear();
    found = [];
    for (let i = 0; i < bytes.length; i += 4) {
      found.push(
        (bytes[i]! << 24 | bytes[i + 1]! << 16 | bytes[i + 2]! << 8 | bytes[i + 3]!) >>> 0,
      );
    }
    this.#words.set(hostname, found);
    return found;
  }
}
