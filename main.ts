/**
 * switchboard: small network services side by side, declared in one TOML
 * file. This is the command line: `serve` runs the daemon, `check` validates
 * its config, and the other verbs are clients of the services.
 *
 * @module
 */

import { UsageError } from "./cli/args.ts";
import { checkVerb } from "./cli/check.ts";
import { cmdVerb } from "./cli/cmd.ts";
import { echoVerb } from "./cli/echo.ts";
import { writeErr, writeOut } from "./cli/output.ts";
import { serveVerb } from "./cli/serve.ts";
import type { Verb } from "./cli/verb.ts";
import { timeVerb } from "./cli/time.ts";
import { versionVerb } from "./cli/version.ts";
import { ExitCode } from "./lib/exit_codes.ts";

/** Every verb, in the order usage lists them. */
export const VERBS: readonly Verb[] = [
  serveVerb,
  checkVerb,
  echoVerb,
  cmdVerb,
  timeVerb,
  versionVerb,
];

function usage(): string {
  return "Usage: switchboard VERB [ARGS...]\n\n" +
    VERBS.map((verb) => `  switchboard ${verb.synopsis}\n`).join("") +
    '\nRun "switchboard VERB --help" for a verb\'s options.\n';
}

/**
 * Runs the command line.
 * @param args the arguments (without the program name)
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    if (name === undefined) {
      writeErr(usage());
      return ExitCode.Usage;
    }
    writeOut(usage());
    return ExitCode.Ok;
  }
  if (name === "--version") return await versionVerb.run([]);
  const verb = VERBS.find((candidate) => candidate.name === name);
  if (!verb) {
    writeErr(`switchboard: unknown command "${name}"\n\n${usage()}`);
    return ExitCode.Usage;
  }
  try {
    return await verb.run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeErr(`switchboard ${verb.name}: ${error.message}\n\n${verb.help}`);
    return ExitCode.Usage;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
