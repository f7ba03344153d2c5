/**
 * Which listeners `[daemon] workers` hands to worker processes, and how
 * many workers there are. Workers serve the TCP listeners that can run in
 * several processes at once; the supervisor keeps the rest: UDP listeners,
 * services whose state lives in one process (chat: a room stays one room),
 * and `fd:` listeners when systemd's sockets cannot be handed on (that
 * takes Deno's spawn, which keeps a descriptor whose close-on-exec flag was
 * cleared through FFI: not the offline executable).
 *
 * @module
 */

import type { Config, ListenerConfig } from "./config.ts";
import type { Service } from "./service.ts";

/**
 * How many processes a `workers` setting means.
 * @param setting the config value (`"auto"`: one per available core)
 * @returns at least 1
 */
export function workerCount(setting: number | "auto" | undefined): number {
  if (setting === undefined) return 1;
  if (setting === "auto") return Math.max(1, navigator.hardwareConcurrency || 1);
  return Math.max(1, setting);
}

/** What the workers can take besides listeners on an address. */
export interface WorkerReach {
  /** Whether systemd's sockets reach the workers (`fd:` listeners). */
  fds?: boolean;
}

/**
 * Whether workers serve `listener`.
 * @param listener a listener of the config
 * @param services the service table
 * @param reach whether `fd:` listeners can be served by workers
 * @returns true for an enabled TCP listener (on an address, or `fd:` when
 *   the sockets reach the workers) whose service keeps no per-process state
 */
export function servedByWorkers(
  listener: ListenerConfig,
  services: readonly Service[],
  reach: WorkerReach = {},
): boolean {
  if (!listener.enabled || listener.transport !== "tcp") return false;
  if (listener.address.fd !== undefined && !reach.fds) return false;
  return !services.find((s) => s.name === listener.service)?.perProcess;
}

/** Options for {@linkcode configFor}. */
export interface ConfigForOptions {
  /** The service table. */
  services: readonly Service[];
  /** `workers` or `supervisor`. */
  side: "workers" | "supervisor";
  /** Whether `fd:` listeners can be served by workers. @default {no} */
  reach?: WorkerReach;
}

/**
 * The part of `config` one side runs: the others' listeners are disabled.
 * @param config the whole config
 * @param options the service table, the side, and what the workers can take
 * @returns a config with the same daemon settings
 */
export function configFor(config: Config, options: ConfigForOptions): Config {
  const { services, side, reach = {} } = options;
  const mine = (listener: ListenerConfig): boolean =>
    servedByWorkers(listener, services, reach) === (side === "workers");
  return {
    ...config,
    listeners: config.listeners.map((l) => mine(l) ? l : { ...l, enabled: false }),
  };
}
