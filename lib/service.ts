/**
 * The seam between the supervisor and the services: a service is data (its
 * name, transports, option parser and an `open` function); an opened service
 * gives the supervisor a stream handler (TCP) or a datagram handler (UDP).
 * The supervisor owns sockets, limits, access rules, idle timers and shutdown.
 *
 * @module
 */

import type { ListenAddress } from "./address.ts";
import type { SlotCounter } from "./command_slots.ts";
import type { LinkBoard } from "./link_board.ts";
import type { LogFields, Logger } from "./log.ts";
import type { OptionReader } from "./option_reader.ts";
import type { SharedState } from "./shared_state.ts";

/** A socket type a listener may use. */
export type Transport = "tcp" | "udp";

/**
 * A TCP connection as a handler sees it: reads and writes are counted by the
 * supervisor for logs, metrics and idle detection.
 */
export interface Connection {
  /** The peer, with IPv4-mapped IPv6 addresses already unmapped. */
  readonly remoteAddr: Deno.NetAddr;
  /** The local address of the connection. */
  readonly localAddr: Deno.NetAddr;
  /** Reads into `p`; resolves to the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the count written. */
  write(p: Uint8Array): Promise<number>;
  /** Writes all of `p`, looping on short writes. */
  writeAll(p: Uint8Array): Promise<void>;
  /**
   * Writes what the socket takes right now, without waiting: the count, 0
   * when it would block, when an async write is still pending, or when the
   * connection has no such path (then only the async writes write). Never
   * throws: a failure surfaces on the next async write. Optional.
   */
  writeNow?(p: Uint8Array): number;
  /** Half-closes: the peer reads end of stream; reading stays possible. */
  closeWrite(): Promise<void>;
  /** The incoming bytes as a stream (counted); do not mix with `read`. */
  readonly readable: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** The outgoing bytes as a stream (counted); pipes do not close the connection. */
  readonly writable: WritableStream<Uint8Array>;
}

/** What a stream handler gets beside its connection. */
export interface ConnectionContext {
  /** Aborted when the daemon stops or the listener is removed. */
  readonly signal: AbortSignal;
  /** A logger carrying the listener's name and the peer. */
  readonly log: Logger;
  /** The peer as `host:port` (IPv6 in brackets), for messages. */
  readonly peer: string;
  /**
   * Marks the connection busy (a request in progress) or idle. The idle
   * timeout never cuts a busy connection, and a graceful stop closes idle
   * connections at once but lets busy ones finish, within the deadline.
   */
  setBusy(busy: boolean): void;
  /**
   * Adds fields to the connection's last log line (e.g. a program's exit
   * status); a noted `outcome` replaces a plain `closed`.
   */
  note(fields: LogFields): void;
  /**
   * Aborted when the supervisor closes this connection (idle_timeout,
   * shutdown, forced close), for a handler waiting on something other than
   * the socket — a program's stdin pipe, a relay's other side.
   */
  readonly closing: AbortSignal;
  /**
   * Marks that a request header (a frame's length prefix and JSON, or a
   * request line) has begun arriving and is not complete yet (true), or that
   * it is complete (false). A header pending longer than the listener's
   * `header_timeout` closes the connection: a client sending one byte a
   * second cannot hold a slot. Readers call it only when they must wait for
   * the rest of a header; one that arrives whole needs no call.
   */
  setHeaderPending(pending: boolean): void;
}

/** Serves one accepted connection until it ends or `context.signal` aborts. */
export type StreamHandler = (conn: Connection, context: ConnectionContext) => Promise<void>;

/**
 * Handles one datagram. `data` is a view of the listener's receive buffer:
 * it is only valid until the handler returns (or its promise settles).
 */
export type DatagramHandler = (data: Uint8Array, from: Deno.NetAddr) => void | Promise<void>;

/** What `Service.open` gets: the listener's identity and shared facilities. */
export interface ListenerContext {
  /** The listener's unique name. */
  readonly name: string;
  /** The listener's transport. */
  readonly transport: Transport;
  /** The address actually bound (port 0 resolved). */
  readonly addr: Deno.NetAddr;
  /** A logger carrying the listener's name. */
  readonly log: Logger;
  /** Aborted when this instance of the service is retired. */
  readonly signal: AbortSignal;
  /**
   * State shared by listeners of one supervisor (e.g. a chat room used by a
   * TCP and a UDP listener). Keys are namespaced by service, `"chat:room:x"`.
   */
  readonly shared: SharedState;
  /**
   * The supervisor's links to outside systems (a message bus): a service
   * registers the links it keeps open, for metrics and systemd's `STATUS=`.
   */
  readonly links: LinkBoard;
  /**
   * The supervisor's monotonic clock in ms (performance.now() unless a test
   * injects one). Services measure TTLs and rates with it, not Date.now().
   */
  readonly now: () => number;
  /** UDP only: sends a datagram from the listener's socket. */
  readonly send: (data: Uint8Array, to: Deno.NetAddr) => Promise<void>;
  /**
   * The listener's `max_concurrent` slots: one counter per listener name,
   * kept across reloads; with `[daemon] workers`, held by the supervisor so
   * the limit holds across all worker processes. @default {none: use `shared`}
   */
  readonly slots?: SlotCounter;
  /**
   * True when other worker processes serve this listener too: a file
   * another process is writing may look like a leftover of a crash.
   */
  readonly sharedWithWorkers?: boolean;
}

/** A service opened for one listener. */
export interface ServiceInstance {
  /** Serves a TCP connection (required for TCP listeners). */
  stream?: StreamHandler;
  /** Handles a UDP datagram (required for UDP listeners). */
  datagram?: DatagramHandler;
  /** Releases what `open` acquired; called once the listener stops using it. */
  close?(): Promise<void>;
  /**
   * What the service can say about itself for the status page, e.g.
   * `{ members: 3 }` or `{ running: 1 }` (read on each request; keep it cheap).
   */
  status?(): Readonly<Record<string, number>>;
}

/** What the embedded default config is run in: the environment it looks at. */
export interface EmbeddedEnvironment {
  /** The working directory. */
  readonly cwd: string;
  /** Reads an environment variable. */
  readonly env: (name: string) => string | undefined;
}

/**
 * What a service contributes to the embedded default config: listeners on
 * `127.0.0.1` at the service's `defaultPort`, or a note saying why none.
 */
export interface EmbeddedDefault {
  /** Each listener's keys besides `service` and `listen` (at least `name`). */
  readonly listeners: readonly Readonly<Record<string, string | boolean>>[];
  /** Why the service was left out, for the log (`"… skipped (…)"`). */
  readonly note?: string;
}

/** A built-in service: an entry of the static table in `handlers/mod.ts`. */
export interface Service<O = unknown> {
  /** The value of `service = "…"` in the config. */
  readonly name: string;
  /** Transports it supports; the first is its default. */
  readonly transports: readonly Transport[];
  /** The port `ADDR` means when a client gives a bare host. */
  readonly defaultPort: number;
  /**
   * Its part of the embedded default config (loopback only, and only what is
   * safe without a config file); absent when the default does not run it.
   */
  readonly embeddedDefault?: (environment: EmbeddedEnvironment) => EmbeddedDefault;
  /**
   * Whether its state lives in one process (a chat room): with
   * `[daemon] workers`, its listeners are served by the supervisor itself.
   */
  readonly perProcess?: boolean;
  /** The default `idle_timeout` of its TCP listeners, in ms (0: none). */
  readonly defaultIdleTimeoutMs?: number;
  /**
   * Reads the service's own keys. Problems are reported through the reader,
   * all at once; the return value is only used when there were none.
   * `address` is the listener's parsed `listen` value (undefined when it is
   * missing or invalid, which is reported already), for rules such as
   * "only on loopback".
   */
  parseOptions(reader: OptionReader, transport: Transport, address?: ListenAddress): O;
  /** A one-line summary of the options for `switchboard check`. */
  describe?(options: O): string;
  /**
   * Prepares the service for one listener (per-listener state, start-up
   * checks, clean-up of leftovers).
   * @throws {Error} when the service cannot run; the listener then fails to start
   */
  open(options: O, context: ListenerContext): ServiceInstance | Promise<ServiceInstance>;
}

/**
 * Types a service entry while keeping the table heterogeneous.
 * @param service the entry
 * @returns the same entry, typed for the table
 */
export function defineService<O>(service: Service<O>): Service<unknown> {
  return service as unknown as Service<unknown>;
}
