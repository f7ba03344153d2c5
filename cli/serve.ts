/**
 * `switchboard serve [-c FILE]`: runs the daemon until SIGTERM/SIGINT;
 * SIGHUP reloads the config.
 *
 * @module
 */

import { parseVerbArgs, UsageError } from "./args.ts";
import type { Verb } from "./verb.ts";
import { writeOut } from "./output.ts";
import { type Config, ConfigError } from "../lib/config.ts";
import { type ConfigSource, findConfigSource, loadConfig } from "../lib/config_file.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { Logger } from "../lib/log.ts";
import { formatProblem } from "../lib/option_reader.ts";
import { StartFailure, Supervisor } from "../lib/supervisor.ts";
import { describeError } from "../lib/net_errors.ts";
import { SystemdNotifier } from "../lib/sd_notify.ts";
import { type MetricsServer, serveMetrics } from "../lib/metrics.ts";
import { formatHostPort, type ListenAddress } from "../lib/address.ts";
import { VERSION } from "../lib/version.ts";

const HELP = `Usage: switchboard serve [-c FILE]

Runs the daemon. The config is FILE, else $SWITCHBOARD_CONFIG, else
./switchboard.toml, else /etc/switchboard/switchboard.toml, else the embedded
default (echo, chat and time on loopback; file on ./files when it exists; cmd
only when SWITCHBOARD_TOKEN is set).

Signals: SIGTERM or SIGINT stop gracefully (a second SIGINT forces exit);
SIGHUP reloads the config, keeping listeners whose settings did not change.

Options:
  -c, --config FILE   config file (exit 78 when missing or invalid)
  -h, --help          show this help

Exit codes: 0 stopped cleanly, 64 usage, 71 a listener cannot bind,
78 bad configuration.
`;

function describeSource(source: ConfigSource): string {
  return source.kind === "embedded" ? "the embedded default" : source.path;
}

async function load(source: ConfigSource, log: Logger): Promise<Config | undefined> {
  try {
    return await loadConfig(source);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) log.error(formatProblem(problem));
    return undefined;
  }
}

/**
 * Runs the daemon.
 * @param args arguments after `serve`
 * @returns the exit code
 * @throws {UsageError} on a bad command line
 */
async function runServe(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, { config: { type: "string", short: "c" } });
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const log = new Logger();
  const source = findConfigSource(values.config as string | undefined);
  const config = await load(source, log);
  if (!config) {
    log.error(`Configuration is invalid (${describeSource(source)}); nothing was started`);
    return ExitCode.Config;
  }
  log.configure({ level: config.daemon.logLevel, format: config.daemon.logFormat });
  for (const note of config.notes) log.info(note);

  const supervisor = new Supervisor({ log });
  try {
    await supervisor.apply(config);
  } catch (error) {
    if (!(error instanceof StartFailure)) throw error;
    for (const failure of error.failures) log.error(failure.message);
    const bind = error.failures.some((failure) => failure.phase === "bind");
    return bind ? ExitCode.OsError : ExitCode.Config;
  }
  const counters = { reloads: 0, failedReloads: 0, startedAt: Date.now() };
  const metricsSource = {
    listeners: () => supervisor.listeners,
    facts: () => ({ version: VERSION, ...counters }),
  };
  let metrics: MetricsServer | undefined;
  const startMetrics = (address: ListenAddress | undefined): MetricsServer | undefined => {
    if (!address) return undefined;
    const server = serveMetrics(address, metricsSource);
    log.info(`Metrics on http://${formatHostPort(server.addr.hostname, server.addr.port)}/metrics`);
    return server;
  };
  try {
    metrics = startMetrics(config.daemon.metrics);
  } catch (error) {
    log.error(`Metrics cannot bind: ${describeError(error)}`);
    await supervisor.shutdown(0);
    return ExitCode.OsError;
  }
  log.info(`switchboard ${VERSION} ready`, {
    config: describeSource(source),
    listeners: supervisor.listeners.length,
  });
  const notifier = SystemdNotifier.fromEnvironment(
    {},
    (error) => log.warn(`Cannot notify systemd: ${describeError(error)}`),
  );
  await notifier?.ready(`Serving ${supervisor.listeners.length} listener(s)`);
  notifier?.startWatchdog();

  const stop = Promise.withResolvers<string>();
  let interrupts = 0;
  let shutdownTimeoutMs = config.daemon.shutdownTimeoutMs;
  const onTerm = (): void => stop.resolve("SIGTERM");
  const onInt = (): void => {
    interrupts++;
    if (interrupts > 1) {
      log.warn("Second SIGINT: exiting now");
      Deno.exit(ExitCode.Interrupted);
    }
    stop.resolve("SIGINT");
  };
  const onHup = (): void => {
    void (async () => {
      log.info("SIGHUP: reloading configuration", { config: describeSource(source) });
      await notifier?.reloading();
      const next = await load(source, log);
      if (!next) {
        log.error("Reload refused: the new configuration is invalid; keeping the current one");
        counters.failedReloads++;
        await notifier?.ready("Reload refused: invalid configuration");
        return;
      }
      try {
        const summary = await supervisor.apply(next);
        log.configure({ level: next.daemon.logLevel, format: next.daemon.logFormat });
        shutdownTimeoutMs = next.daemon.shutdownTimeoutMs;
        for (const note of next.notes) log.info(note);
        log.info("Reloaded", {
          added: summary.added.length,
          changed: summary.changed.length,
          kept: summary.kept.length,
          removed: summary.removed.length,
        });
        counters.reloads++;
        metrics = await swapMetrics(metrics, next.daemon.metrics);
        await notifier?.ready(`Serving ${supervisor.listeners.length} listener(s)`);
      } catch (error) {
        if (!(error instanceof StartFailure)) throw error;
        for (const failure of error.failures) log.error(failure.message);
        counters.failedReloads++;
        log.error("Reload failed; keeping the current configuration");
        await notifier?.ready("Reload failed; previous configuration kept");
      }
    })().catch((error) => log.error(`Reload failed: ${describeError(error)}`));
  };
  // A changed metrics address is bound before the old one is let go.
  const swapMetrics = async (
    current: MetricsServer | undefined,
    wanted: ListenAddress | undefined,
  ): Promise<MetricsServer | undefined> => {
    const same = current && wanted && wanted.hostname === current.addr.hostname &&
      (wanted.port === current.addr.port || wanted.port === 0);
    if (same || (!current && !wanted)) return current;
    let next: MetricsServer | undefined;
    try {
      next = startMetrics(wanted);
    } catch (error) {
      log.error(`Metrics cannot bind; keeping the old endpoint: ${describeError(error)}`);
      return current;
    }
    await current?.close();
    return next;
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGHUP", onHup);
  const signal = await stop.promise;
  log.info(`${signal}: stopping`, { timeout_ms: shutdownTimeoutMs });
  await notifier?.stopping();
  await metrics?.close();
  await supervisor.shutdown(shutdownTimeoutMs);
  notifier?.close();
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGHUP", onHup);
  // SIGINT stays handled until exit, so a second one still forces it.
  log.info("Stopped");
  return ExitCode.Ok;
}

/** The `serve` verb. */
export const serveVerb: Verb = {
  name: "serve",
  synopsis: "serve [-c FILE]                      run the daemon",
  help: HELP,
  run: runServe,
};
