/**
 * The metrics endpoint's human page at `/`: the daemon (version, uptime,
 * config, last reload) and a table of the listeners with their addresses,
 * live connections and what each service says of itself (chat members,
 * commands running).
 *
 * @module
 */

import { formatHostPort } from "./address.ts";
import type { ListenerStatus } from "./supervisor.ts";

/** Daemon-wide facts shown beside the listeners' counters. */
export interface DaemonFacts {
  /** switchboard's version. */
  version: string;
  /** Successful reloads since start. */
  reloads: number;
  /** Reloads refused or rolled back since start. */
  failedReloads: number;
  /** Process start, ms since the epoch. */
  startedAt: number;
  /** The config in use (a path or `<embedded default>`). */
  config?: string;
  /** The last reload: when (ms since the epoch), whether it worked, and what it did. */
  lastReload?: { at: number; ok: boolean; summary: string };
}

function html(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function duration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(seconds / 86400);
  const h = Math.floor(seconds % 86400 / 3600);
  const m = Math.floor(seconds % 3600 / 60);
  const s = seconds % 60;
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function serviceStatus(listener: ListenerStatus): string {
  const own = listener.stats.service;
  if (!own) return "";
  return Object.entries(own).map(([key, value]) => `${key} ${value}`).join(", ");
}

function traffic(listener: ListenerStatus): string {
  const s = listener.stats;
  const limited = (s.limited?.max_per_source ?? 0) + (s.limited?.rate ?? 0);
  const parts = listener.transport === "tcp"
    ? [`${s.accepted} accepted`, `${s.refused} refused`]
    : [`${s.datagrams ?? 0} datagrams`, `${s.dropped ?? 0} dropped`];
  if (s.denied > 0) parts.push(`${s.denied} denied`);
  if (limited > 0) parts.push(`${limited} limited`);
  const tls = s.tlsFailures;
  const tlsFailed = tls ? tls.plain + tls.handshake + tls.timeout : 0;
  if (tlsFailed > 0) parts.push(`${tlsFailed} failed TLS`);
  return parts.join(", ");
}

/**
 * Renders the status page.
 * @param listeners the running listeners and their counters
 * @param facts version, start time, config and the last reload
 * @param now the current time in ms since the epoch @default {Date.now()}
 * @returns an HTML document
 */
export function renderStatusPage(
  listeners: readonly ListenerStatus[],
  facts: DaemonFacts,
  now: number = Date.now(),
): string {
  const reload = facts.lastReload
    ? `${facts.lastReload.ok ? "ok" : "failed"} at ${
      when(facts.lastReload.at)
    }: ${facts.lastReload.summary}`
    : "none since start";
  const rows = listeners.map((l) => {
    const address = formatHostPort(l.addr.hostname, l.addr.port);
    const shown = l.listen?.startsWith("fd:") ? `${address} (${l.listen}, from systemd)` : address;
    const extras = [l.tls ? "TLS" : "", l.proxyProtocol ? "PROXY" : ""].filter(Boolean).join(" ");
    const active = l.transport === "tcp" ? String(l.stats.active) : "";
    return `<tr><td>${html(l.name)}</td><td>${html(l.service)}</td><td>${l.transport}</td>` +
      `<td>${html(shown)}</td><td>${extras}</td><td class="n">${active}</td>` +
      `<td>${html(serviceStatus(l))}</td><td>${html(traffic(l))}</td></tr>`;
  });
  const active = listeners.reduce(
    (sum, l) => sum + (l.transport === "tcp" ? l.stats.active : 0),
    0,
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>switchboard ${html(facts.version)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }
td.n { text-align: right; }
dt { font-weight: bold; float: left; width: 9em; }
</style>
</head>
<body>
<h1>switchboard ${html(facts.version)}</h1>
<dl>
<dt>Up</dt><dd>${duration(now - facts.startedAt)} (since ${when(facts.startedAt)})</dd>
<dt>Config</dt><dd>${html(facts.config ?? "?")}</dd>
<dt>Last reload</dt><dd>${html(reload)} (${facts.reloads} ok, ${facts.failedReloads} failed)</dd>
<dt>Listeners</dt><dd>${listeners.length}, ${active} connection(s) open</dd>
</dl>
<table>
<thead><tr><th>Listener</th><th>Service</th><th>Transport</th><th>Address</th><th></th>` +
    `<th>Open</th><th>Service status</th><th>Traffic</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p>
</body>
</html>
`;
}
