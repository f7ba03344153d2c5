/**
 * The daemon's lifecycle: signals, config, listeners, metrics and systemd
 * notifications, from start to a clean exit. Signals are handled from the
 * first moment, so a SIGTERM during start-up still stops gracefully.
 *
 * @module
 */

import { formatHostPort, type ListenAddress } from "./address.ts";
import { type Config, ConfigError } from "./config.ts";
import { type ConfigSource, loadConfig } from "./config_file.ts";
import { ExitCode } from "./exit_codes.ts";
import type { Logger } from "./log.ts";
import { type DaemonFacts, type MetricsServer, serveMetrics } from "./metrics.ts";
import { describeError } from "./net_errors.ts";
import { formatProblem } from "./option_reader.ts";
import { SystemdNotifier } from "./sd_notify.ts";
import type { Service } from "./service.ts";
import { PassedSockets } from "./socket_activation.ts";
import { StartFailure, Supervisor } from "./supervisor.ts";
import { VERSION } from "./version.ts";
import { workerCount } from "./worker_config.ts";

/** Options for {@linkcode runDaemon}. */
export interface DaemonOptions {
  /** Where the config comes from (re-read on SIGHUP). */
  source: ConfigSource;
  /** The root logger (reconfigured from the config's `[daemon]`). */
  log: Logger;
  /** The service table (from the composition root, `handlers/mod.ts`). */
  services: readonly Service[];
  /**
   * Stops the daemon as SIGTERM does when aborted; its reason (a string)
   * is logged as the cause, e.g. `process 4242 (deno) exited`.
   */
  stop?: AbortSignal;
  /**
   * A SIGINT this soon (ms) after the first counts as the same one. Under a
   * task runner that passes the terminal's Ctrl-C on to its child, the
   * daemon sees each Ctrl-C twice, about a millisecond apart. @default {0}
   */
  sameInterruptMs?: number;
  /** The sockets systemd passed. @default {read from LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES} */
  passedSockets?: PassedSockets;
}

type Event = { kind: "stop"; signal: string } | { kind: "reload" };

/** Turns signals into a queue of events the lifecycle awaits one at a time. */
class SignalEvents {
  #queue: Event[] = [];
  #wake?: () => void;
  #interrupts = 0;
  #firstInterrupt = -Infinity;
  #handlers: [Deno.Signal, () => void][];
  #stop?: AbortSignal;
  #onStop = (): void => {
    this.#push({ kind: "stop", signal: String(this.#stop?.reason ?? "stop requested") });
  };

  constructor(log: Logger, stop?: AbortSignal, sameInterruptMs = 0) {
    this.#handlers = [
      ["SIGTERM", () => this.#push({ kind: "stop", signal: "SIGTERM" })],
      ["SIGINT", () => {
        const now = performance.now();
        if (this.#interrupts > 0 && now - this.#firstInterrupt < sameInterruptMs) return;
        this.#firstInterrupt = now;
        if (++this.#interrupts > 1) {
          log.warn("Second SIGINT: exiting now");
          Deno.exit(ExitCode.Interrupted);
        }
        this.#push({ kind: "stop", signal: "SIGINT" });
      }],
      ["SIGHUP", () => this.#push({ kind: "reload" })],
    ];
    for (const [signal, handler] of this.#handlers) Deno.addSignalListener(signal, handler);
    this.#stop = stop;
    if (stop?.aborted) this.#onStop();
    else stop?.addEventListener("abort", this.#onStop, { once: true });
  }

  #push(event: Event): void {
    // Several SIGHUPs while one reload runs need only one more reload.
    if (event.kind === "reload" && this.#queue.some((e) => e.kind === "reload")) return;
    this.#queue.push(event);
    this.#wake?.();
  }

  /** The pending stop, if one was requested (it wins over reloads). */
  get stopRequested(): Event | undefined {
    return this.#queue.find((event) => event.kind === "stop");
  }

  /** Waits for the next event. */
  async next(): Promise<Event> {
    while (this.#queue.length === 0) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.stopRequested ?? this.#queue.shift()!;
  }

  /** Stops listening, except for SIGINT: a second one must still force exit. */
  close(): void {
    this.#stop?.removeEventListener("abort", this.#onStop);
    for (const [signal, handler] of this.#handlers) {
      if (signal !== "SIGINT") Deno.removeSignalListener(signal, handler);
    }
  }
}

function describeSource(source: ConfigSource): string {
  return source.kind === "embedded" ? "the embedded default" : source.path;
}

async function load(
  source: ConfigSource,
  log: Logger,
  services: readonly Service[],
): Promise<Config | undefined> {
  try {
    return await loadConfig(source, { services });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) log.error(formatProblem(problem));
    return undefined;
  }
}

function sameAddress(server: MetricsServer, wanted: ListenAddress): boolean {
  return wanted.hostname === server.addr.hostname &&
    (wanted.port === server.addr.port || wanted.port === 0);
}

/**
 * Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.
 * @param options the config source and logger
 * @returns the exit code: 0 after a clean stop, 71 when a listener or the
 *   metrics endpoint cannot bind, 78 for a bad config
 */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const { source, log, services } = options;
  const events = new SignalEvents(log, options.stop, options.sameInterruptMs);
  // Read (and removed from the environment) before anything can spawn a command.
  const passedSockets = options.passedSockets ?? PassedSockets.fromEnvironment();
  try {
    const config = await load(source, log, services);
    if (!config) {
      log.error(`Configuration is invalid (${describeSource(source)}); nothing was started`);
      return ExitCode.Config;
    }
    log.configure({ level: config.daemon.logLevel, format: config.daemon.logFormat });
    for (const note of config.notes) log.info(note);
    for (const note of passedSockets.notes) log.warn(note);
    if (passedSockets.sockets.length > 0) {
      log.info(`systemd passed ${passedSockets.sockets.length} socket(s)`, {
        fds: passedSockets.sockets.map((s) => `${s.fd}=${s.name}`).join(","),
      });
    }

    const workers = workerCount(config.daemon.workers);
    // The worker machinery is loaded only when the config asks for workers.
    const supervisor = workers > 1
      ? new (await import("./worker_supervisor.ts")).WorkerSupervisor({
        log,
        services,
        passedSockets,
        workers,
      })
      : new Supervisor({ log, services, passedSockets });
    try {
      await supervisor.apply(config);
    } catch (error) {
      if (!(error instanceof StartFailure)) throw error;
      for (const failure of error.failures) log.error(failure.message);
      return error.failures.some((f) => f.phase === "bind") ? ExitCode.OsError : ExitCode.Config;
    }
    await logUnusedSockets(passedSockets, log);
    const facts: DaemonFacts = {
      version: VERSION,
      reloads: 0,
      failedReloads: 0,
      startedAt: Date.now(),
      config: describeSource(source),
    };
    const reloaded = (ok: boolean, summary: string): void => {
      facts.lastReload = { at: Date.now(), ok, summary };
    };
    const metricsSource = {
      listeners: () => supervisor.gather(),
      facts: () => facts,
      links: () => supervisor.links.links,
    };
    const startMetrics = (address: ListenAddress): MetricsServer => {
      const server = serveMetrics(address, metricsSource);
      log.info(
        `Metrics on http://${formatHostPort(server.addr.hostname, server.addr.port)}/metrics`,
      );
      return server;
    };
    let metrics: MetricsServer | undefined;
    try {
      metrics = config.daemon.metrics && startMetrics(config.daemon.metrics);
    } catch (error) {
      log.error(`Metrics cannot bind: ${describeError(error)}`);
      await supervisor.shutdown(0);
      return ExitCode.OsError;
    }
    let shutdownTimeoutMs = config.daemon.shutdownTimeoutMs;
    log.info(`switchboard ${VERSION} ready`, {
      config: describeSource(source),
      listeners: supervisor.listeners.length,
      pid: Deno.pid,
      workers: workers > 1 ? workers : undefined,
    });
    const notifier = SystemdNotifier.fromEnvironment(
      {},
      (error) => log.warn(`Cannot notify systemd: ${describeError(error)}`),
    );
    const serving = (): string => {
      const links = supervisor.links.summary();
      return `Serving ${supervisor.listeners.length} listener(s)${links ? `; ${links}` : ""}`;
    };
    await notifier?.ready(serving());
    notifier?.startWatchdog();
    // A link going down or coming back shows in STATUS= at once.
    let status = serving();
    const unwatch = supervisor.links.watch(() => {
      const now = serving();
      if (now === status) return;
      status = now;
      void notifier?.notify(`STATUS=${now}`);
    });

    for (let event = await events.next(); event.kind === "reload"; event = await events.next()) {
      log.info("SIGHUP: reloading configuration", { config: describeSource(source) });
      await notifier?.reloading();
      const next = await load(source, log, services);
      if (!next) {
        facts.failedReloads++;
        reloaded(false, "the new configuration is invalid; the current one was kept");
        log.error("Reload refused: the new configuration is invalid; keeping the current one");
        await notifier?.ready("Reload refused: invalid configuration");
        continue;
      }
      try {
        const summary = await supervisor.apply(next);
        facts.reloads++;
        log.configure({ level: next.daemon.logLevel, format: next.daemon.logFormat });
        shutdownTimeoutMs = next.daemon.shutdownTimeoutMs;
        for (const note of next.notes) log.info(note);
        if (workerCount(next.daemon.workers) !== workers) {
          log.warn(`A new workers value takes effect at the next start; ${workers} kept`);
        }
        log.info("Reloaded", {
          added: summary.added.length,
          changed: summary.changed.length,
          kept: summary.kept.length,
          removed: summary.removed.length,
        });
        reloaded(
          true,
          `${summary.added.length} added, ${summary.changed.length} changed, ` +
            `${summary.kept.length} kept, ${summary.removed.length} removed`,
        );
        await logUnusedSockets(passedSockets, log);
        // A changed metrics address is bound before the old one is let go.
        const wanted = next.daemon.metrics;
        if (!(metrics && wanted && sameAddress(metrics, wanted)) && (metrics || wanted)) {
          try {
            const replacement = wanted && startMetrics(wanted);
            await metrics?.close();
            metrics = replacement;
          } catch (error) {
            log.error(`Metrics cannot bind; keeping the old endpoint: ${describeError(error)}`);
          }
        }
        await notifier?.ready(serving());
      } catch (error) {
        if (!(error instanceof StartFailure)) throw error;
        facts.failedReloads++;
        for (const failure of error.failures) log.error(failure.message);
        reloaded(false, error.failures.map((f) => f.message).join("; "));
        log.error("Reload failed; keeping the current configuration");
        await notifier?.ready("Reload failed; previous configuration kept");
      }
    }

    const stop = events.stopRequested as { signal: string };
    log.info(`${stop.signal}: stopping`, { timeout_ms: shutdownTimeoutMs });
    unwatch();
    await notifier?.stopping();
    await metrics?.close();
    await supervisor.shutdown(shutdownTimeoutMs);
    notifier?.close();
    log.info("Stopped");
    return ExitCode.Ok;
  } finally {
    events.close();
    await passedSockets.close();
  }
}

async function logUnusedSockets(passed: PassedSockets, log: Logger): Promise<void> {
  for (const socket of await passed.unused()) {
    log.info(`Passed socket ${socket.fd} (${socket.name}) is not used by any listener`);
  }
}
