/**
 * One running TCP listener: the accept loop, access rules, the connection
 * limit, idle timeouts, per-connection error isolation and graceful stop.
 *
 * @module
 */

import { AccessPolicy } from "./access.ts";
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
import type { ConnectionContext, ServiceInstance } from "./service.ts";
import { emptyStats, type ListenerStats, type RunningListener } from "./running_listener.ts";
import { settlesBy } from "./settles_by.ts";
import { formatDuration } from "./units.ts";

/** The service instance and settings new connections are served with. */
interface Generation {
  config: ListenerConfig;
  instance: ServiceInstance;
  controller: AbortController;
  policy: AccessPolicy;
  hours?: AccessTimes;
  connections: Set<Tracked>;
  /** The header_timeout clock of this generation's connections. */
  headers: HeaderDeadlines<Tracked>;
  retired: boolean;
}

/** Why the supervisor closed a connection (so the handler's error is expected). */
type CloseReason = "idle" | "header timeout" | "shutdown" | "forced";

interface Tracked {
  conn: MeteredConn;
  generation: Generation;
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
}

/** Starts and stops one TCP listener; created by the supervisor. */
export class TcpListener implements RunningListener {
  #listener: Deno.TcpListener;
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
  #stats: ListenerStats = emptyStats("tcp");

  /**
   * Starts accepting on an already bound socket.
   * @param listener the bound socket (owned from now on)
   * @param config the listener's settings
   * @param instance the opened service
   * @param log a logger carrying the listener's name
   * @param options the wall clock (tests inject one)
   */
  constructor(
    listener: Deno.TcpListener,
    config: ListenerConfig,
    instance: ServiceInstance,
    log: Logger,
    options: TcpListenerOptions = {},
  ) {
    this.#listener = listener;
    this.#log = log;
    this.#wallClock = options.wallClock ?? Date.now;
    this.#generation = this.#newGeneration(config, instance);
    this.#acceptLoop = this.#accept();
  }

  /** The settings new connections are served with. */
  get config(): ListenerConfig {
    return this.#generation.config;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** Counters since start, including the bytes of connections still open. */
  get stats(): ListenerStats {
    const stats = { ...this.#stats, active: this.#active };
    for (const generation of [this.#generation, ...this.#old]) {
      for (const { conn } of generation.connections) {
        stats.bytesIn += conn.bytesIn;
        stats.bytesOut += conn.bytesOut;
      }
    }
    return stats;
  }

  #newGeneration(config: ListenerConfig, instance: ServiceInstance): Generation {
    return {
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
      let conn: Deno.TcpConn;
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

  #admit(conn: Deno.TcpConn): void {
    const generation = this.#generation;
    const raw = conn.remoteAddr;
    const hostname = normalizeHost(raw.hostname);
    const peer = formatHostPort(hostname, raw.port);
    if (!generation.policy.allows(hostname)) {
      this.#stats.denied++;
      closeQuietly(conn);
      const count = this.#deniedLog.hit(performance.now());
      if (count > 0) this.#log.info("Connection denied by access rules", { peer, count });
      return;
    }
    if (generation.hours && !generation.hours.allows()) {
      this.#stats.denied++;
      closeQuietly(conn);
      const count = this.#hoursLog.hit(performance.now());
      if (count > 0) this.#log.info("Connection refused outside access_times", { peer, count });
      return;
    }
    if (this.#active >= generation.config.maxConnections) {
      this.#stats.refused++;
      closeQuietly(conn);
      const count = this.#refusedLog.hit(performance.now());
      if (count > 0) {
        this.#log.warn(
          `Connection refused: max_connections (${generation.config.maxConnections}) reached`,
          { peer, count },
        );
      }
      return;
    }
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // The peer may already be gone; the handler will find out.
    }
    this.#stats.accepted++;
    this.#active++;
    const tracked: Tracked = {
      conn: new MeteredConn(conn, { transport: "tcp", hostname, port: raw.port }),
      generation,
      busy: false,
      lastBytes: 0,
      idleSince: performance.now(),
    };
    generation.connections.add(tracked);
    tracked.done = this.#serve(tracked, peer);
    this.#armIdleTimer();
  }

  async #serve(tracked: Tracked, peer: string): Promise<void> {
    const { conn, generation } = tracked;
    const log = this.#log.child({ peer });
    const summary = new ConnectionSummary();
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
    let outcome = "closed";
    try {
      await sendBanner(conn, generation.config.banner);
      await generation.instance.stream!(conn, context);
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
      conn.close();
      generation.headers.stop(tracked);
      generation.connections.delete(tracked);
      this.#active--;
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
    if (tracked.conn.closed) return;
    tracked.reason ??= reason;
    tracked.conn.close();
    tracked.closer?.abort();
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
