/**
 * The PROXY protocol (HAProxy's spec, versions 1 and 2): the header a load
 * balancer (HAProxy, nginx stream, a cloud load balancer) puts before a
 * connection's bytes to say who the client really is. Parsing is pure and
 * incremental (so a byte that cannot begin a header is refused at once),
 * reading takes exactly the header off the connection and hands back what
 * came after it, and encoding is there for a relay that sends one.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { normalizeHost } from "./address.ts";
import type { RawConn } from "./metered_conn.ts";

/** What a PROXY header says. */
export interface ProxyHeader {
  /** 1 (text) or 2 (binary). */
  version: 1 | 2;
  /**
   * `proxy`: `source` and `destination` are the client's connection;
   * `local`: a health check or a family without IP addresses (`LOCAL`,
   * `UNKNOWN`, AF_UNSPEC, AF_UNIX): the peer's own address stands.
   */
  command: "proxy" | "local";
  /** The client (only for `proxy`); IPv4-mapped IPv6 is given as IPv4. */
  source?: Deno.NetAddr;
  /** Where the client connected to (only for `proxy`). */
  destination?: Deno.NetAddr;
}

/** The outcome of parsing the bytes received so far. */
export type ProxyParse =
  | { kind: "complete"; header: ProxyHeader; length: number }
  | { kind: "incomplete"; need: number }
  | { kind: "invalid"; message: string };

/** The 12 bytes every version 2 header starts with. */
export const V2_SIGNATURE: Uint8Array = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
/** A version 1 header is at most 107 bytes, CRLF included. */
export const V1_MAX = 107;
/** The longest version 2 header: 16 bytes and a 16-bit length. */
export const V2_MAX = 16 + 0xffff;

function startsLike(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/**
 * Parses a PROXY header from the first bytes of a connection.
 *
 * @example
 * ```ts
 * import { parseProxyHeader } from "./proxy_protocol.ts";
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\nhello");
 * const parsed = parseProxyHeader(bytes);
 * if (parsed.kind !== "complete" || parsed.header.source?.hostname !== "192.0.2.7") {
 *   throw new Error("not parsed");
 * }
 * if (parsed.length !== bytes.length - 5) throw new Error("wrong length");
 * ```
 *
 * @param bytes what was received so far
 * @returns the header and its length, how many more bytes are needed at
 *   least, or why these bytes cannot be a PROXY header
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  if (bytes.length === 0) return { kind: "incomplete", need: 1 };
  if (bytes[0] === V1_PREFIX[0]) {
    if (!startsLike(bytes, V1_PREFIX)) return invalid('does not start with "PROXY "');
    return parseV1(bytes);
  }
  if (bytes[0] === V2_SIGNATURE[0]) {
    if (!startsLike(bytes, V2_SIGNATURE)) return invalid("does not start with the v2 signature");
    return parseV2(bytes);
  }
  return invalid(`starts with byte 0x${bytes[0]!.toString(16).padStart(2, "0")}`);
}

function invalid(message: string): ProxyParse {
  return { kind: "invalid", message: `Not a PROXY protocol header: ${message}` };
}

const decoder = new TextDecoder();
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parseV1(bytes: Uint8Array): ProxyParse {
  const end = bytes.subarray(0, V1_MAX).indexOf(0x0a);
  if (end < 0) {
    if (bytes.length >= V1_MAX) return invalid(`v1 line longer than ${V1_MAX} bytes`);
    for (let i = V1_PREFIX.length; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (byte !== 0x0d && (byte < 0x20 || byte > 0x7e)) return invalid("v1 line is not text");
    }
    return { kind: "incomplete", need: 1 };
  }
  if (end === 0 || bytes[end - 1] !== 0x0d) return invalid("v1 line does not end with CRLF");
  const line = decoder.decode(bytes.subarray(0, end - 1));
  const length = end + 1;
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") {
    return { kind: "complete", header: { version: 1, command: "local" }, length };
  }
  if (parts.length !== 6) return invalid(`v1 line has ${parts.length} fields, expected 6`);
  const [, family, source, destination, sourcePort, destinationPort] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (family !== "TCP4" && family !== "TCP6") return invalid(`unknown v1 family "${family}"`);
  const valid = family === "TCP4"
    ? (text: string) => ipaddr.IPv4.isValidFourPartDecimal(text)
    : (text: string) => ipaddr.IPv6.isValid(text) && text.includes(":");
  if (!valid(source) || !valid(destination)) return invalid(`bad ${family} address in v1 line`);
  const ports = [sourcePort, destinationPort].map((text) => PORT.test(text) ? Number(text) : NaN);
  if (ports.some((port) => !(port <= 65535))) return invalid("bad port in v1 line");
  return {
    kind: "complete",
    header: {
      version: 1,
      command: "proxy",
      source: netAddr(ipaddr.parse(source), ports[0]!),
      destination: netAddr(ipaddr.parse(destination), ports[1]!),
    },
    length,
  };
}

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < 16) return { kind: "incomplete", need: 16 - bytes.length };
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`unknown v2 version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`unknown v2 command ${command}`);
  const family = bytes[13]! >> 4;
  const protocol = bytes[13]! & 0x0f;
  if (family > 3 || protocol > 2) {
    return invalid(`unknown v2 family/protocol 0x${bytes[13]!.toString(16)}`);
  }
  const length = 16 + ((bytes[14]! << 8) | bytes[15]!);
  if (bytes.length < length) return { kind: "incomplete", need: length - bytes.length };
  if (command === 0 || family === 0 || family === 3) {
    return { kind: "complete", header: { version: 2, command: "local" }, length };
  }
  const size = family === 1 ? 4 : 16;
  if (length < 16 + 2 * size + 4) {
    return invalid(`v2 address block of ${length - 16} bytes is too short`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const address = (offset: number): ipaddr.IPv4 | ipaddr.IPv6 =>
    ipaddr.fromByteArray([...bytes.subarray(offset, offset + size)]);
  return {
    kind: "complete",
    header: {
      version: 2,
      command: "proxy",
      source: netAddr(address(16), view.getUint16(16 + 2 * size)),
      destination: netAddr(address(16 + size), view.getUint16(18 + 2 * size)),
    },
    length,
  };
}

function netAddr(address: ipaddr.IPv4 | ipaddr.IPv6, port: number): Deno.NetAddr {
  const plain = address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
  return { transport: "tcp", hostname: normalizeHost(plain.toString()), port };
}

/** Why a PROXY header could not be read. */
export type ProxyFailureReason = "malformed" | "timeout" | "closed";

/** A connection did not start with a valid PROXY header. */
export class ProxyHeaderError extends Error {
  /** How it failed. */
  readonly reason: ProxyFailureReason;

  /**
   * @param reason how it failed
   * @param message what happened
   */
  constructor(reason: ProxyFailureReason, message: string) {
    super(message);
    this.name = "ProxyHeaderError";
    this.reason = reason;
  }
}

/**
 * Reads a PROXY header off a connection. A byte that cannot begin one ends
 * the read at once; so does the time limit.
 * @param conn the connection
 * @param timeoutMs the whole header must arrive within this many ms (the
 *   connection is closed when it does not)
 * @returns the header and the bytes received after it
 * @throws {ProxyHeaderError} when the bytes are not a header, the peer
 *   leaves, or the time runs out
 */
export async function readProxyHeader(
  conn: RawConn,
  timeoutMs: number,
): Promise<{ header: ProxyHeader; rest: Uint8Array }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  let buffer = new Uint8Array(256);
  let filled = 0;
  try {
    for (;;) {
      const parsed = parseProxyHeader(buffer.subarray(0, filled));
      if (parsed.kind === "complete") {
        return { header: parsed.header, rest: buffer.slice(parsed.length, filled) };
      }
      if (parsed.kind === "invalid") throw new ProxyHeaderError("malformed", parsed.message);
      if (filled + parsed.need > buffer.length) {
        const grown = new Uint8Array(
          Math.min(V2_MAX, Math.max(buffer.length * 2, filled + parsed.need)),
        );
        grown.set(buffer.subarray(0, filled));
        buffer = grown;
      }
      let n: number | null;
      try {
        n = await conn.read(buffer.subarray(filled));
      } catch (error) {
        if (timedOut) break;
        throw new ProxyHeaderError(
          "closed",
          `Connection lost in the PROXY header: ${String(error)}`,
        );
      }
      if (n === null) {
        if (timedOut) break;
        throw new ProxyHeaderError(
          "closed",
          filled === 0 ? "Closed before a PROXY header" : "Closed in the middle of a PROXY header",
        );
      }
      filled += n;
    }
    throw new ProxyHeaderError("timeout", `No complete PROXY header within ${timeoutMs}ms`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Encodes a PROXY header for a connection from `source` to `destination`
 * (both IPv4 or both IPv6; an IPv4 and an IPv6 address are sent as IPv6).
 *
 * @example
 * ```ts
 * import { encodeProxyHeader } from "./proxy_protocol.ts";
 * const source = { transport: "tcp" as const, hostname: "192.0.2.7", port: 51000 };
 * const destination = { transport: "tcp" as const, hostname: "10.0.0.1", port: 443 };
 * const text = new TextDecoder().decode(encodeProxyHeader("v1", source, destination));
 * if (text !== "PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n") throw new Error(text);
 * ```
 *
 * @param version `v1` (text) or `v2` (binary)
 * @param source the client
 * @param destination where it connected to
 * @returns the header bytes
 * @throws {TypeError} when an address is not an IP address
 */
export function encodeProxyHeader(
  version: "v1" | "v2",
  source: Deno.NetAddr,
  destination: Deno.NetAddr,
): Uint8Array {
  const parse = (host: string): ipaddr.IPv4 | ipaddr.IPv6 => {
    try {
      return ipaddr.parse(normalizeHost(host).replace(/%.*$/, ""));
    } catch {
      throw new TypeError(`Cannot send a PROXY header for "${host}": not an IP address`);
    }
  };
  let from = parse(source.hostname);
  let to = parse(destination.hostname);
  if (from.kind() !== to.kind()) {
    from = from.kind() === "ipv4" ? (from as ipaddr.IPv4).toIPv4MappedAddress() : from;
    to = to.kind() === "ipv4" ? (to as ipaddr.IPv4).toIPv4MappedAddress() : to;
  }
  const v6 = from.kind() === "ipv6";
  if (version === "v1") {
    const family = v6 ? "TCP6" : "TCP4";
    return new TextEncoder().encode(
      `PROXY ${family} ${from.toString()} ${to.toString()} ${source.port} ${destination.port}\r\n`,
    );
  }
  const size = v6 ? 16 : 4;
  const out = new Uint8Array(16 + 2 * size + 4);
  out.set(V2_SIGNATURE);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v6 ? 0x21 : 0x11; // AF_INET6 or AF_INET, STREAM
  const view = new DataView(out.buffer);
  view.setUint16(14, 2 * size + 4);
  out.set(from.toByteArray(), 16);
  out.set(to.toByteArray(), 16 + size);
  view.setUint16(16 + 2 * size, source.port);
  view.setUint16(18 + 2 * size, destination.port);
  return out;
}
