/**
 * switchboard: small network services side by side, declared in one TOML
 * file. This is the command line: `serve` runs the daemon, `check` validates
 * its config, and the other verbs are clients of the services.
 *
 * @module
 */

import { UsageError } from "./cli/args.ts";
import { chatVerb } from "./cli/chat.ts";
import { checkVerb } from "./cli/check.ts";
import { cmdVerb } from "./cli/cmd.ts";
import { echoVerb } from "./cli/echo.ts";
import { getVerb } from "./cli/get.ts";
import { lsVerb } from "./cli/ls.ts";
import { putVerb } from "./cli/put.ts";
import { OutputClosed, outputClosed, writeErr, writeOut } from "./cli/output.ts";
import { serveVerb } from "./cli/serve.ts";
import type { Verb } from "./cli/verb.ts";
import { timeVerb } from "./cli/time.ts";
import { versionVerb } from "./cli/version.ts";
import { ExitCode } from "./lib/exit_codes.ts";
import { escapeControl } from "./lib/escape.ts";

/** Every verb, in the order usage lists them. */
export const VERBS: readonly Verb[] = [
  serveVerb,
  checkVerb,
  echoVerb,
  chatVerb,
  cmdVerb,
  timeVerb,
  getVerb,
  putVerb,
  lsVerb,
  versionVerb,
];

/**
 * The overall usage: one line per verb, its arguments and what it does.
 * @param verbs the verb table
 * @returns the text `switchboard --help` prints
 */
export function overview(verbs: readonly Verb[] = VERBS): string {
  const width = Math.max(...verbs.map((verb) => `${verb.name} ${verb.usage}`.length));
  const lines = verbs.map((verb) =>
    `  switchboard ${`${verb.name} ${verb.usage}`.padEnd(width)}  ${verb.summary}\n`
  );
  return "Usage: switchboard VERB [ARGS...]\n\n" + lines.join("") +
    '\nRun "switchboard VERB --help" (or "switchboard help VERB") for a verb\'s options.\n';
}

/** What `cmd` exits with when it fails itself (as ssh does); the other verbs exit 1. */
function failureCode(verb: Verb | undefined): number {
  return verb?.name === "cmd" ? 255 : ExitCode.Failure;
}

function unexpected(verb: Verb | undefined, error: unknown): number {
  if (error instanceof OutputClosed || outputClosed()) return ExitCode.OutputClosed;
  const where = verb ? `switchboard ${verb.name}` : "switchboard";
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const debug = Deno.env.get("SWITCHBOARD_DEBUG");
  writeErr(
    `${where}: unexpected error: ${escapeControl(what)}` +
      (debug ? `\n${(error as Error)?.stack ?? ""}\n` : " (SWITCHBOARD_DEBUG=1 shows where)\n"),
  );
  return failureCode(verb);
}

/**
 * Runs the command line.
 * @param args the arguments (without the program name)
 * @returns the exit code: the verb's own; 64 for usage errors; 141 when
 *   stdout was closed under it (as after SIGPIPE)
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  let verb: Verb | undefined;
  try {
    if (name === undefined) {
      writeErr(overview());
      return ExitCode.Usage;
    }
    if (name === "--help" || name === "-h" || (name === "help" && rest.length === 0)) {
      writeOut(overview());
      return ExitCode.Ok;
    }
    if (name === "help") {
      const wanted = VERBS.find((candidate) => candidate.name === rest[0]);
      const problem = !wanted
        ? `no verb "${escapeControl(rest[0]!)}"`
        : rest.length > 1
        ? `unexpected argument "${escapeControl(rest[1]!)}"`
        : undefined;
      if (problem || !wanted) {
        writeErr(`switchboard help: ${problem} (try --help)\n`);
        return ExitCode.Usage;
      }
      writeOut(wanted.help);
      return ExitCode.Ok;
    }
    if (name === "--version") return await versionVerb.run([]);
    verb = VERBS.find((candidate) => candidate.name === name);
    if (!verb) {
      writeErr(`switchboard: unknown command "${escapeControl(name)}" (try --help)\n`);
      return ExitCode.Usage;
    }
    const code = await verb.run(rest);
    return outputClosed() ? ExitCode.OutputClosed : code;
  } catch (error) {
    if (error instanceof UsageError && verb) {
      writeErr(`switchboard ${verb.name}: ${escapeControl(error.message)} (try --help)\n`);
      return ExitCode.Usage;
    }
    return unexpected(verb, error);
  }
}

if (import.meta.main) {
  // A stream still writing when stdout closes, or a stray rejection, ends
  // the process the same quiet way: one line at most, never a stack trace.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    Deno.exit(unexpected(VERBS.find((verb) => verb.name === Deno.args[0]), event.reason));
  });
  Deno.exit(await main(Deno.args));
}
