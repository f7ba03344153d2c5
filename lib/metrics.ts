/**
 * Prometheus text exposition of the listeners' counters, served over HTTP
 * at `/metrics`, with `/healthz` for liveness probes and a small human
 * status page at `/`.
 *
 * @module
 */

import { formatHostPort, type ListenAddress } from "./address.ts";
import type { LinkStatus } from "./link_board.ts";
import { type DaemonFacts, renderStatusPage } from "./status_page.ts";
import type { ListenerStatus } from "./supervisor.ts";

export type { DaemonFacts };

function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  value: (listener: ListenerStatus) => number | undefined;
}

const FAMILIES: readonly Family[] = [
  {
    name: "switchboard_connections_accepted_total",
    type: "counter",
    help: "TCP connections accepted and handed to the service.",
    value: (l) => l.transport === "tcp" ? l.stats.accepted : undefined,
  },
  {
    name: "switchboard_connections_refused_total",
    type: "counter",
    help: "TCP connections closed at once because max_connections was reached.",
    value: (l) => l.transport === "tcp" ? l.stats.refused : undefined,
  },
  {
    name: "switchboard_connections_active",
    type: "gauge",
    help: "TCP connections open now.",
    value: (l) => l.transport === "tcp" ? l.stats.active : undefined,
  },
  {
    name: "switchboard_denied_total",
    type: "counter",
    help: "Connections or datagrams refused by allow/deny rules.",
    value: (l) => l.stats.denied,
  },
  {
    name: "switchboard_datagrams_total",
    type: "counter",
    help: "UDP datagrams handed to the service.",
    value: (l) => l.stats.datagrams,
  },
  {
    name: "switchboard_datagrams_dropped_total",
    type: "counter",
    help: "UDP datagrams dropped (reflection-prone source port or access rules).",
    value: (l) => l.stats.dropped,
  },
  {
    name: "switchboard_limit_sources",
    type: "gauge",
    help: "Sources the per-source limits track now (bounded per listener).",
    value: (l) => l.stats.limited ? l.stats.sources ?? 0 : undefined,
  },
  {
    name: "switchboard_received_bytes_total",
    type: "counter",
    help: "Bytes received from peers.",
    value: (l) => l.stats.bytesIn,
  },
  {
    name: "switchboard_sent_bytes_total",
    type: "counter",
    help: "Bytes sent to peers.",
    value: (l) => l.stats.bytesOut,
  },
];

interface LinkFamily {
  name: string;
  type: "counter" | "gauge";
  help: string;
  value: (link: LinkStatus) => number;
}

const LINK_FAMILIES: readonly LinkFamily[] = [
  {
    name: "switchboard_link_up",
    type: "gauge",
    help: "Whether a link to an outside system (a message bus) is up.",
    value: (link) => link.up ? 1 : 0,
  },
  {
    name: "switchboard_link_down_total",
    type: "counter",
    help: "Times a link went down.",
    value: (link) => link.downs,
  },
  {
    name: "switchboard_link_connect_failures_total",
    type: "counter",
    help: "Failed attempts to bring a link up.",
    value: (link) => link.failures,
  },
  {
    name: "switchboard_link_sent_total",
    type: "counter",
    help: "Messages sent over a link.",
    value: (link) => link.sent,
  },
  {
    name: "switchboard_link_received_total",
    type: "counter",
    help: "Messages received over a link.",
    value: (link) => link.received,
  },
];

/**
 * Renders the Prometheus text format (version 0.0.4).
 * @param listeners the running listeners and their counters
 * @param facts version, reload counts, start time
 * @param links the links services keep to outside systems @default {[]}
 * @returns the exposition text
 */
export function renderMetrics(
  listeners: readonly ListenerStatus[],
  facts: DaemonFacts,
  links: readonly LinkStatus[] = [],
): string {
  const lines: string[] = [
    "# HELP switchboard_build_info Version of the running daemon.",
    "# TYPE switchboard_build_info gauge",
    `switchboard_build_info{version="${label(facts.version)}"} 1`,
    "# HELP switchboard_start_time_seconds Start time of the daemon since the Unix epoch.",
    "# TYPE switchboard_start_time_seconds gauge",
    `switchboard_start_time_seconds ${(facts.startedAt / 1000).toFixed(3)}`,
    "# HELP switchboard_reloads_total Configuration reloads by result.",
    "# TYPE switchboard_reloads_total counter",
    `switchboard_reloads_total{result="ok"} ${facts.reloads}`,
    `switchboard_reloads_total{result="failed"} ${facts.failedReloads}`,
    "# HELP switchboard_listener_info Running listeners.",
    "# TYPE switchboard_listener_info gauge",
  ];
  const labels = (l: ListenerStatus): string =>
    `listener="${label(l.name)}",service="${label(l.service)}",transport="${l.transport}"`;
  for (const listener of listeners) {
    const address = formatHostPort(listener.addr.hostname, listener.addr.port);
    lines.push(`switchboard_listener_info{${labels(listener)},address="${label(address)}"} 1`);
  }
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const listener of listeners) {
      const value = family.value(listener);
      if (value !== undefined) lines.push(`${family.name}{${labels(listener)}} ${value}`);
    }
  }
  for (const family of REASON_FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} counter`);
    for (const listener of listeners) {
      const counts = family.counts(listener);
      if (!counts) continue;
      for (const [reason, value] of Object.entries(counts)) {
        lines.push(
          `${family.name}{listener="${label(listener.name)}",reason="${reason}"} ${value}`,
        );
      }
    }
  }
  if (links.length > 0) {
    const linkLabels = (l: LinkStatus): string =>
      `link="${label(l.name)}",target="${label(l.target)}"`;
    for (const family of LINK_FAMILIES) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      for (const link of links) {
        lines.push(`${family.name}{${linkLabels(link)}} ${family.value(link)}`);
      }
    }
  }
  return lines.join("\n") + "\n";
}

interface ReasonFamily {
  name: string;
  help: string;
  counts: (listener: ListenerStatus) => Readonly<Record<string, number>> | undefined;
}

// Counters by reason carry the listener and the reason only, as the
// contract names them: switchboard_limited_total{listener="…",reason="…"}.
const REASON_FAMILIES: readonly ReasonFamily[] = [
  {
    name: "switchboard_limited_total",
    help: "Connections or datagrams refused by per-source limits (max_per_source, rate).",
    counts: (l) => {
      const limited = l.stats.limited ?? { max_per_source: 0, rate: 0 };
      return l.transport === "tcp" ? limited : { rate: limited.rate };
    },
  },
  {
    name: "switchboard_tls_handshake_failures_total",
    help: "TLS handshakes that failed: plain (not TLS), handshake (refused), timeout.",
    counts: (l) => l.tls ? l.stats.tlsFailures : undefined,
  },
  {
    name: "switchboard_proxy_rejected_total",
    help: "Connections closed before their PROXY header was accepted, by reason.",
    counts: (l) => l.proxyProtocol ? l.stats.proxyRejected : undefined,
  },
];

/** What the metrics endpoint reads on each scrape. */
export interface MetricsSource {
  /** The running listeners (with workers, gathered from them). */
  listeners(): readonly ListenerStatus[] | Promise<readonly ListenerStatus[]>;
  /** Daemon-wide facts. */
  facts(): DaemonFacts;
  /** The links to outside systems, when there are any. */
  links?(): readonly LinkStatus[];
}

/** A running metrics endpoint. */
export interface MetricsServer extends AsyncDisposable {
  /** The bound address. */
  addr: Deno.NetAddr;
  /** Stops serving. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics`, `/healthz` and the status page `/` on `address`.
 * @param address where to listen
 * @param source what to report
 * @returns the running server
 * @throws {Deno.errors.AddrInUse} and other bind errors
 */
export function serveMetrics(address: ListenAddress, source: MetricsSource): MetricsServer {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: address.hostname,
    port: address.port,
    signal: controller.signal,
    onListen: () => {},
  }, async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (pathname === "/metrics") {
      const listeners = await source.listeners();
      return new Response(renderMetrics(listeners, source.facts(), source.links?.()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (pathname === "/healthz") return new Response("ok\n");
    if (pathname === "/") {
      return new Response(renderStatusPage(await source.listeners(), source.facts()), {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    }
    return new Response("Not found: try /, /metrics or /healthz\n", { status: 404 });
  });
  const close = async (): Promise<void> => {
    controller.abort();
    await server.finished;
  };
  return { addr: server.addr as Deno.NetAddr, close, [Symbol.asyncDispose]: close };
}
