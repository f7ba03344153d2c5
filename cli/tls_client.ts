/**
 * How the TCP client verbs connect: plain TCP, or TLS with `--tls` (the
 * system's CAs and the host name), `--ca FILE` (trust this CA or
 * self-signed certificate; implies `--tls`) or `--insecure` (no
 * verification, with a warning). TLS uses `node:tls`, which accepts the
 * self-signed certificates `openssl req -x509` makes (CA:TRUE used as an
 * end entity), as the server side does.
 *
 * @module
 */

import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { isIP } from "node:net";
import type { ClientAddress, OptionSpec } from "./args.ts";
import { UsageError } from "./args.ts";
import { writeErr } from "./output.ts";
import { formatHostPort } from "../lib/address.ts";
import { NodeStreamConn, toDenoError } from "../lib/node_stream_conn.ts";

/** The options every TCP client verb takes. */
export const TLS_OPTIONS: Readonly<Record<"tls" | "ca" | "insecure", OptionSpec>> = {
  tls: { type: "boolean" },
  ca: { type: "string", value: "FILE" },
  insecure: { type: "boolean" },
};

const TLS_LINES: readonly [string, string][] = [
  ["--tls", "use TLS, verifying the server against the system's CAs and the host name"],
  ["--ca FILE", "trust this CA or self-signed certificate; implies TLS"],
  ["--insecure", "use TLS without verifying the server (prints a warning)"],
];

/**
 * The TLS options' lines for a verb's help, aligned with its other options.
 * @param column where the descriptions start (0-based)
 * @returns the lines, each ending in a newline
 */
export function tlsHelp(column: number): string {
  const width = 78 - column;
  return TLS_LINES.map(([option, text]) => {
    const words = text.split(" ");
    const lines: string[] = [];
    let line = "";
    for (const word of words) {
      if (line !== "" && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line === "" ? word : `${line} ${word}`;
      }
    }
    lines.push(line);
    const head = `      ${option}`.padEnd(column - 1) + " ";
    return lines.map((l, i) => (i === 0 ? head : " ".repeat(column)) + l).join("\n") + "\n";
  }).join("");
}

/** How to secure a connection. */
export interface TlsChoice {
  /** A PEM file of trusted certificates instead of the system's. */
  caFile?: string;
  /** Skip verification. */
  insecure: boolean;
}

/** A connection as the client verbs use it. */
export type ClientConn =
  & Pick<
    Deno.TcpConn,
    "read" | "write" | "close" | "closeWrite" | "setNoDelay" | "remoteAddr" | "localAddr"
  >
  & Disposable;

/** The TLS handshake failed or the server could not be verified. */
export class TlsConnectError extends Error {
  /** Why, without the address: `self-signed certificate (trust it with --ca FILE)`. */
  readonly reason: string;

  /**
   * @param message one line, naming the address
   * @param reason the same without the address
   */
  constructor(message: string, reason: string = message) {
    super(message);
    // describeError prints "TLS: …".
    this.name = "TLS";
    this.reason = reason;
  }
}

/**
 * Reads `--tls`, `--ca` and `--insecure` (and warns about `--insecure`).
 * @param values the parsed options
 * @param verb the verb, for the warning
 * @returns the choice, or undefined for plain TCP
 * @throws {UsageError} when `--ca` and `--insecure` are both given
 */
export function tlsChoice(
  values: Record<string, string | boolean | undefined>,
  verb: string,
): TlsChoice | undefined {
  const caFile = typeof values.ca === "string" ? values.ca : undefined;
  const insecure = values.insecure === true;
  if (caFile !== undefined && insecure) {
    throw new UsageError("--ca and --insecure contradict each other: give one");
  }
  if (!values.tls && caFile === undefined && !insecure) return undefined;
  if (insecure) {
    writeErr(
      `switchboard ${verb}: warning: --insecure: the server's certificate is not verified; ` +
        `anyone on the path can read and change this connection\n`,
    );
  }
  return caFile === undefined ? { insecure } : { caFile, insecure };
}

/**
 * Connects to `address` over TLS (the verbs go through `connectTcp` in
 * cli/connect.ts, which names the address in its errors).
 * @param address host and port
 * @param tls how to secure it
 * @returns the connection
 * @throws {Deno.errors.ConnectionRefused} and other connect errors
 * @throws {TlsConnectError} when the CA file cannot be read, the handshake
 *   fails or the server's certificate is not trusted
 */
export async function connectTls(address: ClientAddress, tls: TlsChoice): Promise<ClientConn> {
  const where = formatHostPort(address.hostname, address.port);
  let ca: string | undefined;
  if (tls.caFile !== undefined) {
    try {
      ca = await Deno.readTextFile(tls.caFile);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "does not exist"
        : (error as Error).message;
      throw new TlsConnectError(`cannot read the CA file "${tls.caFile}": ${why}`);
    }
  }
  const host = address.hostname;
  const socket: TLSSocket = tlsConnect({
    host,
    port: address.port,
    // SNI carries names only, never IP addresses.
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(ca === undefined ? {} : { ca }),
    rejectUnauthorized: !tls.insecure,
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error & { code?: string }): void => {
      socket.destroy();
      if (error.code?.startsWith("E") && !error.code.startsWith("ERR_")) {
        reject(toDenoError(error));
        return;
      }
      const verifying = /cert|verify|altname|self.signed|issuer/i.test(
        `${error.code ?? ""} ${error.message}`,
      );
      const hint = verifying && tls.caFile === undefined ? " (trust it with --ca FILE)" : "";
      // One spelling whatever the TLS library (OpenSSL says "self-signed", BoringSSL "self signed").
      const message = error.message.replace(/\bself signed\b/g, "self-signed");
      const reason = verifying ? `${message}${hint}` : `handshake failed: ${message}`;
      reject(
        new TlsConnectError(
          verifying ? `cannot verify ${where}: ${reason}` : `with ${where}: ${reason}`,
          reason,
        ),
      );
    };
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      resolve();
    });
    socket.once("error", fail);
  });
  return new NodeStreamConn(socket);
}
