/**
 * Test peers for the chat relay: a UDP member and a TCP member that collect
 * what the room sends them, with bounded waits.
 *
 * @module
 */

import { listenerToml, startServer, type TestServer } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A fake clock for `startServer(toml, { clock })`. */
export class FakeClock {
  /** The current time in ms. */
  ms = 0;
  /** The clock function to hand to the server. */
  readonly now = (): number => this.ms;
  /**
   * Moves time forward.
   * @param ms how far
   */
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Collects items pushed by a reader loop and hands them out in order. */
class Inbox<T> {
  #items: T[] = [];
  #wake?: () => void;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  get size(): number {
    return this.#items.length;
  }

  async next(timeoutMs: number): Promise<T | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (this.#items.length === 0) {
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#items.shift();
  }
}

/** What both kinds of peer offer. */
export interface ChatPeer extends AsyncDisposable {
  /** The name the room gives this peer by default (`127.0.0.1:port`). */
  readonly address: string;
  /** Sends one message (a datagram, or a line with `\n` added). */
  send(message: string | Uint8Array): Promise<void>;
  /** The next line received (without a line member's `\n`), or undefined after `timeoutMs`. */
  nextBytes(timeoutMs?: number): Promise<Uint8Array | undefined>;
  /** The next line as text (throws when none comes in time). */
  next(timeoutMs?: number): Promise<string>;
  /** Asserts that nothing arrives for `ms`. */
  quiet(ms?: number): Promise<void>;
}

function bytesOf(message: string | Uint8Array): Uint8Array {
  return typeof message === "string" ? encoder.encode(message) : message;
}

/** A UDP chat member on 127.0.0.1 (or ::1). */
export class UdpPeer implements ChatPeer {
  #socket: Deno.DatagramConn;
  #server: Deno.NetAddr;
  #inbox = new Inbox<Uint8Array>();
  #loop: Promise<void>;
  /** Datagrams received from anyone other than the server. */
  strays = 0;

  /**
   * Binds a socket (it has not joined until it sends).
   * @param serverPort the chat listener's port
   * @param hostname the server's address (and the family to bind) @default {"127.0.0.1"}
   */
  constructor(serverPort: number, hostname = "127.0.0.1") {
    this.#socket = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
    this.#server = { transport: "udp", hostname, port: serverPort };
    this.#loop = this.#receive();
  }

  async #receive(): Promise<void> {
    for (;;) {
      try {
        const [data, from] = await this.#socket.receive();
        if ((from as Deno.NetAddr).port === this.#server.port) this.#inbox.push(data);
        else this.strays++;
      } catch {
        return;
      }
    }
  }

  /** The local port. */
  get port(): number {
    return (this.#socket.addr as Deno.NetAddr).port;
  }

  /** The default name: `127.0.0.1:port` or `[::1]:port`. */
  get address(): string {
    const host = this.#server.hostname;
    return host.includes(":") ? `[${host}]:${this.port}` : `${host}:${this.port}`;
  }

  /** How many datagrams wait unread. */
  get pending(): number {
    return this.#inbox.size;
  }

  async send(message: string | Uint8Array): Promise<void> {
    await this.#socket.send(bytesOf(message), this.#server);
  }

  nextBytes(timeoutMs = 3000): Promise<Uint8Array | undefined> {
    return this.#inbox.next(timeoutMs);
  }

  async next(timeoutMs = 3000): Promise<string> {
    const data = await this.nextBytes(timeoutMs);
    if (data === undefined) throw new Error(`${this.address}: nothing received in ${timeoutMs}ms`);
    return decoder.decode(data);
  }

  async quiet(ms = 200): Promise<void> {
    const data = await this.nextBytes(ms);
    if (data !== undefined) {
      throw new Error(
        `${this.address}: expected nothing, got ${JSON.stringify(decoder.decode(data))}`,
      );
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/** A TCP chat member: each received line is one item. */
export class TcpPeer implements ChatPeer {
  #conn: Deno.TcpConn;
  #inbox = new Inbox<Uint8Array>();
  #loop: Promise<void>;
  #closed = false;
  /** Resolves when the server closes the connection. */
  readonly ended: Promise<void>;

  /**
   * Wraps a connection; use {@linkcode TcpPeer.connect}.
   * @param conn the connection
   * @param read whether to read what arrives
   */
  constructor(conn: Deno.TcpConn, read: boolean) {
    this.#conn = conn;
    this.#loop = read ? this.#receive() : Promise.resolve();
    this.ended = this.#loop;
  }

  /**
   * Connects to a chat listener.
   * @param port the listener's port
   * @param options `read: false` makes a member that never reads (a slow consumer)
   * @returns the connected peer
   */
  static async connect(port: number, options: { read?: boolean } = {}): Promise<TcpPeer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new TcpPeer(conn, options.read ?? true);
  }

  async #receive(): Promise<void> {
    const buffer = new Uint8Array(65536);
    let pending = new Uint8Array(0);
    for (;;) {
      let n: number | null;
      try {
        n = await this.#conn.read(buffer);
      } catch {
        return;
      }
      if (n === null) return;
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(buffer.subarray(0, n), pending.length);
      let start = 0;
      for (let i = joined.indexOf(10); i >= 0; i = joined.indexOf(10, start)) {
        this.#inbox.push(joined.slice(start, i));
        start = i + 1;
      }
      pending = joined.slice(start);
    }
  }

  /** The default name, `127.0.0.1:port`. */
  get address(): string {
    return `127.0.0.1:${(this.#conn.localAddr as Deno.NetAddr).port}`;
  }

  /** The raw connection (e.g. to read the bytes a non-reading peer has queued). */
  get conn(): Deno.TcpConn {
    return this.#conn;
  }

  async send(message: string | Uint8Array): Promise<void> {
    const bytes = bytesOf(message);
    const line = new Uint8Array(bytes.length + 1);
    line.set(bytes);
    line[bytes.length] = 10;
    await this.write(line);
  }

  /**
   * Writes raw bytes (no newline added).
   * @param bytes what to write
   */
  async write(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(await this.#conn.write(rest));
  }

  nextBytes(timeoutMs = 3000): Promise<Uint8Array | undefined> {
    return this.#inbox.next(timeoutMs);
  }

  async next(timeoutMs = 3000): Promise<string> {
    const data = await this.nextBytes(timeoutMs);
    if (data === undefined) throw new Error(`${this.address}: no line received in ${timeoutMs}ms`);
    return decoder.decode(data);
  }

  async quiet(ms = 200): Promise<void> {
    const data = await this.nextBytes(ms);
    if (data !== undefined) {
      throw new Error(
        `${this.address}: expected nothing, got ${JSON.stringify(decoder.decode(data))}`,
      );
    }
  }

  /** Closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#loop;
  }
}

/**
 * A chat listener's config section on 127.0.0.1 port 0.
 * @param fields extra keys, e.g. `{ max_members: 2 }`
 * @param name the listener's name @default {"chat"}
 * @returns the TOML text of one `[[listener]]`
 */
export function chatListener(fields: Record<string, unknown> = {}, name = "chat"): string {
  return listenerToml({ name, service: "chat", listen: "127.0.0.1:0", ...fields });
}

/** Two members of one chat room on a fresh server: `a` joined first and heard `b` join. */
export interface ChatPair<P extends ChatPeer> extends AsyncDisposable {
  /** The running server. */
  readonly server: TestServer;
  /** The chat listener's port. */
  readonly port: number;
  /** The first member. */
  readonly a: P;
  /** The second member (its join was read by `a`). */
  readonly b: P;
}

async function pairOf<P extends ChatPeer>(
  toml: string,
  join: (port: number) => Promise<[P, P]>,
): Promise<ChatPair<P>> {
  const server = await startServer(toml);
  try {
    const port = server.port("chat");
    const [a, b] = await join(port);
    return {
      server,
      port,
      a,
      b,
      async [Symbol.asyncDispose]() {
        await b[Symbol.asyncDispose]();
        await a[Symbol.asyncDispose]();
        await server[Symbol.asyncDispose]();
      },
    };
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

// Strangers' joins are skipped: a UDP port a listener gets may have belonged
// to an earlier listener whose client still sends keep-alives (a first
// datagram joins).
async function expectJoin(a: ChatPeer, b: ChatPeer): Promise<void> {
  for (let skipped = 0; skipped < 5; skipped++) {
    const line = await a.next();
    if (line === `* ${b.address} joined`) return;
    if (!/^\* 127\.0\.0\.1:\d+ joined$/.test(line)) {
      throw new Error(`expected ${b.address}'s join, got ${line}`);
    }
  }
  throw new Error(`expected ${b.address}'s join, got five strangers'`);
}

/**
 * Starts a server on `toml` (listener "chat") with two UDP members joined.
 * @param toml the config @default {chatListener()}
 * @returns the server, the port and both members; dispose it with `await using`
 * @throws {Error} when the join is not announced
 */
export function udpPair(toml: string = chatListener()): Promise<ChatPair<UdpPeer>> {
  return pairOf(toml, async (port) => {
    const a = new UdpPeer(port);
    const b = new UdpPeer(port);
    try {
      await a.send("");
      await b.send("");
      await expectJoin(a, b);
      return [a, b];
    } catch (error) {
      await b[Symbol.asyncDispose]();
      await a[Symbol.asyncDispose]();
      throw error;
    }
  });
}

/**
 * Starts a server on `toml` (a TCP listener "chat") with two TCP members
 * joined; `a` has read its `/who` reply.
 * @param toml the config
 * @returns the server, the port and both members; dispose it with `await using`
 * @throws {Error} when the join is not announced
 */
export function tcpPair(toml: string): Promise<ChatPair<TcpPeer>> {
  return pairOf(toml, async (port) => {
    const a = await TcpPeer.connect(port);
    let b: TcpPeer | undefined;
    try {
      await a.send("/who");
      await a.next();
      b = await TcpPeer.connect(port);
      await expectJoin(a, b);
      return [a, b];
    } catch (error) {
      await b?.[Symbol.asyncDispose]();
      await a[Symbol.asyncDispose]();
      throw error;
    }
  });
}
