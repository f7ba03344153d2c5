/**
 * One running TCP listener: the accept loop, access rules, the connection
 * limit, per-source limits, the PROXY header and the TLS handshake (in that
 * order), idle timeouts, per-connection error isolation and graceful stop.
 *
 * @module
 */

import { AccessPolicy } from "./access.ts";
import type { AdmissionAnswer, AdmissionGate } from "./admission.ts";
import { AccessTimes } from "./access_times.ts";
import { formatHostPort, normalizeHost } from "./address.ts";
import { sendBanner } from "./banner.ts";
import type { ListenerConfig } from "./config.ts";
import { ConnectionSummary } from "./connection_log.ts";
import { HeaderDeadlines } from "./header_deadline.ts";
import type { Logger } from "./log.ts";
import { LogThrottle } from "./log_throttle.ts";
import { MeteredConn } from "./metered_conn.ts";
import { describeError, isDisconnect, isTransientAcceptError } from "./net_errors.ts";
import { PrefixedConn } from "./prefixed_conn.ts";
import { ProxyHeaderError, readProxyHeader } from "./proxy_protocol.ts";
import type { ConnectionContext, ServiceInstance } from "./service.ts";
import {
  copyStats,
  emptyStats,
  type ListenerStats,
  type RunningListener,
} from "./running_listener.ts";
import { settlesBy } from "./settles_by.ts";
import { type LimitReason, SourceTable } from "./source_limits.ts";
import type { AcceptedConn, StreamListener } from "./stream_listener.ts";
import { acceptTls, TlsHandshakeError } from "./tls_server.ts";
import { formatDuration, formatRate } from "./units.ts";

/** The service instance and settings new connections are served with. */
interface Generation {
  config: ListenerConfig;
  instance: ServiceInstance;
  controller: AbortController;
  policy: AccessPolicy;
  hours?: AccessTimes;
  /** The load balancers allowed to connect, when `proxy_protocol` is set. */
  proxyPeers?: AccessPolicy;
  connections: Set<Tracked>;
  /** The header_timeout clock of this generation's connections. */
  headers: HeaderDeadlines<Tracked>;
  retired: boolean;
}

/** Why the supervisor closed a connection (so the handler's error is expected). */
type CloseReason = "idle" | "header timeout" | "shutdown" | "forced";

interface Tracked {
  /** What the service reads and writes (after a PROXY header and TLS, if any). */
  conn: MeteredConn;
  /** The accepted connection itself. */
  wire: MeteredConn;
  generation: Generation;
  /** The source counted by the per-source limits, to release at the end. */
  source?: string;
  /** Gives back what an admission gate granted (workers), at the end. */
  release?: () => void;
  busy: boolean;
  reason?: CloseReason;
  /** Made when a handler asks for `context.closing`. */
  closer?: AbortController;
  done?: Promise<void>;
  lastBytes: number;
  idleSince: number;
}

const MAX_ACCEPT_BACKOFF_MS = 1000;
// How long handlers get to notice their closed connections after a forced close.
const FORCED_GRACE_MS = 2000;
// While stopping, a connection this long without a byte either way (and not
// busy) is idle and closed; the sweep looks this often.
const SHUTDOWN_QUIET_MS = 200;
const SHUTDOWN_SWEEP_MS = 50;

/** Options for {@linkcode TcpListener}. */
export interface TcpListenerOptions {
  /** The wall clock `access_times` is read with, ms since the epoch. @default {Date.now} */
  wallClock?: () => number;
  /**
   * Decides `max_connections` and the per-source limits instead of this
   * listener's own counts (a worker asks its supervisor). @default {counted here}
   */
  gate?: AdmissionGate;
}

/** Starts and stops one TCP listener; created by the supervisor. */
export class TcpListener implements RunningListener {
  #listener: StreamListener;
  #log: Logger;
  #generation: Generation;
  #old = new Set<Generation>();
  #active = 0;
  #stopping = false;
  #acceptLoop: Promise<void>;
  #idleTimer?: ReturnType<typeof setInterval>;
  #backoffTimer?: ReturnType<typeof setTimeout>;
  #wakeBackoff?: () => void;
  #refusedLog = new LogThrottle();
  #deniedLog = new LogThrottle();
  #hoursLog = new LogThrottle();
  #wallClock: () => number;
  #headerLog = new LogThrottle();
  #tlsLog = new LogThrottle();
  #proxyLog = new LogThrottle();
  #stats: ListenerStats = emptyStats("tcp");
  #sources?: SourceTable;
  #gate?: AdmissionGate;

  /**
   * Starts accepting on an already bound (or adopted) socket.
   * @param listener the socket (owned from now on)
   * @param config the listener's settings
   * @param instance the opened service
   * @param log a logger carrying the listener's name
   * @param options the wall clock (tests inject one)
   */
  constructor(
    listener: StreamListener,
    config: ListenerConfig,
    instance: ServiceInstance,
    log: Logger,
    options: TcpListenerOptions = {},
  ) {
    this.#listener = listener;
    this.#log = log;
    this.#wallClock = options.wallClock ?? Date.now;
    this.#gate = options.gate;
    this.#generation = this.#newGeneration(config, instance);
    this.#acceptLoop = this.#accept();
  }

  /** The settings new connections are served with. */
  get config(): ListenerConfig {
    return this.#generation.config;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Counters since start, including the bytes of connections still open. */
  get stats(): ListenerStats {
    const stats = copyStats(this.#stats);
    stats.active = this.#active;
    stats.sources = this.#sources?.size ?? 0;
    const service = this.#generation.instance.status?.();
    if (service) stats.service = service;
    for (const generation of [this.#generation, ...this.#old]) {
      for (const { conn } of generation.connections) {
        stats.bytesIn += conn.bytesIn;
        stats.bytesOut += conn.bytesOut;
      }
    }
    return stats;
  }

  #newGeneration(config: ListenerConfig, instance: ServiceInstance): Generation {
    // The source table outlives generations: connections opened under the
    // old settings still count against the new ones.
    if (config.limits) {
      if (this.#sources) this.#sources.configure(config.limits);
      else this.#sources = new SourceTable(config.limits);
    }
    const generation: Generation = {
      config,
      instance,
      controller: new AbortController(),
      policy: new AccessPolicy(config.allow, config.deny),
      hours: config.accessTimes && new AccessTimes(config.accessTimes, { now: this.#wallClock }),
      connections: new Set(),
      headers: new HeaderDeadlines<Tracked>(
        config.headerTimeoutMs,
        (tracked) => this.#headerTimedOut(tracked),
      ),
      retired: false,
    };
    if (config.proxyProtocol.length > 0) {
      generation.proxyPeers = new AccessPolicy(config.proxyProtocol, []);
    }
    return generation;
  }

  #headerTimedOut(tracked: Tracked): void {
    if (tracked.conn.closed) return;
    const { hostname, port } = tracked.conn.remoteAddr;
    const count = this.#headerLog.hit(performance.now());
    if (count > 0) {
      this.#log.info(
        `Connection closed: request header not complete within header_timeout (${
          formatDuration(tracked.generation.config.headerTimeoutMs)
        })`,
        { peer: formatHostPort(hostname, port), count },
      );
    }
    this.#close(tracked, "header timeout");
  }

  /**
   * Serves new connections with new settings and a new service instance;
   * connections already open finish with the old ones. The socket stays.
   * @param config the new settings (same address and transport)
   * @param instance the newly opened service
   */
  replace(config: ListenerConfig, instance: ServiceInstance): void {
    const old = this.#generation;
    this.#generation = this.#newGeneration(config, instance);
    this.#retire(old);
    this.#disarmIdleTimer();
    if (this.#active > 0) this.#armIdleTimer();
  }

  // A replaced generation takes no new connections; its open connections
  // finish under their old settings, then its instance is closed.
  #retire(generation: Generation): void {
    generation.retired = true;
    if (generation.connections.size === 0) void this.#closeInstance(generation);
    else this.#old.add(generation);
  }

  async #closeInstance(generation: Generation): Promise<void> {
    this.#old.delete(generation);
    generation.controller.abort();
    generation.headers[Symbol.dispose]();
    try {
      await generation.instance.close?.();
    } catch (error) {
      this.#log.warn(`Service did not close cleanly: ${describeError(error)}`);
    }
  }

  async #accept(): Promise<void> {
    let backoff = 0;
    for (;;) {
      let conn: AcceptedConn;
      try {
        conn = await this.#listener.accept();
        backoff = 0;
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) return;
        if (isTransientAcceptError(error)) continue;
        // Out of file descriptors or memory: wait, then try again.
        backoff = Math.min(backoff === 0 ? 5 : backoff * 2, MAX_ACCEPT_BACKOFF_MS);
        this.#log.warn(`Accept failed, retrying in ${backoff}ms: ${describeError(error)}`);
        await this.#sleep(backoff);
        if (this.#stopping) return;
        continue;
      }
      this.#admit(conn);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wakeBackoff = () => resolve();
      this.#backoffTimer = setTimeout(resolve, ms);
    }).then(() => {
      clearTimeout(this.#backoffTimer);
      this.#backoffTimer = undefined;
      this.#wakeBackoff = undefined;
    });
  }

  #admit(conn: AcceptedConn): void {
    const generation = this.#generation;
    const raw = conn.remoteAddr as Deno.NetAddr;
    const hostname = normalizeHost(raw.hostname);
    const peer = formatHostPort(hostname, raw.port);
    // Behind a load balancer the client is known only from the PROXY header:
    // access rules and per-source limits wait for it.
    const proxied = generation.proxyPeers !== undefined;
    if (proxied && !generation.proxyPeers!.allows(hostname)) {
      this.#stats.proxyRejected!.untrusted++;
      closeQuietly(conn);
      const count = this.#proxyLog.hit(performance.now());
      if (count > 0) {
        this.#log.warn("Connection closed: peer is not listed in proxy_protocol", { peer, count });
      }
      return;
    }
    if (!proxied && !this.#allowed(generation, hostname, peer)) {
      closeQuietly(conn);
      return;
    }
    if (generation.hours && !generation.hours.allows()) {
      this.#stats.denied++;
      closeQuietly(conn);
      const count = this.#hoursLog.hit(performance.now());
      if (count > 0) this.#log.info("Connection refused outside access_times", { peer, count });
      return;
    }
    if (this.#gate) {
      void this.#admitThroughGate(this.#gate, conn, generation, proxied ? undefined : hostname);
      return;
    }
    if (this.#active >= generation.config.maxConnections) {
      this.#refuseFull(generation, peer);
      closeQuietly(conn);
      return;
    }
    let source: string | undefined;
    if (!proxied) {
      const admitted = this.#limit(generation, hostname, peer);
      if (admitted === false) {
        closeQuietly(conn);
        return;
      }
      source = admitted;
    }
    this.#track(conn, generation, source);
  }

  #refuseFull(generation: Generation, peer: string): void {
    this.#stats.refused++;
    const count = this.#refusedLog.hit(performance.now());
    if (count > 0) {
      this.#log.warn(
        `Connection refused: max_connections (${generation.config.maxConnections}) reached`,
        { peer, count },
      );
    }
  }

  /**
   * Admits through the gate (a worker asks its supervisor): the connection
   * waits, unserved, for the answer; a refusal is counted and logged here.
   * A reload while it waited retires `generation`: what was granted goes
   * back and the connection is admitted afresh under the current settings
   * (access rules, limits, instance). Never rejects: any failure closes the
   * connection and is logged.
   */
  async #admitThroughGate(
    gate: AdmissionGate,
    conn: AcceptedConn,
    generation: Generation,
    host: string | undefined,
  ): Promise<void> {
    try {
      let answer: AdmissionAnswer;
      try {
        answer = await gate.admit({
          listener: generation.config.name,
          connection: true,
          maxConnections: generation.config.maxConnections,
          host,
          limits: host === undefined ? undefined : generation.config.limits,
        });
      } catch {
        closeQuietly(conn);
        return;
      }
      if (answer.admitted && generation.retired && !this.#stopping) {
        answer.release();
        this.#admit(conn);
        return;
      }
      if (!answer.admitted || this.#stopping) {
        if (answer.admitted) answer.release();
        else this.#refusedByGate(answer, generation, conn);
        closeQuietly(conn);
        return;
      }
      this.#track(conn, generation, undefined, answer.release);
    } catch (error) {
      closeQuietly(conn);
      this.#log.warn(`Connection closed: admission failed: ${describeError(error)}`);
    }
  }

  #refusedByGate(
    answer: AdmissionAnswer & { admitted: false },
    generation: Generation,
    conn: { remoteAddr: Deno.Addr },
    client?: string,
  ): void {
    const raw = conn.remoteAddr as Deno.NetAddr;
    const peer = client ?? formatHostPort(normalizeHost(raw.hostname), raw.port);
    if (answer.reason === "max_connections") {
      this.#refuseFull(generation, peer);
      return;
    }
    const limited = this.#stats.limited;
    // A per-source refusal on a listener without limits (a confused broker): not counted.
    if (!limited || !generation.config.limits || !(answer.reason in limited)) return;
    limited[answer.reason]++;
    if (answer.log) this.#logLimited(generation, answer.reason, peer, answer.source ?? "?");
  }

  #logLimited(generation: Generation, reason: LimitReason, peer: string, source: string): void {
    const limits = generation.config.limits!;
    const why = reason === "rate"
      ? `rate (${formatRate(limits.rate!)}, burst ${limits.burst}) exceeded`
      : `max_per_source (${limits.maxPerSource}) reached`;
    this.#log.warn(`Connection refused: ${why}`, { peer, source, reason });
  }

  #track(
    conn: AcceptedConn,
    generation: Generation,
    source: string | undefined,
    release?: () => void,
  ): void {
    const raw = conn.remoteAddr as Deno.NetAddr;
    const hostname = normalizeHost(raw.hostname);
    const peer = formatHostPort(hostname, raw.port);
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // The peer may already be gone; the handler will find out.
    }
    this.#stats.accepted++;
    this.#active++;
    const wire = new MeteredConn(conn, { transport: "tcp", hostname, port: raw.port }, {
      direct: true,
    });
    const tracked: Tracked = {
      conn: wire,
      wire,
      generation,
      source,
      release,
      busy: false,
      lastBytes: 0,
      idleSince: performance.now(),
    };
    generation.connections.add(tracked);
    tracked.done = this.#serve(tracked, peer);
    this.#armIdleTimer();
  }

  /** Applies allow/deny to the client; false (counted and logged) when denied. */
  #allowed(generation: Generation, hostname: string, peer: string): boolean {
    if (generation.policy.allows(hostname)) return true;
    this.#stats.denied++;
    const count = this.#deniedLog.hit(performance.now());
    if (count > 0) this.#log.info("Connection denied by access rules", { peer, count });
    return false;
  }

  /**
   * Applies the per-source limits to the client: its source key when
   * admitted (undefined without limits), false (counted and logged) when not.
   */
  #limit(generation: Generation, hostname: string, peer: string): string | undefined | false {
    const table = this.#sources;
    const limits = generation.config.limits;
    if (!table || !limits) return undefined;
    const source = table.keyOf(hostname);
    const now = performance.now();
    const reason = table.admit(source, now);
    if (reason === undefined) return source;
    this.#stats.limited![reason]++;
    if (table.shouldLog(source, now)) this.#logLimited(generation, reason, peer, source);
    return false;
  }

  /**
   * What comes before the service, in DESIGN order: the PROXY header (then
   * access rules and per-source limits for the client it names), then the
   * TLS handshake. Returns the peer to log, or undefined when the
   * connection was refused (and is closed).
   */
  async #preamble(tracked: Tracked, peer: string): Promise<string | undefined> {
    const { generation, wire } = tracked;
    const config = generation.config;
    const timeoutMs = config.headerTimeoutMs > 0 ? config.headerTimeoutMs : 2 ** 31 - 1;
    let conn: MeteredConn | PrefixedConn = wire;
    let client = wire.remoteAddr;
    let local = wire.localAddr;
    if (generation.proxyPeers) {
      let header;
      try {
        const read = await readProxyHeader(wire, timeoutMs);
        header = read.header;
        conn = new PrefixedConn(wire, read.rest);
      } catch (error) {
        if (!(error instanceof ProxyHeaderError)) throw error;
        if (tracked.reason === undefined) {
          this.#preambleFailed(error, this.#stats.proxyRejected!, this.#proxyLog, peer);
        }
        return undefined;
      }
      if (header.source && header.destination) {
        client = header.source;
        local = header.destination;
      }
      const via = peer;
      peer = formatHostPort(client.hostname, client.port);
      if (!this.#allowed(generation, client.hostname, peer)) return undefined;
      if (this.#gate) {
        if (!(await this.#limitThroughGate(this.#gate, tracked, client.hostname, peer))) {
          return undefined;
        }
      } else {
        const admitted = this.#limit(generation, client.hostname, peer);
        if (admitted === false) return undefined;
        tracked.source = admitted;
      }
      if (this.#log.enabled("debug")) this.#log.debug("PROXY header accepted", { peer, via });
    }
    const tls = config.tls;
    if (tls) {
      try {
        const secure = await acceptTls(conn, {
          context: tls.context,
          timeoutMs,
          remoteAddr: client,
          localAddr: local,
        });
        tracked.conn = new MeteredConn(secure, client, local);
      } catch (error) {
        if (!(error instanceof TlsHandshakeError)) throw error;
        if (tracked.reason === undefined) {
          this.#preambleFailed(error, this.#stats.tlsFailures!, this.#tlsLog, peer);
        }
        return undefined;
      }
    } else if (conn !== wire) {
      tracked.conn = new MeteredConn(conn, client, local);
    }
    return peer;
  }

  /** The per-source limits for the client a PROXY header named, asked of the gate. */
  async #limitThroughGate(
    gate: AdmissionGate,
    tracked: Tracked,
    host: string,
    peer: string,
  ): Promise<boolean> {
    const { config } = tracked.generation;
    if (!config.limits) return true;
    const answer = await gate.admit({
      listener: config.name,
      connection: false,
      maxConnections: config.maxConnections,
      host,
      limits: config.limits,
    });
    if (!answer.admitted) {
      this.#refusedByGate(answer, tracked.generation, tracked.wire, peer);
      return false;
    }
    // Closed (shutdown, a timeout) while it waited: nothing is served.
    if (this.#stopping || tracked.reason !== undefined || tracked.wire.closed) {
      answer.release();
      return false;
    }
    const before = tracked.release;
    tracked.release = () => {
      before?.();
      answer.release();
    };
    return true;
  }

  /**
   * Counts a failed PROXY header or TLS handshake by its reason and logs it,
   * throttled; a client that left before sending anything is a debug line
   * (health checks connect and close).
   */
  #preambleFailed(
    error: ProxyHeaderError | TlsHandshakeError,
    counts: Record<string, number>,
    throttle: LogThrottle,
    peer: string,
  ): void {
    if (error.reason === "closed") {
      this.#log.debug(error.message, { peer });
      return;
    }
    counts[error.reason] = (counts[error.reason] ?? 0) + 1;
    const count = throttle.hit(performance.now());
    if (count > 0) this.#log.info(`Connection closed: ${error.message}`, { peer, count });
  }

  async #serve(tracked: Tracked, peer: string): Promise<void> {
    const { generation } = tracked;
    const summary = new ConnectionSummary();
    let outcome = "closed";
    let log = this.#log.child({ peer });
    try {
      if (generation.proxyPeers || generation.config.tls) {
        const client = await this.#preamble(tracked, peer);
        if (client === undefined) {
          outcome = "refused";
          return;
        }
        if (client !== peer) log = this.#log.child({ peer: client, via: peer });
        peer = client;
      }
      const context: ConnectionContext = {
        signal: generation.controller.signal,
        log,
        peer,
        setBusy: (busy) => {
          tracked.busy = busy;
        },
        note: (fields) => summary.note(fields),
        get closing() {
          return (tracked.closer ??= new AbortController()).signal;
        },
        setHeaderPending: (pending) => {
          if (pending) generation.headers.start(tracked);
          else generation.headers.stop(tracked);
        },
      };
      // The banner goes out after the PROXY header and the TLS handshake, on
      // the connection the service uses.
      await sendBanner(tracked.conn, generation.config.banner);
      await generation.instance.stream!(tracked.conn, context);
    } catch (error) {
      if (tracked.reason !== undefined) {
        outcome = tracked.reason;
      } else if (isDisconnect(error)) {
        outcome = "peer reset";
        log.debug(`Connection lost: ${describeError(error)}`);
      } else {
        outcome = "handler error";
        log.warn(`Handler failed: ${describeError(error)}`);
      }
    } finally {
      const conn = tracked.conn;
      conn.close();
      generation.headers.stop(tracked);
      tracked.wire.close();
      generation.connections.delete(tracked);
      this.#active--;
      if (tracked.source !== undefined) this.#sources?.release(tracked.source);
      tracked.release?.();
      this.#stats.bytesIn += conn.bytesIn;
      this.#stats.bytesOut += conn.bytesOut;
      if (
        generation.retired && generation.connections.size === 0 && generation !== this.#generation
      ) {
        void this.#closeInstance(generation);
      }
      summary.write(log, {
        outcome: tracked.reason ?? outcome,
        bytesIn: conn.bytesIn,
        bytesOut: conn.bytesOut,
      });
      if (this.#active === 0) this.#disarmIdleTimer();
    }
  }

  #close(tracked: Tracked, reason: CloseReason): void {
    if (tracked.conn.closed && tracked.wire.closed) return;
    tracked.reason ??= reason;
    tracked.conn.close();
    tracked.closer?.abort();
    tracked.wire.close();
  }

  #armIdleTimer(): void {
    if (this.#idleTimer !== undefined) return;
    const timeouts = [this.#generation, ...this.#old].map((g) => g.config.idleTimeoutMs);
    const shortest = Math.min(...timeouts.filter((ms) => ms > 0));
    if (!Number.isFinite(shortest)) return;
    // Checks a few times per timeout: a connection closes between 1× and 1.25× its timeout.
    const tick = Math.max(10, Math.floor(shortest / 4));
    this.#idleTimer = setInterval(() => this.#sweepIdle(), tick);
  }

  #disarmIdleTimer(): void {
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #sweepIdle(): void {
    const now = performance.now();
    for (const generation of [this.#generation, ...this.#old]) {
      const timeout = generation.config.idleTimeoutMs;
      if (timeout <= 0) continue;
      for (const tracked of generation.connections) {
        const bytes = tracked.conn.bytesIn + tracked.conn.bytesOut;
        if (tracked.busy || bytes !== tracked.lastBytes) {
          tracked.lastBytes = bytes;
          tracked.idleSince = now;
        } else if (now - tracked.idleSince >= timeout) {
          this.#close(tracked, "idle");
        }
      }
    }
  }

  /**
   * Stops gracefully: closes the socket, closes idle connections, lets busy
   * ones finish until `deadline`, then closes the rest.
   * @param deadline a `performance.now()` time by which everything is closed
   */
  async stop(deadline: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    closeQuietly(this.#listener);
    this.#wakeBackoff?.();
    await this.#acceptLoop;
    const generations = [this.#generation, ...this.#old];
    for (const generation of generations) {
      generation.retired = true;
      generation.controller.abort();
    }
    const all = generations.flatMap((g) => [...g.connections]);
    const drained = Promise.all(all.map((t) => t.done));
    await this.#closeWhenQuiet(all, drained, deadline);
    if (!(await settlesBy(drained, deadline))) {
      const left = all.filter((t) => !t.conn.closed);
      this.#log.warn(`Shutdown timeout: closing ${left.length} busy connection(s)`);
      for (const tracked of left) this.#close(tracked, "forced");
      if (!(await settlesBy(drained, performance.now() + FORCED_GRACE_MS))) {
        this.#log.error("Handlers did not finish after their connections were closed");
      }
    }
    this.#disarmIdleTimer();
    await Promise.all(generations.map((g) => this.#closeInstance(g)));
  }
  /**
   * While stopping, closes each connection once it is quiet: not busy and
   * no byte in either direction for SHUTDOWN_QUIET_MS. A stream still
   * flowing (an echo client sending, pipelined requests) is served until it
   * pauses or the deadline: closing it mid-flow would drop what the client
   * sent and the kernel still holds. Returns when all are done or at the
   * deadline.
   */
  async #closeWhenQuiet(
    all: readonly Tracked[],
    drained: Promise<unknown>,
    deadline: number,
  ): Promise<void> {
    let over = false;
    void drained.then(() => over = true);
    const marks = new Map<Tracked, { bytes: number; since: number }>();
    while (!over && performance.now() < deadline) {
      const now = performance.now();
      for (const tracked of all) {
        if (tracked.conn.closed) continue;
        const bytes = tracked.conn.bytesIn + tracked.conn.bytesOut;
        const mark = marks.get(tracked);
        if (!mark || tracked.busy || mark.bytes !== bytes) {
          marks.set(tracked, { bytes, since: now });
        } else if (now - mark.since >= SHUTDOWN_QUIET_MS) {
          this.#close(tracked, "shutdown");
        }
      }
      const wait = Math.min(SHUTDOWN_SWEEP_MS, deadline - performance.now());
      if (wait > 0) await settlesBy(drained, performance.now() + wait);
    }
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
