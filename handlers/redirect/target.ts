/**
 * A redirect's `target = "host:port"`: an IPv4 address, `[IPv6]`, or a DNS
 * name (resolved at each connect, as rinetd and socat do), and a port.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** A parsed target. */
export interface Target {
  /** An IP address or a DNS name. */
  hostname: string;
  /** 1–65535. */
  port: number;
  /** Whether `hostname` is an IP literal (so it can be compared with listen addresses). */
  literal: boolean;
}

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * Parses a target.
 *
 * @example
 * ```ts
 * import { parseTarget } from "./target.ts";
 * const target = parseTarget("[::1]:8080");
 * if (target.hostname !== "::1" || target.port !== 8080 || !target.literal) throw new Error();
 * if (parseTarget("db.internal:5432").literal) throw new Error("a name is no literal");
 * ```
 *
 * @param text `host:port` or `[v6]:port`
 * @returns host, port and whether the host is an IP literal
 * @throws {SyntaxError} when the text is not such an address
 */
export function parseTarget(text: string): Target {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    throw new SyntaxError(
      `"${text}" is not a target: write "host:port" or "[v6]:port" with a port from 1 to 65535`,
    );
  }
  const v6 = match[1];
  if (v6 !== undefined) {
    if (!ipaddr.IPv6.isValid(v6)) throw new SyntaxError(`"${v6}" is not an IPv6 address`);
    return { hostname: ipaddr.parse(v6).toString(), port, literal: true };
  }
  const host = match[2]!;
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return { hostname: host, port, literal: true };
  if (/^[\d.]+$/.test(host)) throw new SyntaxError(`"${host}" is not an IPv4 address`);
  if (host.length > 253 || !host.replace(/\.$/, "").split(".").every((l) => LABEL.test(l))) {
    throw new SyntaxError(`"${host}" is not a host name`);
  }
  if (host === "localhost") return { hostname: "127.0.0.1", port, literal: true };
  return { hostname: host, port, literal: false };
}
