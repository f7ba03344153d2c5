/**
 * `switchboard check [-c FILE]`: validates the config the daemon would use
 * and prints its listeners, or every problem (exit 78).
 *
 * @module
 */

import { parseVerbArgs, UsageError } from "./args.ts";
import { writeErr, writeOut } from "./output.ts";
import type { Verb } from "./verb.ts";
import { formatHostPort } from "../lib/address.ts";
import { type Config, ConfigError, type ListenerConfig } from "../lib/config.ts";
import { findConfigSource, loadConfig } from "../lib/config_file.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { formatProblem } from "../lib/option_reader.ts";
import { formatDuration, formatRate } from "../lib/units.ts";
import { findService, SERVICES } from "../handlers/mod.ts";

const HELP = `Usage: switchboard check [-c FILE]

Validates the config that "serve" would use (same search order) and prints
each listener: name, service, transport, address and limits. Every problem is
reported at once, each with file, line and key.

Options:
  -c, --config FILE   config file
  -h, --help          show this help

Exit codes: 0 valid, 64 usage, 78 invalid.
`;

function limits(listener: ListenerConfig): string {
  const parts: string[] = [];
  if (listener.transport === "tcp") {
    parts.push(`max_connections=${listener.maxConnections}`);
    parts.push(`idle_timeout=${formatDuration(listener.idleTimeoutMs)}`);
  }
  if (listener.allow.length > 0) parts.push(`allow=${listener.allow.join(",")}`);
  if (listener.deny.length > 0) parts.push(`deny=${listener.deny.join(",")}`);
  const { limits: perSource, tls } = listener;
  if (perSource?.maxPerSource !== undefined) parts.push(`max_per_source=${perSource.maxPerSource}`);
  if (perSource?.rate) parts.push(`rate=${formatRate(perSource.rate)} burst=${perSource.burst}`);
  if (perSource && perSource.ipv6Prefix !== 64) parts.push(`ipv6_prefix=${perSource.ipv6Prefix}`);
  if (listener.proxyProtocol.length > 0) {
    parts.push(`proxy_protocol=${listener.proxyProtocol.join(",")}`);
  }
  if (tls) parts.push(`tls=${tls.cert} (until ${tls.notAfter.toISOString().slice(0, 10)})`);
  const service = findService(listener.service);
  const described = service?.describe?.(listener.options);
  if (described) parts.push(described);
  if (!listener.enabled) parts.push("(disabled)");
  return parts.join(" ");
}

/**
 * Renders the listeners of a config as an aligned table.
 * @param config a validated config
 * @returns the table text, one line per listener after a header
 */
export function formatListeners(config: Config): string {
  const rows = [["NAME", "SERVICE", "TRANSPORT", "ADDRESS", "LIMITS"]];
  for (const listener of config.listeners) {
    const { hostname, port, fd } = listener.address;
    const address = fd !== undefined
      ? `fd:${fd} (socket from systemd)`
      : listener.listen.startsWith(":")
      ? `*:${port}`
      : formatHostPort(hostname, port);
    rows.push([listener.name, listener.service, listener.transport, address, limits(listener)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column]!))
      .join("  ").trimEnd()
  ).join("\n") + "\n";
}

async function runCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, { config: { type: "string", short: "c" } });
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const source = findConfigSource(values.config as string | undefined);
  let config: Config;
  try {
    config = await loadConfig(source, { services: SERVICES });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) writeErr(formatProblem(problem) + "\n");
    const count = error.problems.length;
    writeErr(`${count} problem${count === 1 ? "" : "s"} found\n`);
    return ExitCode.Config;
  }
  writeOut(`config: ${source.kind === "embedded" ? "<embedded default>" : source.path}\n`);
  for (const note of config.notes) writeOut(`note: ${note}\n`);
  writeOut(formatListeners(config));
  return ExitCode.Ok;
}

/** The `check` verb. */
export const checkVerb: Verb = {
  name: "check",
  synopsis: "check [-c FILE]                      validate the config, print the listeners",
  help: HELP,
  run: runCheck,
};
