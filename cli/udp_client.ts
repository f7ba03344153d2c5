/**
 * A request/reply UDP client with a timeout and retries, for the `echo
 * --udp`, `time` and `chat` verbs.
 *
 * @module
 */

import type { ClientAddress } from "./args.ts";
import { ConnectError, formatAddress, networkReason } from "./connect.ts";

/** Options for {@linkcode UdpClient.request}. */
export interface RequestOptions {
  /** How long to wait for each reply. @default {2000} */
  timeoutMs?: number;
  /** How many times to send before giving up. @default {3} */
  attempts?: number;
}

/** No reply came in time, after every attempt. */
export class NoReplyError extends Error {
  /**
   * @param message what did not answer
   */
  constructor(message: string) {
    super(message);
    this.name = "NoReplyError";
  }
}

/** A UDP socket talking to one server. */
export class UdpClient {
  #socket: Deno.DatagramConn;
  #server: Deno.NetAddr;
  #pending?: Promise<[Uint8Array, Deno.Addr]>;
  #buffer = new Uint8Array(65536);

  /**
   * Talks to `server` from an already bound socket (see {@linkcode UdpClient.open}).
   * @param socket a bound UDP socket, owned by the client from now on
   * @param server the server's address
   */
  constructor(socket: Deno.DatagramConn, server: ClientAddress) {
    this.#socket = socket;
    this.#server = { transport: "udp", hostname: server.hostname, port: server.port };
  }

  /**
   * Binds an ephemeral local port of the server's address family.
   * @param server the server's address
   * @returns the client
   * @throws {Deno.errors.AddrNotAvailable} when no socket can be bound
   */
  static async open(server: ClientAddress): Promise<UdpClient> {
    const v6 = server.hostname.includes(":");
    // Awaited: in the self-contained executable binding completes later.
    const socket = await Deno.listenDatagram({
      hostname: v6 ? "::" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
    return new UdpClient(socket, server);
  }

  /** The local address, e.g. for messages. */
  get localAddr(): Deno.NetAddr {
    return this.#socket.addr as Deno.NetAddr;
  }

  /**
   * Sends a datagram to the server.
   * @param data the payload
   * @throws {ConnectError} when it cannot be sent (an unknown host, no route)
   */
  async send(data: Uint8Array): Promise<void> {
    try {
      await this.#socket.send(data, this.#server);
    } catch (error) {
      throw new ConnectError(this.#server, networkReason(error, this.#server.hostname));
    }
  }

  /**
   * Waits for the next datagram from the server's port.
   * @param timeoutMs how long to wait
   * @returns the payload (a fresh copy), or null on timeout
   */
  async receive(timeoutMs: number): Promise<Uint8Array | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.#pending ??= this.#socket.receive(this.#buffer);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), Math.max(0, deadline - performance.now()));
      });
      const result = await Promise.race([this.#pending, timeout]).finally(() =>
        clearTimeout(timer)
      );
      if (result === null) return null;
      this.#pending = undefined;
      const [data, from] = result;
      if ((from as Deno.NetAddr).port === this.#server.port) return data.slice();
    }
  }

  /**
   * Sends `data` and waits for one reply, resending on timeout.
   * @param data the request
   * @param options timeout per attempt and number of attempts
   * @returns the reply
   * @throws {NoReplyError} when no reply came after every attempt
   * @throws {ConnectError} when it cannot be sent
   */
  async request(data: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    const attempts = options.attempts ?? 3;
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.send(data);
      const reply = await this.receive(options.timeoutMs ?? 2000);
      if (reply) return reply;
    }
    throw new NoReplyError(
      `no reply from ${formatAddress(this.#server)} after ${attempts} attempt(s)`,
    );
  }

  /** Closes the socket. */
  close(): void {
    this.#pending?.catch(() => {});
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes the socket. */
  [Symbol.dispose](): void {
    this.close();
  }
}
