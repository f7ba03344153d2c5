/**
 * Command-line helpers shared by the verbs: strict option parsing that turns
 * mistakes into usage errors (exit 64), and client addresses.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseDuration } from "../lib/units.ts";

/** A command-line mistake: printed as one line with a hint to try --help, exit 64. */
export class UsageError extends Error {
  /**
   * @param message what is wrong, e.g. `unknown option "--foo"`
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option of a verb: a flag (boolean) or an option taking a value. */
export interface OptionSpec {
  /** `boolean` for flags, `string` for options with a value. */
  type: "boolean" | "string";
  /** One-letter alias. */
  short?: string;
  /** Its value's placeholder in help and the man page, e.g. `FILE` (string options). */
  value?: string;
  /** Whether its value is a local file name (shell completion offers files). */
  file?: boolean;
}

/** A verb's parsed command line. */
export interface ParsedArgs {
  /** Option values by long name (`help` is always recognised). */
  values: Record<string, string | boolean | undefined>;
  /** The positional arguments, including everything after `--`. */
  positionals: string[];
}

/**
 * Parses a verb's arguments strictly (unknown options are errors; `--`
 * ends options).
 * @param args the arguments after the verb
 * @param options the verb's options by long name (`--help`/`-h` is added)
 * @returns the values and positionals
 * @throws {UsageError} for unknown options, missing values and the like
 */
export function parseVerbArgs(
  args: string[],
  options: Readonly<Record<string, OptionSpec>>,
): ParsedArgs {
  const specs: Record<string, { type: "boolean" | "string"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, spec] of Object.entries(options)) {
    specs[name] = spec.short === undefined
      ? { type: spec.type }
      : { type: spec.type, short: spec.short };
  }
  try {
    const { values, positionals } = parseArgs({
      args,
      options: specs,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    const message = (error as Error).message.split("\n")[0]!.replace(/\. To specify .*$/, "");
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, ""));
  }
}

/** A host and port to connect to. */
export interface ClientAddress {
  /** Host name or IP address. */
  hostname: string;
  /** Port. */
  port: number;
}

/**
 * Parses a client `ADDR`: `host:port`, `[v6]:port`, a bare host or bare IPv6
 * address (the service's default port).
 * @param text the argument
 * @param defaultPort the service's default port
 * @returns hostname and port
 * @throws {UsageError} when the text is not an address
 */
export function parseClientAddress(text: string, defaultPort: number): ClientAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  let hostname: string;
  let portText: string | undefined;
  if (bracketed) {
    hostname = bracketed[1]!;
    portText = bracketed[2];
  } else if (text.startsWith("[")) {
    throw new UsageError(`bad address "${text}": expected [IPv6]:port`);
  } else if ((text.match(/:/g) ?? []).length > 1) {
    hostname = text; // a bare IPv6 address
  } else {
    const [host, port] = text.split(":");
    hostname = host!;
    portText = port;
    if (port === "") throw new UsageError(`bad address "${text}": missing port after ":"`);
  }
  if (hostname === "") throw new UsageError(`bad address "${text}": missing host`);
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!/^\d*$/.test(portText ?? "") || port < 1 || port > 65535) {
    throw new UsageError(`bad address "${text}": port must be 1-65535`);
  }
  return { hostname, port };
}

/**
 * Reads a duration option such as `--timeout 2s`.
 * @param value the option's value as parsed (undefined when not given)
 * @param name the option's name without dashes, for messages
 * @returns milliseconds (more than 0), or undefined when not given
 * @throws {UsageError} when the value is not a duration or is 0
 * @example
 * ```ts
 * import { durationOption } from "./args.ts";
 * console.assert(durationOption("500ms", "timeout") === 500);
 * console.assert(durationOption(undefined, "timeout") === undefined);
 * ```
 */
export function durationOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(String(value));
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
  if (ms <= 0) throw new UsageError(`--${name} must be more than 0`);
  return ms;
}
