/**
 * switchboard: small network services side by side, declared in one TOML
 * file. This is the command line: `serve` runs the daemon, `check` validates
 * its config, and the other verbs are clients of the services.
 *
 * @module
 */

import { UsageError } from "./cli/args.ts";
import { OutputClosed, outputClosed, writeErr, writeOut } from "./cli/output.ts";
import type { Verb } from "./cli/verb.ts";
import { ExitCode } from "./lib/exit_codes.ts";
import { escapeControl } from "./lib/escape.ts";

/** A verb of the table: its name, and its module, loaded when it is used. */
export interface VerbEntry {
  /** The word on the command line. */
  readonly name: string;
  /** Imports the verb's module; resolves to the verb. */
  readonly load: () => Promise<Verb>;
}

/**
 * Every verb, in the order usage lists them. A verb's module is imported
 * only when it runs (or for the overall usage): `serve` never loads the
 * clients, which keeps the daemon's idle RSS and start-up down.
 */
export const VERB_TABLE: readonly VerbEntry[] = [
  { name: "serve", load: async () => (await import("./cli/serve.ts")).serveVerb },
  { name: "check", load: async () => (await import("./cli/check.ts")).checkVerb },
  { name: "echo", load: async () => (await import("./cli/echo.ts")).echoVerb },
  { name: "chat", load: async () => (await import("./cli/chat.ts")).chatVerb },
  { name: "cmd", load: async () => (await import("./cli/cmd.ts")).cmdVerb },
  { name: "time", load: async () => (await import("./cli/time.ts")).timeVerb },
  { name: "get", load: async () => (await import("./cli/get.ts")).getVerb },
  { name: "put", load: async () => (await import("./cli/put.ts")).putVerb },
  { name: "ls", load: async () => (await import("./cli/ls.ts")).lsVerb },
  { name: "version", load: async () => (await import("./cli/version.ts")).versionVerb },
];

/**
 * Loads every verb of the table (for the overall usage, the manual and the
 * completion).
 * @returns the verbs, in the table's order
 */
export function loadVerbs(): Promise<readonly Verb[]> {
  return Promise.all(VERB_TABLE.map((entry) => entry.load()));
}

async function findVerb(name: string | undefined): Promise<Verb | undefined> {
  return await VERB_TABLE.find((entry) => entry.name === name)?.load();
}

/**
 * The overall usage: one line per verb, its arguments and what it does.
 * @param verbs the verb table
 * @returns the text `switchboard --help` prints
 */
export function overview(verbs: readonly Verb[]): string {
  const width = Math.max(...verbs.map((verb) => `${verb.name} ${verb.usage}`.length));
  const lines = verbs.map((verb) =>
    `  switchboard ${`${verb.name} ${verb.usage}`.padEnd(width)}  ${verb.summary}\n`
  );
  return "Usage: switchboard VERB [ARGS...]\n\n" + lines.join("") +
    '\nRun "switchboard VERB --help" (or "switchboard help VERB") for a verb\'s options.\n';
}

/** What `cmd` exits with when it fails itself (as ssh does); the other verbs exit 1. */
function failureCode(verb: string | undefined): number {
  return verb === "cmd" ? 255 : ExitCode.Failure;
}

function unexpected(verb: string | undefined, error: unknown): number {
  if (error instanceof OutputClosed || outputClosed()) return ExitCode.OutputClosed;
  const where = verb ? `switchboard ${verb}` : "switchboard";
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
      writeErr(overview(await loadVerbs()));
      return ExitCode.Usage;
    }
    if (name === "--help" || name === "-h" || (name === "help" && rest.length === 0)) {
      writeOut(overview(await loadVerbs()));
      return ExitCode.Ok;
    }
    if (name === "help") {
      const wanted = await findVerb(rest[0]);
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
    if (name === "--version") return await (await findVerb("version"))!.run([]);
    verb = await findVerb(name);
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
    return unexpected(verb?.name, error);
  }
}

if (import.meta.main) {
  // A stream still writing when stdout closes, or a stray rejection, ends
  // the process the same quiet way: one line at most, never a stack trace.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const known = VERB_TABLE.find((entry) => entry.name === Deno.args[0]);
    Deno.exit(unexpected(known?.name, event.reason));
  });
  Deno.exit(await main(Deno.args));
}
