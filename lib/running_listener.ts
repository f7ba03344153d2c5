/**
 * What the supervisor knows of a running listener, TCP or UDP alike.
 *
 * @module
 */

import type { ListenerConfig } from "./config.ts";
import type { ServiceInstance, Transport } from "./service.ts";
import type { LimitReason } from "./source_limits.ts";

/** How a TLS handshake failed, as counted (a client leaving first is not counted). */
export type TlsFailureCount = "plain" | "handshake" | "timeout";

/** Why a connection was refused before its PROXY header was accepted. */
export type ProxyRejection = "untrusted" | "malformed" | "timeout";

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
  /** UDP: datagrams dropped (reflection-prone source port, access rules, rate). */
  dropped?: number;
  /** Connections or datagrams refused by per-source limits, by reason. */
  limited?: Record<LimitReason, number>;
  /** Sources the per-source limits track now. */
  sources?: number;
  /** TCP with TLS: handshakes that failed, by how. */
  tlsFailures?: Record<TlsFailureCount, number>;
  /** TCP with proxy_protocol: connections closed before or at their PROXY header, by why. */
  proxyRejected?: Record<ProxyRejection, number>;
  /** What the service reports of itself (e.g. chat `members`, cmd `running`). */
  service?: Readonly<Record<string, number>>;
}

/**
 * A copy of counters that shares nothing with them.
 * @param stats the counters
 * @returns the copy
 */
export function copyStats(stats: ListenerStats): ListenerStats {
  const copy = { ...stats };
  if (stats.limited) copy.limited = { ...stats.limited };
  if (stats.tlsFailures) copy.tlsFailures = { ...stats.tlsFailures };
  if (stats.proxyRejected) copy.proxyRejected = { ...stats.proxyRejected };
  return copy;
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
    limited: { max_per_source: 0, rate: 0 },
    sources: 0,
    tlsFailures: { plain: 0, handshake: 0, timeout: 0 },
    proxyRejected: { untrusted: 0, malformed: 0, timeout: 0 },
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
