/**
 * The supervisor with `[daemon] workers` > 1: the TCP listeners that can
 * run in several processes are served by a {@linkcode WorkerPool}; the rest
 * (UDP, `fd:`, chat) by a {@linkcode Supervisor} in this process. It looks
 * like a `Supervisor` to the daemon's lifecycle: apply (start and reload),
 * listeners, gather (for metrics), links, shutdown.
 *
 * A reload binds every new socket before it closes an old one, even for a
 * listener that moves between the two sides on the same address (chat
 * becoming echo): this side's TCP sockets are bound with `SO_REUSEPORT` as
 * the workers' are. It runs in three steps: this side takes its new
 * listeners while keeping those that move to the workers; the workers
 * apply the config (binding what moves to them, closing what moved here);
 * this side then drops what moved. When the workers fail, this side goes
 * back to the previous config.
 *
 * @module
 */

import type { Config } from "./config.ts";
import type { LinkBoard } from "./link_board.ts";
import {
  type ListenerStatus,
  type ReloadSummary,
  socketKey,
  Supervisor,
  type SupervisorOptions,
} from "./supervisor.ts";
import { WorkerPool, type WorkerPoolOptions } from "./worker_pool.ts";
import { setCloseOnExec } from "./close_on_exec.ts";
import type { PassedSockets } from "./socket_activation.ts";
import {
  configFor,
  type ConfigForOptions,
  servedByWorkers,
  type WorkerReach,
} from "./worker_config.ts";

/** Options for {@linkcode WorkerSupervisor}. */
export interface WorkerSupervisorOptions extends SupervisorOptions {
  /** How many workers. */
  workers: number;
  /** How a worker is started. @default {this program's `serve`} */
  command?: WorkerPoolOptions["command"];
}

/** A supervisor whose TCP listeners are served by worker processes. */
export class WorkerSupervisor {
  #local: Supervisor;
  #pool: WorkerPool;
  #services: SupervisorOptions["services"];
  #applied?: Config;
  #passed?: PassedSockets;
  #reach: WorkerReach;
  #side: ConfigForOptions;

  /**
   * @param options the supervisor's options and the number of workers
   */
  constructor(options: WorkerSupervisorOptions) {
    // Bound with SO_REUSEPORT, as the workers' sockets are: a listener
    // moving between the sides binds its new socket before the old closes.
    this.#local = new Supervisor({ ...options, reusePort: true });
    this.#services = options.services;
    this.#passed = options.passedSockets;
    // systemd's sockets reach the workers under Deno, whose spawn keeps
    // descriptors without close-on-exec (cleared for the spawn through FFI);
    // the offline executable's runtime closes them in the child.
    const fds = (options.passedSockets?.sockets ?? []).map((socket) => socket.fd);
    const inherits = navigator.userAgent.startsWith("Deno/");
    this.#reach = {
      fds: inherits && fds.length > 0 && setCloseOnExec(fds) === undefined,
    };
    this.#side = { services: options.services, side: "supervisor", reach: this.#reach };
    this.#pool = new WorkerPool({
      count: options.workers,
      log: options.log,
      services: options.services,
      command: options.command,
      passed: this.#reach.fds ? options.passedSockets!.sockets : [],
    });
  }

  /** The worker pool (its PIDs, its broker). */
  get pool(): WorkerPool {
    return this.#pool;
  }

  /** The links services of this process keep to outside systems. */
  get links(): LinkBoard {
    return this.#local.links;
  }

  /** Every listener, this process's first, with the workers' as last reported. */
  get listeners(): ListenerStatus[] {
    return [...this.#local.listeners, ...this.#pool.listeners];
  }

  /**
   * Every listener, with the workers' counters asked for now and summed.
   * @returns the listeners
   */
  async gather(): Promise<ListenerStatus[]> {
    return [...this.#local.listeners, ...await this.#pool.gather()];
  }

  /**
   * Starts or reloads: the workers' part, then this process's part.
   * @param config a validated config
   * @returns what was added, changed, kept and removed, on both sides
   * @throws {StartFailure} when a listener cannot bind or open
   */
  async apply(config: Config): Promise<ReloadSummary> {
    const first = this.#applied === undefined;
    const next = configFor(config, this.#side);
    const previous = first ? undefined : configFor(this.#applied!, this.#side);
    // This side's listeners moving to the workers stay until the workers
    // have bound their sockets.
    const theirs = new Set(
      config.listeners.filter((l) => servedByWorkers(l, this.#services, this.#reach))
        .map(socketKey),
    );
    const moving = (previous?.listeners ?? []).filter((l) => l.enabled && theirs.has(socketKey(l)));
    let mine: ReloadSummary;
    try {
      mine = await this.#local.apply(
        moving.length === 0 ? next : { ...next, listeners: [...next.listeners, ...moving] },
      );
    } catch (error) {
      if (first) await this.#pool.stop(0);
      throw error;
    }
    let summary: ReloadSummary;
    try {
      summary = await this.#pool.apply(config);
    } catch (error) {
      if (first) {
        await this.#pool.stop(0);
        await this.#local.shutdown(0);
      } else {
        await this.#local.apply(previous!).catch(() => {});
      }
      throw error;
    }
    if (moving.length > 0) {
      const dropped = await this.#local.apply(next);
      mine.removed.push(...dropped.removed);
      // Moved, not kept.
      mine.kept = mine.kept.filter((name) => !moving.some((l) => l.name === name));
    }
    this.#applied = config;
    this.#passed?.handOver(
      config.listeners.filter((l) => servedByWorkers(l, this.#services, this.#reach))
        .flatMap((l) => l.address.fd === undefined ? [] : [String(l.address.fd)]),
    );
    // A listener that moved between the sides was added on one and removed
    // on the other: its socket's address was kept, its settings changed.
    const added = [...summary.added, ...mine.added];
    const removed = [...summary.removed, ...mine.removed];
    const moved = new Set(added.filter((name) => removed.includes(name)));
    return {
      added: added.filter((name) => !moved.has(name)),
      changed: [...summary.changed, ...mine.changed, ...moved],
      kept: [...summary.kept, ...mine.kept],
      removed: removed.filter((name) => !moved.has(name)),
    };
  }

  /**
   * Stops the workers and this process's listeners; returns once every
   * worker has exited.
   * @param timeoutMs the grace period for work in flight
   */
  async shutdown(timeoutMs: number): Promise<void> {
    await Promise.all([this.#pool.stop(timeoutMs), this.#local.shutdown(timeoutMs)]);
  }
}
