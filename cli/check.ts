/**
 * `switchboard check [-c FILE] [--json]`: validates the config the daemon
 * would use and prints its listeners, or every problem (exit 78); with
 * `--json`, one JSON document for scripts.
 *
 * @module
 */

import { parseVerbArgs, UsageError } from "./args.ts";
import { writeErr, writeOut } from "./output.ts";
import type { Verb } from "./verb.ts";
import { formatHostPort } from "../lib/address.ts";
import {
  type Config,
  ConfigError,
  DEFAULT_HEADER_TIMEOUT_MS,
  type ListenerConfig,
} from "../lib/config.ts";
import { findConfigSource, loadConfig } from "../lib/config_file.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { formatProblem } from "../lib/option_reader.ts";
import { formatDuration, formatRate } from "../lib/units.ts";
import { findService, SERVICES } from "../handlers/mod.ts";

const HELP = `Usage: switchboard check [-c FILE] [--json]

Validates the config that "serve" would use (same search order) and prints
each listener: name, service, transport, address and limits. Every problem is
reported at once, each with file, line and key.

Options:
  -c, --config FILE   config file
      --json          print one JSON document on stdout instead:
                      {"config", "valid", "notes", "listeners": [{"name",
                      "service", "transport", "listen", "host", "port",
                      "enabled", "line", "max_connections", "idle_timeout_ms",
                      "allow", "deny", "settings"}], "problems": [{"file",
                      "line", "key", "message"}]}
  -h, --help          show this help

Exit codes: 0 valid, 64 usage, 78 invalid, 141 stdout was closed.
`;

/** The service's own summary of a listener's settings (e.g. `transform=upper`). */
function settings(listener: ListenerConfig): string {
  return findService(listener.service)?.describe?.(listener.options) ?? "";
}

function limits(listener: ListenerConfig): string {
  const parts: string[] = [];
  if (listener.transport === "tcp") {
    parts.push(`max_connections=${listener.maxConnections}`);
    parts.push(`idle_timeout=${formatDuration(listener.idleTimeoutMs)}`);
    if (listener.headerTimeoutMs !== DEFAULT_HEADER_TIMEOUT_MS) {
      parts.push(`header_timeout=${formatDuration(listener.headerTimeoutMs)}`);
    }
  }
  if (listener.allow.length > 0) parts.push(`allow=${listener.allow.join(",")}`);
  if (listener.deny.length > 0) parts.push(`deny=${listener.deny.join(",")}`);
  if (listener.accessTimes) parts.push(`access_times=${listener.accessTimes.join(",")}`);
  if (listener.banner !== undefined) parts.push("banner");
  const { limits: perSource, tls } = listener;
  if (perSource?.maxPerSource !== undefined) parts.push(`max_per_source=${perSource.maxPerSource}`);
  if (perSource?.rate) parts.push(`rate=${formatRate(perSource.rate)} burst=${perSource.burst}`);
  if (perSource && perSource.ipv6Prefix !== 64) parts.push(`ipv6_prefix=${perSource.ipv6Prefix}`);
  if (listener.proxyProtocol.length > 0) {
    parts.push(`proxy_protocol=${listener.proxyProtocol.join(",")}`);
  }
  if (tls) parts.push(`tls=${tls.cert} (until ${tls.notAfter.toISOString().slice(0, 10)})`);
  const described = settings(listener);
  if (described) parts.push(described);
  if (!listener.enabled) parts.push("(disabled)");
  return parts.join(" ");
}

function displayAddress(listener: ListenerConfig): string {
  const { hostname, port, fd } = listener.address;
  if (fd !== undefined) return `fd:${fd} (socket from systemd)`;
  return listener.listen.startsWith(":") ? `*:${port}` : formatHostPort(hostname, port);
}

/** What `check --json` prints (keys in snake_case, durations in ms). */
export interface CheckReport {
  /** The config file's path, or null for the embedded default. */
  config: string | null;
  /** Whether the config is valid (exit 0) or not (exit 78). */
  valid: boolean;
  /** Notes `serve` would log, e.g. what the embedded default skipped. */
  notes: string[];
  /** Every listener, enabled or not, in file order (empty when invalid). */
  listeners: Record<string, unknown>[];
  /** Every problem (empty when valid). */
  problems: { file: string; line: number | null; key: string; message: string }[];
}

/**
 * The JSON form of a listener: what `check` shows, as data.
 * @param listener a validated listener
 * @returns its fields in snake_case
 */
export function listenerReport(listener: ListenerConfig): Record<string, unknown> {
  const report: Record<string, unknown> = {
    name: listener.name,
    service: listener.service,
    transport: listener.transport,
    listen: listener.listen,
    host: listener.address.hostname,
    port: listener.address.port,
    enabled: listener.enabled,
    line: listener.line ?? null,
  };
  if (listener.transport === "tcp") {
    report.max_connections = listener.maxConnections;
    report.idle_timeout_ms = listener.idleTimeoutMs;
  }
  report.allow = listener.allow;
  report.deny = listener.deny;
  report.settings = settings(listener);
  return report;
}

/**
 * Renders the listeners of a config as an aligned table.
 * @param config a validated config
 * @returns the table text, one line per listener after a header
 */
export function formatListeners(config: Config): string {
  const rows = [["NAME", "SERVICE", "TRANSPORT", "ADDRESS", "LIMITS"]];
  for (const listener of config.listeners) {
    rows.push([
      listener.name,
      listener.service,
      listener.transport,
      displayAddress(listener),
      limits(listener),
    ]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column]!))
      .join("  ").trimEnd()
  ).join("\n") + "\n";
}

async function runCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, checkVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const source = findConfigSource(values.config as string | undefined);
  const report: CheckReport = {
    config: source.kind === "embedded" ? null : source.path,
    valid: false,
    notes: [],
    listeners: [],
    problems: [],
  };
  let config: Config;
  try {
    config = await loadConfig(source, { services: SERVICES });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (values.json) {
      report.problems = error.problems.map((problem) => ({
        file: problem.file,
        line: problem.line ?? null,
        key: problem.key,
        message: problem.message,
      }));
      writeOut(JSON.stringify(report, null, 2) + "\n");
      return ExitCode.Config;
    }
    for (const problem of error.problems) writeErr(formatProblem(problem) + "\n");
    const count = error.problems.length;
    writeErr(`${count} problem${count === 1 ? "" : "s"} found\n`);
    return ExitCode.Config;
  }
  if (values.json) {
    report.valid = true;
    report.notes = config.notes;
    report.listeners = config.listeners.map(listenerReport);
    writeOut(JSON.stringify(report, null, 2) + "\n");
    return ExitCode.Ok;
  }
  writeOut(`config: ${source.kind === "embedded" ? "<embedded default>" : source.path}\n`);
  for (const note of config.notes) writeOut(`note: ${note}\n`);
  writeOut(formatListeners(config));
  return ExitCode.Ok;
}

/** The `check` verb. */
export const checkVerb: Verb = {
  name: "check",
  usage: "[-c FILE] [--json]",
  summary: "validate the config, print the listeners",
  help: HELP,
  options: {
    config: { type: "string", short: "c", value: "FILE", file: true },
    json: { type: "boolean" },
  },
  run: runCheck,
};
