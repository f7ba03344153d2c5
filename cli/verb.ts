/**
 * What a command-line verb is: data for the static table in `main.ts`, from
 * which the overall usage, `VERB --help`, the man page and the shell
 * completion are all made.
 *
 * @module
 */

import type { OptionSpec } from "./args.ts";

/** A verb of the `switchboard` command. */
export interface Verb {
  /** The word on the command line. */
  name: string;
  /** Its arguments for the overall usage, e.g. `ADDR [TEXT...] [--udp]`. */
  usage: string;
  /** What it does, in a few words (lowercase, no final period). */
  summary: string;
  /** Its full help text (`switchboard VERB --help`). */
  help: string;
  /** Its options by long name (`--help`/`-h` is implied). */
  options: Readonly<Record<string, OptionSpec>>;
  /** Which operands (0-based, ADDR included) name local files, for completion. */
  fileOperands?: readonly number[];
  /**
   * Runs the verb.
   * @throws {UsageError} for command-line mistakes (exit 64)
   */
  run(args: string[]): Promise<number>;
}
