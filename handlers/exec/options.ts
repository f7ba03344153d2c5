/**
 * The `exec` service's config keys: the program (`argv`, no shell), where
 * its stderr goes, how long it may outlive its client's EOF, and the keys
 * every program-running service shares (`lib/command_options.ts`).
 *
 * @module
 */

import {
  commandEnvironment,
  type CommandOptions,
  describeCommandOptions,
  readCommandOptions,
} from "../../lib/command_options.ts";
import type { OptionReader } from "../../lib/option_reader.ts";
import { checkProgram } from "../../lib/program_check.ts";
import { formatDuration } from "../../lib/units.ts";

/** Where a program's stderr goes. */
export type StderrMode = "log" | "socket" | "null";

/** The settings of one `exec` listener. */
export interface ExecOptions extends CommandOptions {
  /** The program and its arguments, run without a shell. */
  argv: string[];
  /** `log`: one log line per line written; `socket`: to the client too; `null`: dropped. */
  stderr: StderrMode;
  /** After the client's EOF, how long the program may go on before its group is ended, in ms. */
  eofGraceMs: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** What {@linkcode parseExecOptions} needs beside the reader. */
export interface ExecParseContext {
  /** The daemon's uid (`user`/`group` need root). @default {Deno.uid()} */
  uid?: number | null;
  /** The daemon's working directory (programs start there without `workdir`). @default {Deno.cwd()} */
  cwd?: string;
}

/**
 * Reads an `exec` listener's keys. The program must exist and be executable
 * (looked up in the program's PATH, from `workdir`), or the config is refused.
 * @param reader the listener's option reader (problems go there)
 * @param context the daemon's uid and working directory
 * @returns the options (only meaningful when no problem was reported)
 */
export function parseExecOptions(
  reader: OptionReader,
  context: ExecParseContext = {},
): ExecOptions {
  const argv = reader.stringArray("argv", {
    check: (item) => item.includes("\0") ? "must not contain NUL" : undefined,
  });
  const shared = readCommandOptions(reader, {
    timeout: "0",
    allowNoTimeout: true,
    uid: context.uid,
  });
  const stderr = reader.string("stderr", {
    default: "log",
    choices: ["log", "socket", "null"],
  }) as StderrMode;
  const eofGraceMs = reader.duration("eof_grace", { default: "2s", min: 0, max: MAX_TIMER_MS });
  if (!reader.has("argv")) {
    reader.problem("argv", `is required: the program and its arguments, e.g. ["/usr/bin/sort"]`);
  } else if (argv.length === 0 || argv[0] === "") {
    reader.problem("argv", `must name a program, e.g. ["/usr/bin/sort"]`);
  } else {
    const env = commandEnvironment(shared);
    const problem = checkProgram(
      argv[0]!,
      env.PATH ?? "",
      shared.workdir ?? context.cwd ?? Deno.cwd(),
    );
    if (problem) reader.problem("argv[0]", problem.message);
  }
  return { ...shared, argv, stderr, eofGraceMs };
}

/**
 * Summarises the options for `switchboard check`.
 * @param options the parsed options
 * @returns one line
 */
export function describeExecOptions(options: ExecOptions): string {
  return [
    `argv=${JSON.stringify(options.argv)}`,
    `stderr=${options.stderr}`,
    `eof_grace=${formatDuration(options.eofGraceMs)}`,
    ...describeCommandOptions(options),
  ].join(" ");
}
