/**
 * Starts, reloads and stops listeners. Reload follows Caddy: validate the
 * whole new config first (the caller does, with the code `check` uses), start
 * what is new or changed and roll back if any start fails, swap, then stop
 * what is gone. A socket present in both configs is never closed.
 *
 * @module
 */

import { formatHostPort } from "./address.ts";
import type { AdmissionGate } from "./admission.ts";
import type { SlotCounter } from "./command_slots.ts";
import type { Config, ListenerConfig } from "./config.ts";
import { LinkBoard } from "./link_board.ts";
import type { Logger } from "./log.ts";
import { describeError } from "./net_errors.ts";
import type { ListenerStats, RunningListener } from "./running_listener.ts";
import type { ListenerContext, Service, ServiceInstance } from "./service.ts";
import { SharedState } from "./shared_state.ts";
import { PassedSockets } from "./socket_activation.ts";
import type { StreamListener } from "./stream_listener.ts";
import { TcpListener } from "./tcp_listener.ts";
import { bindUdp, UdpListener, type UdpSocket } from "./udp_listener.ts";

/** A listener could not start; `phase` says whether binding or the service failed. */
export class ListenerStartError extends Error {
  /** The listener's name. */
  readonly listener: string;
  /** The address it tried, `host:port/transport`. */
  readonly address: string;
  /** `bind`: the socket could not be bound (exit 71); `open`: the service refused to start. */
  readonly phase: "bind" | "open";

  /**
   * @param options which listener, where, in which phase, and the cause
   */
  constructor(
    options: { listener: string; address: string; phase: "bind" | "open"; cause: unknown },
  ) {
    const what = options.phase === "bind" ? `cannot bind ${options.address}` : "cannot start";
    super(`Listener "${options.listener}" ${what}: ${describeError(options.cause)}`, {
      cause: options.cause,
    });
    this.name = "ListenerStartError";
    this.listener = options.listener;
    this.address = options.address;
    this.phase = options.phase;
  }
}

/** Several listeners failed to start; the first decides the exit code. */
export class StartFailure extends AggregateError {
  /**
   * @param errors every failure
   */
  constructor(errors: ListenerStartError[]) {
    super(errors, errors.map((e) => e.message).join("; "));
    this.name = "StartFailure";
  }

  /** The individual failures. */
  get failures(): ListenerStartError[] {
    return this.errors as ListenerStartError[];
  }
}

/** What a listener looks like from outside. */
export interface ListenerStatus {
  /** Its name. */
  name: string;
  /** Its service. */
  service: string;
  /** Its transport. */
  transport: "tcp" | "udp";
  /** The bound address. */
  addr: Deno.NetAddr;
  /** The `listen` value as written (`fd:web` for a socket from systemd). */
  listen?: string;
  /** Whether it speaks TLS. */
  tls?: boolean;
  /** Whether its connections start with a PROXY header. */
  proxyProtocol?: boolean;
  /** Its counters. */
  stats: ListenerStats;
}

/** What a reload did. */
export interface ReloadSummary {
  /** Names of listeners started. */
  added: string[];
  /** Names of listeners whose settings changed (socket kept). */
  changed: string[];
  /** Names of listeners left exactly as they were. */
  kept: string[];
  /** Names of listeners stopped. */
  removed: string[];
}

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** The root logger. */
  log: Logger;
  /** The service table (from the composition root, `handlers/mod.ts`). */
  services: readonly Service[];
  /** Monotonic clock in ms handed to services (tests inject a fake one). @default {performance.now} */
  clock?: () => number;
  /** Where services register their links to outside systems. @default {a new board} */
  links?: LinkBoard;
  /** Wall clock in ms since the epoch, for `access_times` (tests inject one). @default {Date.now} */
  wallClock?: () => number;
  /** The sockets systemd passed, for `fd:` listeners. @default {none} */
  passedSockets?: PassedSockets;
  /** Binds TCP sockets with `SO_REUSEPORT`, so workers share each port. @default {false} */
  reusePort?: boolean;
  /** Decides `max_connections` and per-source limits elsewhere (a worker's supervisor). */
  gate?: AdmissionGate;
  /**
   * The `max_concurrent` slots of a listener, by name (a worker's are
   * brokered by its supervisor). @default {one counter per name, kept here}
   */
  slots?: (listener: string) => SlotCounter;
  /**
   * Whether other processes serve these listeners too (workers), asked when
   * a service opens. @default {never}
   */
  sharedWithWorkers?: () => boolean;
}

interface Prepared {
  config: ListenerConfig;
  listener: RunningListener;
  instance: ServiceInstance;
}

/**
 * Runs the listeners of a config.
 *
 * @example
 * ```ts ignore
 * await using supervisor = new Supervisor({ log, services: SERVICES });
 * await supervisor.apply(config);            // start
 * await supervisor.apply(newConfig);         // reload
 * await supervisor.shutdown(10_000);         // graceful stop
 * ```
 */
export class Supervisor {
  #log: Logger;
  #services: readonly Service[];
  #clock: () => number;
  #wallClock: () => number;
  #passed: PassedSockets;
  #running = new Map<string, RunningListener>();
  #shared = new SharedState();
  #links: LinkBoard;
  #stopping: Promise<void>[] = [];
  #shutdownTimeoutMs = 10_000;
  #busy: Promise<unknown> = Promise.resolve();
  #reusePort: boolean;
  #gate?: AdmissionGate;
  #slots: (listener: string) => SlotCounter;
  #sharedWithWorkers: () => boolean;

  /**
   * @param options logger and service table
   */
  constructor(options: SupervisorOptions) {
    this.#log = options.log;
    this.#services = options.services;
    this.#clock = options.clock ?? (() => performance.now());
    this.#links = options.links ?? new LinkBoard();
    this.#wallClock = options.wallClock ?? Date.now;
    this.#passed = options.passedSockets ?? new PassedSockets();
    this.#reusePort = options.reusePort ?? false;
    this.#gate = options.gate;
    this.#slots = options.slots ??
      ((name) => this.#shared.obtain(`slots:${name}`, () => ({ running: 0 })));
    this.#sharedWithWorkers = options.sharedWithWorkers ?? (() => false);
  }

  /** The links services keep to outside systems (for metrics and status). */
  get links(): LinkBoard {
    return this.#links;
  }

  /** The running listeners, in start order. */
  get listeners(): ListenerStatus[] {
    return [...this.#running.values()].map((listener) => ({
      name: listener.config.name,
      service: listener.config.service,
      transport: listener.config.transport,
      addr: listener.addr,
      listen: listener.config.listen,
      tls: listener.config.tls !== undefined,
      proxyProtocol: listener.config.proxyProtocol.length > 0,
      stats: listener.stats,
    }));
  }

  /**
   * The running listeners, as {@linkcode Supervisor.listeners}, for callers
   * that also gather from workers.
   * @returns the listeners
   */
  gather(): Promise<ListenerStatus[]> {
    return Promise.resolve(this.listeners);
  }

  /**
   * Makes the running listeners match `config` (its enabled listeners): the
   * first call starts them, later calls reload. On any start failure nothing
   * changes: what was started for this call is closed again.
   * @param config a validated config
   * @returns what was added, changed, kept and removed
   * @throws {StartFailure} when a listener cannot bind or its service cannot open
   */
  apply(config: Config): Promise<ReloadSummary> {
    // Reloads run one at a time, in order.
    const run = this.#busy.then(() => this.#apply(config));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #apply(config: Config): Promise<ReloadSummary> {
    this.#shutdownTimeoutMs = config.daemon.shutdownTimeoutMs;
    const wanted = config.listeners.filter((listener) => listener.enabled);
    const summary: ReloadSummary = { added: [], changed: [], kept: [], removed: [] };
    const keep = new Set<string>();
    const toStart: ListenerConfig[] = [];
    const toChange: [RunningListener, ListenerConfig][] = [];
    for (const listener of wanted) {
      const key = socketKey(listener);
      const running = this.#running.get(key);
      keep.add(key);
      if (!running) toStart.push(listener);
      else if (sameSettings(running.config, listener)) summary.kept.push(listener.name);
      else toChange.push([running, listener]);
    }

    // Start everything new and open every changed service before touching anything.
    const results = await Promise.allSettled([
      ...toStart.map((listener) => this.#start(listener)),
      ...toChange.map(([running, listener]) => this.#open(listener, running.addr, running)),
    ]);
    const failures = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    const started = results.slice(0, toStart.length).flatMap((r) =>
      r.status === "fulfilled" ? [r.value as Prepared] : []
    );
    const reopened = results.slice(toStart.length).flatMap((r) =>
      r.status === "fulfilled" ? [r.value as ServiceInstance] : []
    );
    if (failures.length > 0) {
      const now = performance.now();
      await Promise.all([
        ...started.map((p) => p.listener.stop(now)),
        ...reopened.map((instance) => instance.close?.().catch(() => {})),
      ]);
      throw new StartFailure(failures.map(asStartError));
    }

    // Swap.
    for (const prepared of started) {
      this.#running.set(socketKey(prepared.config), prepared.listener);
      summary.added.push(prepared.config.name);
      const addr = formatHostPort(prepared.listener.addr.hostname, prepared.listener.addr.port);
      const fields: Record<string, string> = {
        listener: prepared.config.name,
        service: prepared.config.service,
      };
      if (prepared.config.address.fd !== undefined) {
        fields.from = `fd:${prepared.config.address.fd}`;
      }
      if (prepared.config.tls) fields.tls = prepared.config.tls.cert;
      this.#log.info(`Listening on ${addr}/${prepared.config.transport}`, fields);
    }
    toChange.forEach(([running, listener], index) => {
      running.replace(listener, reopened[index]!);
      summary.changed.push(listener.name);
      this.#log.info("Settings changed; socket kept", { listener: listener.name });
    });

    // Stop what is gone, gracefully, without holding up the reload.
    for (const [key, running] of this.#running) {
      if (keep.has(key)) continue;
      this.#running.delete(key);
      summary.removed.push(running.config.name);
      this.#log.info("Listener removed; draining", { listener: running.config.name });
      this.#track(running.stop(performance.now() + this.#shutdownTimeoutMs));
    }
    return summary;
  }

  #track(stopping: Promise<void>): void {
    const tracked = stopping.catch((error) => {
      this.#log.error(`Listener did not stop cleanly: ${describeError(error)}`);
    }).finally(() => {
      this.#stopping = this.#stopping.filter((p) => p !== tracked);
    });
    this.#stopping.push(tracked);
  }

  async #start(config: ListenerConfig): Promise<Prepared> {
    const { hostname, port, fd } = config.address;
    const address = fd !== undefined
      ? `fd:${fd}/${config.transport}`
      : `${formatHostPort(hostname, port)}/${config.transport}`;
    let listener: TcpListener | UdpListener | undefined;
    let socket: StreamListener | UdpSocket;
    try {
      socket = fd !== undefined
        ? await this.#passed.listen(fd, config.name)
        : config.transport === "tcp"
        ? await bindWildcardAware(
          (h) => Deno.listen({ hostname: h, port, transport: "tcp", reusePort: this.#reusePort }),
          hostname,
        )
        : await bindWildcardAware(
          (h) => bindUdp({ hostname: h, port }),
          hostname,
        );
    } catch (cause) {
      throw new ListenerStartError({ listener: config.name, address, phase: "bind", cause });
    }
    const log = this.#log.child({ listener: config.name });
    const udp = config.transport === "udp"
      ? new UdpListener(socket as UdpSocket, config, log)
      : undefined;
    try {
      const instance = await this.#open(config, socket.addr as Deno.NetAddr, udp);
      if (udp) {
        udp.start(instance);
        listener = udp;
      } else {
        listener = new TcpListener(socket as StreamListener, config, instance, log, {
          wallClock: this.#wallClock,
          gate: this.#gate,
        });
      }
      return { config, listener, instance };
    } catch (error) {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      throw error;
    }
  }

  async #open(
    config: ListenerConfig,
    addr: Deno.NetAddr,
    listener?: RunningListener | UdpListener,
  ): Promise<ServiceInstance> {
    const service = this.#services.find((s) => s.name === config.service);
    const address = `${formatHostPort(addr.hostname, addr.port)}/${config.transport}`;
    try {
      if (!service) throw new TypeError(`Unknown service "${config.service}"`);
      const udp = listener instanceof UdpListener ? listener : undefined;
      const controller = new AbortController();
      const context: ListenerContext = {
        name: config.name,
        transport: config.transport,
        addr,
        log: this.#log.child({ listener: config.name }),
        signal: controller.signal,
        shared: this.#shared,
        links: this.#links,
        now: this.#clock,
        send: udp ? udp.send : () => Promise.reject(new TypeError("Not a UDP listener")),
        slots: this.#slots(config.name),
        sharedWithWorkers: this.#sharedWithWorkers(),
      };
      const opened = await service.open(config.options, context);
      const needed = config.transport === "tcp" ? opened.stream : opened.datagram;
      if (!needed) {
        await opened.close?.();
        throw new TypeError(`Service "${service.name}" has no ${config.transport} handler`);
      }
      // Closing the instance aborts the signal its context carries.
      return {
        ...opened,
        close: async () => {
          controller.abort();
          await opened.close?.();
        },
      };
    } catch (cause) {
      if (cause instanceof ListenerStartError) throw cause;
      throw new ListenerStartError({ listener: config.name, address, phase: "open", cause });
    }
  }

  /**
   * Stops every listener gracefully: sockets close at once, connections in
   * flight get until the deadline, then the rest are closed.
   * @param timeoutMs the grace period @default {the config's shutdown_timeout}
   */
  async shutdown(timeoutMs: number = this.#shutdownTimeoutMs): Promise<void> {
    await this.#busy;
    const deadline = performance.now() + timeoutMs;
    const running = [...this.#running.values()];
    this.#running.clear();
    await Promise.all([...running.map((listener) => listener.stop(deadline)), ...this.#stopping]);
  }

  /** Shuts down with the configured grace period. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

function asStartError(error: unknown): ListenerStartError {
  return error instanceof ListenerStartError
    ? error
    : new ListenerStartError({ listener: "?", address: "?", phase: "open", cause: error });
}

/**
 * Binds `[::]` dual-stack, falling back to 0.0.0.0 on a host without IPv6.
 */
// Awaited although Deno binds synchronously: in the self-contained
// executable (node's socket APIs underneath) binding completes later.
async function bindWildcardAware<T>(
  bind: (hostname: string) => T | Promise<T>,
  hostname: string,
): Promise<T> {
  try {
    return await bind(hostname);
  } catch (error) {
    const noIPv6 = hostname === "::" && !(error instanceof Deno.errors.AddrInUse) &&
      !(error instanceof Deno.errors.PermissionDenied);
    if (!noIPv6) throw error;
    return await bind("0.0.0.0");
  }
}

/**
 * Identifies the socket a listener needs; listeners on port 0 are told apart by name.
 * @param listener a listener of the config
 * @returns the key (transport and address, or `fd:N`)
 */
export function socketKey(listener: ListenerConfig): string {
  const { hostname, port, fd } = listener.address;
  if (fd !== undefined) return `${listener.transport} fd:${fd}`;
  return port === 0
    ? `${listener.transport} ${hostname}:0 ${listener.name}`
    : `${listener.transport} ${hostname}:${port}`;
}

function sameSettings(a: ListenerConfig, b: ListenerConfig): boolean {
  const strip = ({ key: _key, line: _line, ...rest }: ListenerConfig): unknown => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
