/**
 * `switchboard version`: prints the program's and the runtime's versions.
 *
 * @module
 */

import { parseVerbArgs, UsageError } from "./args.ts";
import { writeOut } from "./output.ts";
import type { Verb } from "./verb.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { runtimeName, VERSION } from "../lib/version.ts";

const HELP = `Usage: switchboard version

Prints switchboard's version and the runtime it runs on.

Exit codes: 0 ok, 64 usage, 141 stdout was closed.
`;

function runVersion(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, versionVerb.options);
  if (values.help) {
    writeOut(HELP);
    return Promise.resolve(ExitCode.Ok);
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  writeOut(`switchboard ${VERSION} (${runtimeName()})\n`);
  return Promise.resolve(ExitCode.Ok);
}

/** The `version` verb. */
export const versionVerb: Verb = {
  name: "version",
  usage: "",
  summary: "print the version",
  help: HELP,
  options: {},
  run: runVersion,
};
