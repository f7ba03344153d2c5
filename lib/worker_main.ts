/**
 * One worker process of `[daemon] workers`: started by the supervisor (the
 * same program, `serve` with an internal environment variable), it serves
 * the TCP listeners the supervisor hands it, on sockets bound with
 * `SO_REUSEPORT`, and asks the supervisor before each connection and each
 * program (lib/admission_broker.ts). Its log lines go to the same stderr,
 * in the same format, ending with `worker=N`.
 *
 * It stops when the supervisor says so, on SIGTERM, or when its stdin
 * closes: the supervisor is gone (even by SIGKILL), so nothing is left
 * behind. SIGINT and SIGHUP are the supervisor's to act on (a Ctrl-C
 * reaches the whole process group).
 *
 * @module
 */

import { BrokerClient } from "./admission_client.ts";
import { type Config, ConfigError, parseConfig } from "./config.ts";
import { ExitCode } from "./exit_codes.ts";
import { Logger, type LogSink, stderrSink } from "./log.ts";
import { describeError } from "./net_errors.ts";
import type { Service } from "./service.ts";
import { PassedSockets } from "./socket_activation.ts";
import { StartFailure, Supervisor } from "./supervisor.ts";
import { type ChannelMessage, LineChannel } from "./worker_channel.ts";
import { configFor } from "./worker_config.ts";
import { leaseKind, type RevokeAnswer, WORKER_ENV } from "./worker_protocol.ts";

/**
 * Reads (and removes, so no command inherits it) the worker number.
 * @returns the number, or undefined when this process is not a worker
 */
export function takeWorkerNumber(): number | undefined {
  let value: string | undefined;
  try {
    value = Deno.env.get(WORKER_ENV);
    if (value !== undefined) Deno.env.delete(WORKER_ENV);
  } catch {
    return undefined;
  }
  const number = Number(value);
  return value !== undefined && Number.isInteger(number) && number > 0 ? number : undefined;
}

/** A sink that ends every line with the worker's number, in either format. */
function workerSink(number: number, sink: LogSink = stderrSink): LogSink {
  return (line) => {
    const json = /^(<\d>)?\{/.test(line);
    sink(json ? `${line.slice(0, -1)},"worker":${number}}` : `${line} worker=${number}`);
  };
}

/** Options for {@linkcode runWorker}. */
export interface WorkerOptions {
  /** The worker's number (1…N). */
  number: number;
  /** The service table (from the composition root). */
  services: readonly Service[];
  /** The channel's streams. @default {stdin and stdout} */
  streams?: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
}

/**
 * Serves as worker `number` until told to stop or the supervisor is gone.
 * @param options the number and the service table
 * @returns the exit code (0 after a clean stop)
 */
export async function runWorker(options: WorkerOptions): Promise<number> {
  const log = new Logger({ sink: workerSink(options.number) });
  const { services } = options;
  let shared = true;
  let shutdownTimeoutMs = 10_000;
  let stopRequested: (timeoutMs: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => stopRequested = resolve);
  const ignore = (): void => {};
  const onTerm = (): void => stopRequested(shutdownTimeoutMs);
  const signals: [Deno.Signal, () => void][] = [
    ["SIGINT", ignore],
    ["SIGHUP", ignore],
    ["SIGTERM", onTerm],
  ];
  for (const [signal, handler] of signals) Deno.addSignalListener(signal, handler);

  const broker: BrokerClient = new BrokerClient((): LineChannel => channel);
  // systemd's sockets, when the supervisor handed them on (LISTEN_FDS, no LISTEN_PID).
  const passedSockets = PassedSockets.fromEnvironment();
  for (const note of passedSockets.notes) log.warn(note);
  const supervisor: Supervisor = new Supervisor({
    log,
    services,
    passedSockets,
    reusePort: true,
    gate: broker,
    slots: (name) => broker.slots(name),
    sharedWithWorkers: () => shared,
  });
  const apply = async (message: ChannelMessage): Promise<ChannelMessage> => {
    let config: Config;
    try {
      config = parseConfig(String(message.text), String(message.file), {
        services,
        baseDir: typeof message.baseDir === "string" ? message.baseDir : undefined,
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return { ok: false, failures: [{ phase: "config", message: error.message }] };
    }
    const ports = (message.ports ?? {}) as Record<string, number>;
    const mine = configFor(config, {
      services,
      side: "workers",
      reach: { fds: message.fds === true },
    });
    mine.listeners = mine.listeners.map((l) =>
      ports[l.name] === undefined ? l : { ...l, address: { ...l.address, port: ports[l.name]! } }
    );
    log.configure({ level: config.daemon.logLevel, format: config.daemon.logFormat });
    shared = message.alone !== true;
    try {
      const summary = await supervisor.apply(mine);
      shutdownTimeoutMs = config.daemon.shutdownTimeoutMs;
      return { ok: true, summary, listeners: supervisor.listeners };
    } catch (error) {
      if (!(error instanceof StartFailure)) throw error;
      return {
        ok: false,
        failures: error.failures.map((f) => ({
          phase: f.phase,
          listener: f.listener,
          address: f.address,
          message: f.message,
        })),
      };
    } finally {
      shared = true;
    }
  };

  const channel: LineChannel = new LineChannel(
    options.streams?.readable ?? Deno.stdin.readable,
    options.streams?.writable ?? Deno.stdout.writable,
    (message) => {
      switch (message.op) {
        case "apply":
          return apply(message);
        case "revoke":
          return {
            ok: true,
            returned: broker.revoke(leaseKind(message.kind), String(message.listener)),
          } satisfies RevokeAnswer;
        case "stats":
          return { ok: true, listeners: supervisor.listeners };
        case "stop":
          stopRequested(typeof message.timeoutMs === "number" ? message.timeoutMs : 0);
          return;
      }
      return { ok: false, error: `unknown op ${String(message.op)}` };
    },
  );
  // The supervisor gone (its end of stdin closed): stop at once.
  void channel.done.then(() => stopRequested(0));
  const timeoutMs = await stopped;
  try {
    await supervisor.shutdown(timeoutMs);
  } catch (error) {
    log.error(`Worker did not stop cleanly: ${describeError(error)}`);
  }
  for (const [signal, handler] of signals) Deno.removeSignalListener(signal, handler);
  await passedSockets.close();
  await channel.close();
  return ExitCode.Ok;
}
