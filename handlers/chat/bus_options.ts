/**
 * A chat listener's `bus` and `bus_creds` keys: where the room's NATS server
 * is and how to log in. Credentials come from the URL (`user:pass@` or a
 * `token@`) or from a NATS credentials file (a user JWT and its nkey seed,
 * as `nsc` writes it, or a bare nkey seed). They stay in memory: everything
 * shown (logs, metrics, `check`) uses {@linkcode BusOptions.target}.
 *
 * @module
 */

import type { OptionReader } from "../../lib/option_reader.ts";
import { readSecretFile } from "../../lib/token.ts";
import { isNkeySeed } from "./nkey_seed.ts";

/** How a daemon logs in to the bus. */
export type BusAuth =
  | { kind: "none" }
  | { kind: "password"; user: string; pass: string }
  | { kind: "token"; token: string }
  /** A NATS credentials file: user JWT and nkey seed. */
  | { kind: "creds"; text: string }
  /** A bare nkey user seed (`SU…`). */
  | { kind: "nkey"; seed: string };

/** A parsed `bus`. */
export interface BusOptions {
  /** The server to dial, without credentials: `nats://host:port`. */
  server: string;
  /** What logs, metrics and `check` show: the same, never with credentials. */
  target: string;
  /** How to log in. */
  auth: BusAuth;
  /** The `bus_creds` path, when one was given (shown by `check`). */
  credsPath?: string;
}

/** The NATS client port. */
export const DEFAULT_BUS_PORT = 4222;

const CREDS_JWT = "-----BEGIN NATS USER JWT-----";

/**
 * Parses a bus URL: `nats://[user:pass@|token@]host[:port]`.
 *
 * @example
 * ```ts
 * import { parseBusUrl } from "./bus_options.ts";
 * const bus = parseBusUrl("nats://ana:s3cret@10.0.0.5");
 * if (bus.target !== "nats://10.0.0.5:4222") throw new Error(bus.target);
 * if (bus.auth.kind !== "password" || bus.auth.pass !== "s3cret") throw new Error();
 * ```
 *
 * @param text the value of `bus`
 * @returns the server, its credential-free form and the credentials
 * @throws {SyntaxError} when it is not such a URL (the message never repeats a password)
 */
export function parseBusUrl(text: string): BusOptions {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SyntaxError('not a URL: write it as "nats://host:port"');
  }
  if (url.protocol !== "nats:") {
    throw new SyntaxError(`unsupported scheme "${url.protocol.slice(0, -1)}": use "nats://"`);
  }
  if (url.hostname === "") throw new SyntaxError('has no host: write it as "nats://host:port"');
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw new SyntaxError('must be only "nats://host:port" (no path, query or fragment)');
  }
  const port = url.port === "" ? DEFAULT_BUS_PORT : Number(url.port);
  if (port === 0) throw new SyntaxError("port 0 cannot be dialled");
  const server = `nats://${url.hostname}:${port}`;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  const auth: BusAuth = user === "" && pass === ""
    ? { kind: "none" }
    : pass === ""
    ? { kind: "token", token: user }
    : { kind: "password", user, pass };
  return { server, target: server, auth };
}

/**
 * Reads a credentials file's text as NATS credentials or an nkey seed.
 * @param text the file's text
 * @returns the login, or a reason it is neither
 */
export function parseCreds(text: string): BusAuth | string {
  // The client's parser wants each armour line ended by a newline, and the
  // file's text comes trimmed.
  if (text.includes(CREDS_JWT)) return { kind: "creds", text: `${text.trim()}\n` };
  const seed = text.trim();
  if (/^SU[A-Z2-7]+$/.test(seed)) {
    return isNkeySeed(seed) ? { kind: "nkey", seed } : "holds an nkey seed that does not decode";
  }
  return "is neither a NATS credentials file (user JWT and seed) nor an nkey user seed (SU…)";
}

/**
 * Reads `bus` and `bus_creds` from a chat listener's table.
 * @param reader the listener's option reader
 * @param room the listener's `room` (a bus needs one)
 * @returns the bus, or undefined when there is none or it is invalid (reported)
 */
export function readBusOptions(
  reader: OptionReader,
  room: string | undefined,
): BusOptions | undefined {
  const text = reader.string("bus");
  const credsPath = reader.path("bus_creds");
  if (text === undefined) {
    if (credsPath !== undefined) reader.problem("bus_creds", 'has no effect without "bus"');
    return undefined;
  }
  let bus: BusOptions;
  try {
    bus = parseBusUrl(text);
  } catch (error) {
    reader.problem("bus", (error as Error).message);
    return undefined;
  }
  if (room === undefined) {
    reader.problem("bus", 'needs "room": the name the daemons on this bus share the room under');
  }
  if (credsPath === undefined) return bus;
  if (bus.auth.kind !== "none") {
    reader.problem("bus_creds", 'give credentials either in "bus" or in "bus_creds", not both');
    return undefined;
  }
  const creds = readSecretFile(reader, { key: "bus_creds", file: credsPath });
  if (creds === undefined) return undefined;
  const auth = parseCreds(creds);
  if (typeof auth === "string") {
    reader.problem("bus_creds", `"${credsPath}" ${auth}`);
    return undefined;
  }
  return { ...bus, auth, credsPath };
}
