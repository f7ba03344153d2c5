/**
 * The `cmd` service's config keys: reading and checking them (every problem
 * reported with its key), resolving `user`/`group` to ids, and building the
 * clean environment commands run with.
 *
 * @module
 */

import { isLoopback, type ListenAddress } from "../../lib/address.ts";
import type { OptionReader } from "../../lib/option_reader.ts";
import { readToken } from "../../lib/token.ts";
import { formatDuration, formatSize } from "../../lib/units.ts";

/** systemd's default PATH, used when neither `env` nor `pass_env` sets one. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The settings of one `cmd` listener. */
export interface CmdOptions {
  /** `framed` (DESIGN.md's header codec) or `line` (one shell line per line, for nc). */
  protocol: "framed" | "line";
  /** The shared secret every request carries; undefined only with `auth = "none"`. */
  token?: string;
  /** The program and leading arguments shell text is run with. */
  shell: string[];
  /** Longest run of a command, in ms; requests may only lower it. */
  timeoutMs: number;
  /** Most bytes of stdout plus stderr returned per command. */
  maxOutput: number;
  /** Most commands running at once on this listener. */
  maxConcurrent: number;
  /** Most stdin bytes a request may send. */
  maxStdin: number;
  /** Commands run here, and a request's `cwd` must resolve inside it (a real path). */
  workdir?: string;
  /** The command's environment (before `pass_env` and the PATH default). */
  env: Record<string, string>;
  /** Names copied from the daemon's environment when set there. */
  passEnv: string[];
  /** When set, argv[0] must be one of these (exact match). */
  allowCommands?: string[];
  /** Whether shell text (`cmd`) is accepted. */
  allowShell: boolean;
  /** Run commands as this user id. */
  uid?: number;
  /** Run commands as this group id. */
  gid?: number;
  /** The `user` key as written, for `check`. */
  user?: string;
  /** The `group` key as written, for `check`. */
  group?: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkEnvName(name: string): string | undefined {
  return ENV_NAME.test(name)
    ? undefined
    : `"${name}" is not a valid environment variable name (letters, digits and "_")`;
}

/** A system account or group, as getent(1) reports it. */
interface Account {
  /** Numeric id. */
  id: number;
  /** The primary group id (accounts only). */
  gid?: number;
}

/**
 * Looks up a user or group by name or number through NSS (getent), so LDAP
 * and systemd-homed accounts resolve as they do for login.
 */
function lookup(database: "passwd" | "group", key: string): Account | undefined {
  try {
    const output = new Deno.Command("getent", {
      args: [database, key],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!output.success) return undefined;
    const fields = new TextDecoder().decode(output.stdout).split("\n")[0]!.split(":");
    const id = Number(fields[2]);
    if (!Number.isInteger(id)) return undefined;
    return database === "passwd" ? { id, gid: Number(fields[3]) } : { id };
  } catch {
    return undefined;
  }
}

function readIdentity(
  reader: OptionReader,
  currentUid: number | null,
): { uid?: number; gid?: number; user?: string; group?: string } {
  const user = reader.string("user");
  const group = reader.string("group");
  if (user === undefined && group === undefined) return {};
  const key = user !== undefined ? "user" : "group";
  if (currentUid !== 0) {
    reader.problem(
      key,
      `running commands as another ${key} needs the daemon to run as root ` +
        `(it runs as uid ${currentUid ?? "unknown"})`,
    );
    return {};
  }
  let uid: number | undefined;
  let gid: number | undefined;
  if (user !== undefined) {
    const account = /^\d+$/.test(user) ? { id: Number(user) } : lookup("passwd", user);
    if (!account) reader.problem("user", `no such user "${user}"`);
    else {
      uid = account.id;
      gid = (account as Account).gid;
    }
  }
  if (group !== undefined) {
    const found = /^\d+$/.test(group) ? { id: Number(group) } : lookup("group", group);
    if (!found) reader.problem("group", `no such group "${group}"`);
    else gid = found.id;
  }
  return { uid, gid, user, group };
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
  const timeoutMs = reader.duration("timeout", { default: "30s", min: 1, max: MAX_TIMER_MS });
  const maxOutput = reader.size("max_output", { default: "16MiB", min: 0 });
  const maxConcurrent = reader.integer("max_concurrent", { default: 16, min: 1, max: 100_000 });
  const maxStdin = reader.size("max_stdin", { default: "1GiB", min: 0 });
  let workdir = reader.path("workdir", { mustBe: "dir" });
  if (workdir !== undefined) {
    try {
      workdir = Deno.realPathSync(workdir);
    } catch (error) {
      reader.problem("workdir", (error as Error).message);
    }
  }
  const env = reader.stringTable("env");
  for (const [name, value] of Object.entries(env)) {
    const problem = checkEnvName(name);
    if (problem) reader.problem(`env.${name}`, problem);
    if (value.includes("\0")) reader.problem(`env.${name}`, "must not contain NUL");
  }
  const passEnv = reader.stringArray("pass_env", { check: checkEnvName });
  const allowCommands = reader.has("allow_commands")
    ? reader.stringArray("allow_commands", {
      check: (item) => item === "" || item.includes("\0") ? "must be a program name" : undefined,
    })
    : undefined;
  const allowShell = reader.boolean("allow_shell", allowCommands === undefined);
  if (protocol === "line" && !allowShell) {
    reader.problem("protocol", `"line" runs each line with the shell, but allow_shell is false`);
  }
  const identity = readIdentity(reader, context.uid === undefined ? Deno.uid() : context.uid);
  return {
    protocol,
    token,
    shell,
    timeoutMs,
    maxOutput,
    maxConcurrent,
    maxStdin,
    workdir,
    env,
    passEnv,
    allowCommands,
    allowShell,
    ...identity,
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
    `timeout=${formatDuration(options.timeoutMs)}`,
    `max_output=${formatSize(options.maxOutput)}`,
    `max_concurrent=${options.maxConcurrent}`,
  ];
  if (options.protocol === "line") parts.unshift("protocol=line");
  if (options.workdir) parts.push(`workdir=${options.workdir}`);
  if (options.allowCommands) parts.push(`allow_commands=${options.allowCommands.join(",")}`);
  if (!options.allowShell) parts.push("shell=off");
  if (options.user !== undefined) parts.push(`user=${options.user}`);
  if (options.group !== undefined) parts.push(`group=${options.group}`);
  return parts.join(" ");
}

/**
 * Builds the environment commands run with: the `env` table, plus each
 * `pass_env` name the daemon has, plus PATH={@linkcode DEFAULT_PATH} when
 * neither gave a PATH. Nothing else of the daemon's environment leaks in.
 * @param options the listener's options
 * @param daemonEnv reads the daemon's environment @default {Deno.env.get}
 * @returns the complete environment
 */
export function commandEnvironment(
  options: Pick<CmdOptions, "env" | "passEnv">,
  daemonEnv: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of options.passEnv) {
    const value = daemonEnv(name);
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, options.env);
  env.PATH ??= DEFAULT_PATH;
  return env;
}
