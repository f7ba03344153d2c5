/**
 * The client side of the header codec, for the `cmd`, `get`, `put` and `ls`
 * verbs: connect, send requests (with the token), read reply frames, and
 * turn `error` frames into exceptions.
 *
 * @module
 */

import type { ClientAddress } from "./args.ts";
import { connectTcp } from "./connect.ts";
import type { ClientConn, TlsChoice } from "./tls_client.ts";
import { encodeFrame, encodeHeader, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";

/** The server answered with an error frame. */
export class RemoteError extends Error {
  /** The error code, e.g. `not_found`. */
  readonly code: string;

  /**
   * @param code the frame's code
   * @param message the frame's message
   */
  constructor(code: string, message: string) {
    super(message);
    this.name = "RemoteError";
    this.code = code;
  }
}

/** Options for {@linkcode FramedClient.connect}. */
export interface FramedClientOptions {
  /** Added as `"token"` to every request when set. */
  token?: string;
  /** Connect over TLS with these settings. */
  tls?: TlsChoice;
}

/** A connection speaking the header codec. */
export class FramedClient {
  #conn: ClientConn;
  #token?: string;
  /** Reads reply headers and bodies. */
  readonly frames: FrameReader;

  private constructor(conn: ClientConn, options: FramedClientOptions) {
    this.#conn = conn;
    this.#token = options.token;
    this.frames = new FrameReader(conn);
  }

  /**
   * Connects to a framed service.
   * @param address host and port
   * @param options the token to send
   * @returns the client
   * @throws {ConnectError} naming the address and why (TLS problems included)
   */
  static async connect(
    address: ClientAddress,
    options: FramedClientOptions = {},
  ): Promise<FramedClient> {
    return new FramedClient(await connectTcp(address, { tls: options.tls }), options);
  }

  /** The raw connection (for streaming bodies). */
  get conn(): ClientConn {
    return this.#conn;
  }

  #withToken(header: Record<string, unknown>): Record<string, unknown> {
    return this.#token === undefined ? header : { ...header, token: this.#token };
  }

  /**
   * Sends a request frame (header plus optional body), adding the token.
   * @param header the request header
   * @param body the body; sets `size`
   */
  async send(header: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    await writeAll(this.#conn, encodeFrame(this.#withToken(header), body));
  }

  /**
   * Sends only a request header whose `size`-byte body the caller streams
   * next with {@linkcode FramedClient.writeBody}.
   * @param header the request header, with `size`
   */
  async sendHeader(header: Record<string, unknown>): Promise<void> {
    await writeAll(this.#conn, encodeHeader(this.#withToken(header)));
  }

  /**
   * Writes body bytes of a request sent with `sendHeader`.
   * @param bytes the next part of the body
   */
  async writeBody(bytes: Uint8Array): Promise<void> {
    await writeAll(this.#conn, bytes);
  }

  /**
   * Reads the next reply header; an `error` frame is thrown.
   * @returns the header
   * @throws {RemoteError} for an error frame
   * @throws {Error} when the server closed the connection
   */
  async next(): Promise<FrameHeader> {
    const header = await this.frames.readHeader();
    if (header === null) throw new Error("The server closed the connection");
    if (header.op === "error") {
      throw new RemoteError(String(header.code ?? "unknown"), String(header.message ?? ""));
    }
    return header;
  }

  /**
   * Reads the next reply and checks its `op`.
   * @param op the expected op
   * @returns the header
   * @throws {RemoteError} for an error frame
   * @throws {Error} for another op or a closed connection
   */
  async expect(op: string): Promise<FrameHeader> {
    const header = await this.next();
    if (header.op !== op) {
      throw new Error(`Unexpected reply "${String(header.op)}" (expected "${op}")`);
    }
    return header;
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }
}
