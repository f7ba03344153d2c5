/**
 * What the file verbs (`get`, `put`, `ls`) share: the token, connecting,
 * remote names, and one-line reasons for failures.
 *
 * @module
 */

import { type ClientAddress, parseClientAddress, UsageError } from "./args.ts";
import { ConnectError, formatAddress, networkReason } from "./connect.ts";
import { FramedClient, RemoteError } from "./framed_client.ts";
import type { TlsChoice } from "./tls_client.ts";
import { FILE_DEFAULT_PORT } from "../handlers/file/mod.ts";
import { FrameError } from "../lib/header_codec.ts";
import { isDisconnect } from "../lib/net_errors.ts";

/** The option every file verb takes. */
export const TOKEN_OPTION = { token: { type: "string", value: "TOKEN" } } as const;

/**
 * The token from `--token` or `$SWITCHBOARD_TOKEN`.
 * @param value the `--token` value, if given
 * @returns the token, or undefined
 */
export function tokenFrom(value: string | boolean | undefined): string | undefined {
  if (typeof value === "string") return value;
  try {
    return Deno.env.get("SWITCHBOARD_TOKEN") || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses a file service address (bare host: port 7021).
 * @param text the ADDR argument
 * @returns host and port
 * @throws {UsageError} when it is not an address
 */
export function fileAddress(text: string | undefined): ClientAddress {
  if (text === undefined) throw new UsageError("missing ADDR");
  return parseClientAddress(text, FILE_DEFAULT_PORT);
}

/** A file service's address and how to secure the connection to it. */
export interface FileServer extends ClientAddress {
  /** TLS settings from `--tls`, `--ca`, `--insecure`; plain TCP when absent. */
  tls?: TlsChoice;
}

/**
 * Connects to a file service.
 * @param address host and port (and TLS settings)
 * @param token sent with every request when set
 * @returns the client
 */
export function connectFile(
  address: FileServer,
  token: string | undefined,
): Promise<FramedClient> {
  return FramedClient.connect(address, { token, tls: address.tls });
}

/**
 * The last name of a remote path (`a/b.txt` → `b.txt`).
 * @param path a remote path
 * @returns the name, or "" for the root
 */
export function remoteBaseName(path: string): string {
  const names = path.split("/").filter((name) => name !== "" && name !== ".");
  return names.at(-1) ?? "";
}

/**
 * One line saying why a file verb failed.
 * @param error what was thrown
 * @param address where we talked to
 * @returns the reason
 */
export function describeFailure(error: unknown, address: ClientAddress): string {
  if (error instanceof RemoteError) return `${error.message} (${error.code})`;
  if (error instanceof ConnectError) return error.message;
  if (error instanceof FrameError) {
    return `the reply from ${
      formatAddress(address)
    } is malformed or cut short (${error.message}): ` +
      'is it a file listener? One with protocol = "raw" takes a name line, as from nc';
  }
  if (isDisconnect(error)) {
    return `connection to ${formatAddress(address)} lost: ${
      networkReason(error, address.hostname)
    }`;
  }
  return error instanceof Error ? error.message : String(error);
}
