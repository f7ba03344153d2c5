/**
 * What a command-line verb is: data for the static table in `main.ts`.
 *
 * @module
 */

/** A verb of the `switchboard` command. */
export interface Verb {
  /** The word on the command line. */
  name: string;
  /** Its synopsis line for the overall usage. */
  synopsis: string;
  /** Its full help text (`switchboard VERB --help`). */
  help: string;
  /**
   * Runs the verb.
   * @throws {UsageError} for command-line mistakes (exit 64)
   */
  run(args: string[]): Promise<number>;
}
