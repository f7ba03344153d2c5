/**
 * The `cmd` service's config keys: its own (token, shell, output and stdin
 * limits, allow-lists) beside the keys every program-running service shares
 * (`lib/command_options.ts`).
 *
 * @module
 */

import { isLoopback, type ListenAddress } from "../../lib/address.ts";
import {
  type CommandOptions,
  describeCommandOptions,
  readCommandOptions,
} from "../../lib/command_options.ts";
import type { OptionReader } from "../../lib/option_reader.ts";
import { readToken } from "../../lib/token.ts";
import { formatSize } from "../../lib/units.ts";

/** The settings of one `cmd` listener. */
export interface CmdOptions extends CommandOptions {
  /** `framed` (the header codec of docs/protocol.md) or `line` (one shell line per line, for nc). */
  protocol: "framed" | "line";
  /** The shared secret every request carries; undefined only with `auth = "none"`. */
  token?: string;
  /** The program and leading arguments shell text is run with. */
  shell: string[];
  /** Most bytes of stdout plus stderr returned per command. */
  maxOutput: number;
  /** Most stdin bytes a request may send. */
  maxStdin: number;
  /** When set, argv[0] must be one of these (exact match). */
  allowCommands?: string[];
  /** Whether shell text (`cmd`) is accepted. */
  allowShell: boolean;
}

/** What {@linkcode parseCmdOptions} needs beside the reader. */
export interface CmdParseContext {
  /** The listener's address (for the loopback rule of `auth = "none"`). */
  address?: ListenAddress;
  /** The daemon's uid. @default {Deno.uid()} */
  uid?: number | null;
}

/**
 * Reads a `cmd` listener's keys. A listener without a token is refused unless
 * `auth = "none"` is set and it listens on loopback only.
 * @param reader the listener's option reader (problems go there)
 * @param context the listen address and the daemon's uid
 * @returns the options (only meaningful when no problem was reported)
 */
export function parseCmdOptions(reader: OptionReader, context: CmdParseContext = {}): CmdOptions {
  const protocol = reader.string("protocol", {
    default: "framed",
    choices: ["framed", "line"],
  }) as CmdOptions["protocol"];
  const token = readToken(reader);
  const auth = reader.string("auth", { default: "token", choices: ["token", "none"] });
  const tokenGiven = reader.has("token") || reader.has("token_file") ||
    reader.has("token_credential");
  if (auth === "none") {
    if (tokenGiven) {
      reader.problem("auth", `"none" contradicts the token set on this listener: remove one`);
    } else if (context.address && !isLoopback(context.address)) {
      reader.problem(
        "auth",
        `"none" is only allowed on a loopback address (127.0.0.1 or [::1]): ` +
          `anyone who can reach this port could run commands`,
      );
    }
  } else if (!tokenGiven) {
    reader.problem(
      "token",
      `is required: set token, token_file or token_credential ` +
        `(or auth = "none" on a loopback address)`,
    );
  }
  const shell = reader.stringArray("shell", { default: ["/bin/sh", "-c"] });
  if (reader.has("shell") && shell.length === 0) {
    reader.problem("shell", `must name a program, e.g. ["/bin/sh", "-c"]`);
  }
  const shared = readCommandOptions(reader, { timeout: "30s", uid: context.uid });
  const maxOutput = reader.size("max_output", { default: "16MiB", min: 0 });
  const maxStdin = reader.size("max_stdin", { default: "1GiB", min: 0 });
  const allowCommands = reader.has("allow_commands")
    ? reader.stringArray("allow_commands", {
      check: (item) => item === "" || item.includes("\0") ? "must be a program name" : undefined,
    })
    : undefined;
  const allowShell = reader.boolean("allow_shell", allowCommands === undefined);
  if (protocol === "line" && !allowShell) {
    reader.problem("protocol", `"line" runs each line with the shell, but allow_shell is false`);
  }
  return {
    ...shared,
    protocol,
    token,
    shell,
    maxOutput,
    maxStdin,
    allowCommands,
    allowShell,
  };
}

/**
 * Summarises the options for `switchboard check` (never the token).
 * @param options the parsed options
 * @returns one line
 */
export function describeCmdOptions(options: CmdOptions): string {
  const parts = [
    options.token === undefined ? "auth=none" : "auth=token",
    ...describeCommandOptions(options),
    `max_output=${formatSize(options.maxOutput)}`,
  ];
  if (options.protocol === "line") parts.unshift("protocol=line");
  if (options.allowCommands) parts.push(`allow_commands=${options.allowCommands.join(",")}`);
  if (!options.allowShell) parts.push("shell=off");
  return parts.join(" ");
}
