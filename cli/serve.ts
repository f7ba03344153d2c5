/**
 * `switchboard serve [-c FILE]`: runs the daemon until SIGTERM/SIGINT;
 * SIGHUP reloads the config.
 *
 * @module
 */

import { parseVerbArgs, UsageError } from "./args.ts";
import { writeOut } from "./output.ts";
import { watchParent } from "./parent_watch.ts";
import type { Verb } from "./verb.ts";
import { findConfigSource } from "../lib/config_file.ts";
import { runDaemon } from "../lib/daemon.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { Logger } from "../lib/log.ts";
import { runWorker, takeWorkerNumber } from "../lib/worker_main.ts";
import { SERVICES } from "../handlers/mod.ts";

const HELP = `Usage: switchboard serve [-c FILE] [--exit-with-parent]

Runs the daemon. The config is FILE, else $SWITCHBOARD_CONFIG, else
./switchboard.toml, else /etc/switchboard/switchboard.toml, else the embedded
default (echo, chat and time on loopback; file on ./files when it exists; cmd
only when SWITCHBOARD_TOKEN is set).

Signals: SIGTERM or SIGINT stop gracefully (a second SIGINT forces exit);
SIGHUP reloads the config, keeping listeners whose settings did not change.

Options:
  -c, --config FILE     config file (exit 78 when missing or invalid)
      --exit-with-parent
                        stop (as on SIGTERM) when the command that started
                        the daemon exits: its parent, or any process up to
                        its shell job's leader; a SIGINT passed on by that
                        command counts once ("deno task start" uses it)
  -h, --help            show this help

Exit codes: 0 stopped cleanly, 64 usage, 71 a listener cannot bind,
78 bad configuration.
`;

/**
 * Runs the daemon.
 * @param args arguments after `serve`
 * @returns the exit code
 * @throws {UsageError} on a bad command line
 */
async function runServe(args: string[]): Promise<number> {
  // A worker of `[daemon] workers`, started by the supervisor (never by hand).
  const worker = takeWorkerNumber();
  if (worker !== undefined) return await runWorker({ number: worker, services: SERVICES });
  const { values, positionals } = parseVerbArgs(args, serveVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const source = findConfigSource(values.config as string | undefined);
  if (!values["exit-with-parent"]) {
    return await runDaemon({ source, log: new Logger(), services: SERVICES });
  }
  const watch = watchParent();
  try {
    return await runDaemon({
      source,
      log: new Logger(),
      services: SERVICES,
      stop: watch.signal,
      // The task runner passes each Ctrl-C on: the daemon sees it twice.
      sameInterruptMs: 200,
    });
  } finally {
    watch.stop();
  }
}

/** The `serve` verb. */
export const serveVerb: Verb = {
  name: "serve",
  usage: "[-c FILE]",
  summary: "run the daemon",
  help: HELP,
  options: {
    config: { type: "string", short: "c", value: "FILE", file: true },
    "exit-with-parent": { type: "boolean" },
  },
  run: runServe,
};
