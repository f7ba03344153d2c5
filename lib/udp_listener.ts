/**
 * One running UDP listener: a receive loop, the reflection guard (datagrams
 * from ports 0, 7, 13, 19 and 37 are dropped), access rules, the per-source
 * rate, and error isolation per datagram.
 *
 * Two socket kinds, one behaviour: where Deno FFI works (`deno run` on
 * Linux) the socket is an {@linkcode MmsgSocket} — batches of datagrams per
 * `recvmmsg`, replies queued during a batch leave in one `sendmmsg`;
 * elsewhere (the offline executable, `SWITCHBOARD_UDP=portable`) a
 * `Deno.DatagramConn` read one datagram at a time into reused buffers.
 *
 * @module
 */

import { AccessPolicy } from "./access.ts";
import { formatHostPort, normalizeHost } from "./address.ts";
import type { ListenerConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { LogThrottle } from "./log_throttle.ts";
import { describeError } from "./net_errors.ts";
import {
  copyStats,
  emptyStats,
  type ListenerStats,
  type RunningListener,
} from "./running_listener.ts";
import type { ServiceInstance } from "./service.ts";
import { settlesBy } from "./settles_by.ts";
import { SourceTable } from "./source_limits.ts";
import { formatRate } from "./units.ts";
import { MmsgSocket } from "./udp_mmsg.ts";

/** A bound UDP socket a listener serves: FFI-driven or Deno's. */
export type UdpSocket = MmsgSocket | Deno.DatagramConn;

/**
 * Binds a UDP socket: through libc (recvmmsg/sendmmsg) when FFI can be
 * used, else with `Deno.listenDatagram`.
 * @param options the IP literal (`::` is dual-stack), port (0: any free
 *   one), and `reuseAddress` (Deno's option: SO_REUSEADDR and SO_REUSEPORT)
 * @returns the bound socket
 * @throws {Deno.errors.AddrInUse} and the other errors of `Deno.listenDatagram`
 */
export function bindUdp(
  options: { hostname: string; port: number; reuseAddress?: boolean },
): UdpSocket {
  return MmsgSocket.bind(options) ??
    Deno.listenDatagram({
      hostname: options.hostname,
      port: options.port,
      transport: "udp",
      reuseAddress: options.reuseAddress ?? false,
    });
}

// Larger than the largest UDP payload (65,507 bytes over IPv4), so nothing is truncated.
const RECEIVE_BUFFER = 65536;
const MAX_RECEIVE_BACKOFF_MS = 1000;
// Datagrams a portable listener may have in its handlers at once.
const PORTABLE_BUFFERS = 4;

/**
 * Whether a datagram from `port` must be ignored: port 0 cannot be answered,
 * and echo (7), daytime (13), chargen (19) and time (37) reflect, so two
 * reflecting services could otherwise bounce packets forever.
 * @param port the source port
 * @returns true when the datagram is to be dropped
 */
export function isReflectionPort(port: number): boolean {
  return port === 0 || port === 7 || port === 13 || port === 19 || port === 37;
}

interface Generation {
  config: ListenerConfig;
  instance: ServiceInstance;
  policy: AccessPolicy;
}

/** Receives datagrams for one UDP listener; created by the supervisor. */
export class UdpListener implements RunningListener {
  #socket: UdpSocket;
  #log: Logger;
  #generation?: Generation;
  #stopping = false;
  #loop?: Promise<void>;
  #failures = new LogThrottle();
  #denials = new LogThrottle();
  #stats: ListenerStats = emptyStats("udp");
  // Kept across reloads, like the socket: a source's bucket is not refilled by a reload.
  #sources?: SourceTable;
  #pendingConfig: ListenerConfig;
  // Sends not yet done, so `stop` closes the socket only after they are.
  #sending = 0;
  #sent?: PromiseWithResolvers<void>;

  /**
   * Takes ownership of a bound socket; call `start` once the service is open.
   * @param socket the bound datagram socket
   * @param config the listener's settings
   * @param log a logger carrying the listener's name
   */
  constructor(socket: UdpSocket, config: ListenerConfig, log: Logger) {
    this.#socket = socket;
    if (socket instanceof MmsgSocket) {
      // The FFI socket counts its own sends and bytes: one promise per send.
      this.send = (data, to) => socket.send(data, to) as Promise<unknown> as Promise<void>;
    }
    this.#pendingConfig = config;
    this.#log = log;
  }

  /**
   * Sends a datagram from this listener's socket (the service's `send`).
   * @param data the payload
   * @param to the destination
   * @throws {Deno.errors.BadResource} after the listener stopped
   */
  send = async (data: Uint8Array, to: Deno.NetAddr): Promise<void> => {
    this.#sending++;
    try {
      const n = await (this.#socket as Deno.DatagramConn).send(data, to);
      this.#stats.bytesOut += n;
    } finally {
      if (--this.#sending === 0 && this.#sent) {
        this.#sent.resolve();
        this.#sent = undefined;
      }
    }
  };

  /** Settles once no send is in flight. */
  #allSent(): Promise<void> {
    if (this.#socket instanceof MmsgSocket) return this.#socket.allSent();
    if (this.#sending === 0) return Promise.resolve();
    this.#sent ??= Promise.withResolvers<void>();
    return this.#sent.promise;
  }

  /**
   * Starts receiving, handing datagrams to `instance`.
   * @param instance the opened service
   */
  start(instance: ServiceInstance): void {
    this.#generation = this.#newGeneration(this.#pendingConfig, instance);
    const socket = this.#socket;
    this.#loop = socket instanceof MmsgSocket
      ? this.#receiveBatches(socket)
      : this.#receive(socket);
  }

  /** The settings datagrams are served with. */
  get config(): ListenerConfig {
    return this.#generation?.config ?? this.#pendingConfig;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#socket.addr as Deno.NetAddr;
  }

  /** Counters since start. */
  get stats(): ListenerStats {
    if (this.#socket instanceof MmsgSocket) this.#stats.bytesOut = this.#socket.bytesOut;
    const stats = copyStats(this.#stats);
    stats.sources = this.#sources?.size ?? 0;
    const service = this.#generation?.instance.status?.();
    if (service) stats.service = service;
    return stats;
  }

  #newGeneration(config: ListenerConfig, instance: ServiceInstance): Generation {
    if (config.limits?.rate) {
      if (this.#sources) this.#sources.configure(config.limits);
      else this.#sources = new SourceTable(config.limits);
    } else {
      this.#sources = undefined;
    }
    return { config, instance, policy: new AccessPolicy(config.allow, config.deny) };
  }

  /**
   * Serves later datagrams with new settings and a new service instance;
   * the old instance is closed. The socket stays.
   * @param config the new settings
   * @param instance the newly opened service
   */
  replace(config: ListenerConfig, instance: ServiceInstance): void {
    const old = this.#generation;
    this.#generation = this.#newGeneration(config, instance);
    if (old) void this.#closeInstance(old.instance);
  }

  async #closeInstance(instance: ServiceInstance): Promise<void> {
    try {
      await instance.close?.();
    } catch (error) {
      this.#log.warn(`Service did not close cleanly: ${describeError(error)}`);
    }
  }

  // One datagram per receive, into a ring of buffers: the next receive
  // starts while the last reply is still being sent (a buffer is reused
  // only once its handler's promise has settled, so `data` stays valid).
  async #receive(socket: Deno.DatagramConn): Promise<void> {
    const buffers = Array.from({ length: PORTABLE_BUFFERS }, () => new Uint8Array(RECEIVE_BUFFER));
    const busy: (Promise<void> | undefined)[] = new Array(PORTABLE_BUFFERS).fill(undefined);
    let next = 0;
    let backoff = 0;
    for (;;) {
      const held = busy[next];
      if (held) {
        await held;
        busy[next] = undefined;
      }
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        [data, from] = (await socket.receive(buffers[next])) as [Uint8Array, Deno.NetAddr];
        backoff = 0;
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) break;
        backoff = await this.#backOff(backoff, error);
        continue;
      }
      busy[next] = this.#dispatch(data, from);
      next = (next + 1) % PORTABLE_BUFFERS;
    }
    for (const held of busy) await held;
  }

  // A batch at a time: every datagram of it is handed to the service, the
  // replies they queued leave in one sendmmsg, and the slots are reused
  // only once every handler's promise has settled (`data` stays valid).
  async #receiveBatches(socket: MmsgSocket): Promise<void> {
    let backoff = 0;
    const pending: Promise<void>[] = [];
    for (;;) {
      let n: number;
      try {
        const received = socket.receive();
        n = typeof received === "number" ? received : await received;
        backoff = 0;
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) return;
        backoff = await this.#backOff(backoff, error);
        continue;
      }
      for (let i = 0; i < n; i++) {
        const handled = this.#dispatch(socket.data(i), socket.from(i));
        if (handled) pending.push(handled);
      }
      socket.flush();
      if (pending.length === 0) continue;
      for (const handled of pending) await handled;
      pending.length = 0;
    }
  }

  async #backOff(previous: number, error: unknown): Promise<number> {
    const backoff = Math.min(previous === 0 ? 5 : previous * 2, MAX_RECEIVE_BACKOFF_MS);
    this.#log.warn(`Receive failed, retrying in ${backoff}ms: ${describeError(error)}`);
    await new Promise((resolve) => setTimeout(resolve, backoff));
    return backoff;
  }

  /**
   * Screens one datagram (reflection, access, rate) and hands it to the
   * service; a promise (never rejecting) while the handler is still busy.
   */
  #dispatch(data: Uint8Array, from: Deno.NetAddr): Promise<void> | undefined {
    const stats = this.#stats;
    const generation = this.#generation!;
    if (isReflectionPort(from.port)) {
      stats.dropped!++;
      return undefined;
    }
    if (!generation.policy.open && !generation.policy.allows(normalizeHost(from.hostname))) {
      stats.denied++;
      stats.dropped!++;
      const count = this.#denials.hit(performance.now());
      if (count > 0) {
        const peer = formatHostPort(normalizeHost(from.hostname), from.port);
        this.#log.info("Datagram denied by access rules", { peer, count });
      }
      return undefined;
    }
    const sources = this.#sources;
    if (sources && !this.#withinRate(sources, generation.config, from)) return undefined;
    stats.datagrams!++;
    stats.bytesIn += data.length;
    let pending: void | Promise<void>;
    try {
      pending = generation.instance.datagram!(data, from);
    } catch (error) {
      this.#handlerFailed(error, from);
      return undefined;
    }
    if (!pending) return undefined;
    return pending.then(undefined, (error) => this.#handlerFailed(error, from));
  }

  #handlerFailed(error: unknown, from: Deno.NetAddr): void {
    if (this.#stopping) return;
    const count = this.#failures.hit(performance.now());
    if (count > 0) {
      const peer = formatHostPort(normalizeHost(from.hostname), from.port);
      this.#log.warn(`Datagram handler failed: ${describeError(error)}`, { peer, count });
    }
  }

  /** Takes a token of the sender's source; false (counted, logged) when it has none. */
  #withinRate(sources: SourceTable, config: ListenerConfig, from: Deno.NetAddr): boolean {
    const host = normalizeHost(from.hostname);
    const source = sources.keyOf(host);
    const now = performance.now();
    if (sources.allowDatagram(source, now)) return true;
    this.#stats.limited!.rate++;
    this.#stats.dropped!++;
    if (sources.shouldLog(source, now)) {
      const limits = config.limits!;
      this.#log.warn(
        `Datagrams dropped: rate (${formatRate(limits.rate!)}, burst ${limits.burst}) exceeded`,
        { peer: formatHostPort(host, from.port), source, reason: "rate" },
      );
    }
    return false;
  }

  /**
   * Stops: lets the service say goodbye (bounded by `deadline`), then closes
   * the socket.
   * @param deadline a `performance.now()` time by which everything is closed
   */
  async stop(deadline: number): Promise<void> {
    if (this.#stopping) return;
    const instance = this.#generation?.instance;
    if (instance) {
      const closing = this.#closeInstance(instance);
      if (!(await settlesBy(closing, deadline))) {
        this.#log.warn("Shutdown timeout: the service did not finish closing");
      }
    }
    this.#stopping = true;
    // Replies and fan-outs already handed to the kernel finish before the
    // socket goes: a send still running on a closed socket is a lost datagram.
    if (!(await settlesBy(this.#allSent(), deadline))) {
      this.#log.warn("Shutdown timeout: datagrams were still being sent");
    }
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}
