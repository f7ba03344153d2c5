/**
 * Connecting a client verb to a server, and saying in one line why it could
 * not: `cannot connect to 127.0.0.1:7007: connection refused`, always naming
 * the address (an unknown host too: `echo hi` takes `hi` for a host).
 *
 * @module
 */

import type { ClientAddress } from "./args.ts";
import { type ClientConn, connectTls, type TlsChoice, TlsConnectError } from "./tls_client.ts";
import { formatHostPort } from "../lib/address.ts";

/** A client could not reach its server; the message names the address. */
export class ConnectError extends Error {
  /** Where it tried to connect. */
  readonly address: ClientAddress;

  /**
   * @param address where it tried to connect
   * @param reason why it failed, e.g. `connection refused`
   */
  constructor(address: ClientAddress, reason: string) {
    super(`cannot connect to ${formatAddress(address)}: ${reason}`);
    this.name = "ConnectError";
    this.address = address;
  }
}

/**
 * Formats a client address: `host:port`, `[v6]:port`.
 * @param address host and port
 * @returns the text
 */
export function formatAddress(address: ClientAddress): string {
  return formatHostPort(address.hostname, address.port);
}

/**
 * Says in a few lowercase words why a socket operation failed: the OS's
 * reason without its `(os error N)` suffix, or that a host name did not
 * resolve.
 *
 * @example
 * ```ts
 * import { networkReason } from "./connect.ts";
 * const refused = new Deno.errors.ConnectionRefused("Connection refused (os error 111)");
 * if (networkReason(refused, "h") !== "connection refused") throw new Error();
 * ```
 *
 * @param error what the socket call threw
 * @param hostname the host it was given, for lookup failures
 * @returns e.g. `connection refused`, `unknown host "hi" (Name or service not known)`
 */
export function networkReason(error: unknown, hostname: string): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  const message = error instanceof Error ? error.message : String(error);
  const lookup = /failed to lookup address information: (.*)$/i.exec(message);
  if (lookup) return `unknown host "${hostname}" (${lookup[1]!.replace(/\.$/, "")})`;
  const text = message.replace(/\s*\(os error \d+\)$/, "").trim() ||
    (error instanceof Error ? error.name : "unknown error");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** Options for {@linkcode connectTcp}. */
export interface ConnectTcpOptions {
  /** Give up after this long, in ms. @default {no limit but the system's} */
  timeoutMs?: number;
  /** Speak TLS (the verbs' `--tls`, `--ca`, `--insecure`). @default {plain TCP} */
  tls?: TlsChoice;
}

/**
 * Opens a TCP connection to a server.
 * @param address host and port
 * @param options a connect timeout
 * @returns the connection, with Nagle's algorithm off
 * @throws {ConnectError} naming the address and the reason
 */
export async function connectTcp(
  address: ClientAddress,
  options: ConnectTcpOptions = {},
): Promise<ClientConn> {
  const connecting: Promise<ClientConn> = options.tls
    ? connectTls(address, options.tls)
    : Deno.connect({ hostname: address.hostname, port: address.port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = options.timeoutMs;
  const timeout = limit === undefined ? undefined : new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deno.errors.TimedOut(`timed out after ${limit}ms`)), limit);
  });
  try {
    const conn = await (timeout ? Promise.race([connecting, timeout]) : connecting);
    conn.setNoDelay(true);
    return conn;
  } catch (error) {
    connecting.then((conn) => conn.close(), () => {});
    if (error instanceof TlsConnectError) throw new ConnectError(address, `TLS: ${error.reason}`);
    const reason = error instanceof Deno.errors.TimedOut && limit !== undefined
      ? `no answer within ${limit}ms`
      : networkReason(error, address.hostname);
    throw new ConnectError(address, reason);
  } finally {
    clearTimeout(timer);
  }
}
