/**
 * What the supervisor knows of a running listener, TCP or UDP alike.
 *
 * @module
 */

import type { ListenerConfig } from "./config.ts";
import type { ServiceInstance, Transport } from "./service.ts";

/** Counters of one listener since it started. */
export interface ListenerStats {
  /** TCP connections accepted (and handed to the service). */
  accepted: number;
  /** TCP connections closed at once because max_connections was reached. */
  refused: number;
  /** Connections or datagrams refused by allow/deny rules. */
  denied: number;
  /** TCP connections open now. */
  active: number;
  /** Bytes received from closed connections, or in datagrams. */
  bytesIn: number;
  /** Bytes sent on closed connections, or in datagrams. */
  bytesOut: number;
  /** UDP: datagrams handled. */
  datagrams?: number;
  /** UDP: datagrams dropped (reflection-prone source port, access rules). */
  dropped?: number;
}

/**
 * Fresh counters for a listener of `transport` (UDP ones also count
 * datagrams handled and dropped).
 * @param transport the listener's transport
 * @returns all counters at zero
 */
export function emptyStats(transport: Transport): ListenerStats {
  const stats: ListenerStats = {
    accepted: 0,
    refused: 0,
    denied: 0,
    active: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  if (transport === "udp") Object.assign(stats, { datagrams: 0, dropped: 0 });
  return stats;
}

/** A listener the supervisor runs. */
export interface RunningListener {
  /** The settings it currently serves with. */
  readonly config: ListenerConfig;
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Counters since start. */
  readonly stats: ListenerStats;
  /** Swaps settings and service instance, keeping the socket. */
  replace(config: ListenerConfig, instance: ServiceInstance): void;
  /** Stops gracefully, everything closed by `deadline` (performance.now() time). */
  stop(deadline: number): Promise<void>;
}
