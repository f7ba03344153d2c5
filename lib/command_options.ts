/**
 * The config keys every service that runs programs shares (cmd and exec):
 * `timeout`, `max_concurrent`, `workdir`, `env`, `pass_env`, `user` and
 * `group` — reading and checking them (every problem reported with its key),
 * resolving `user`/`group` to ids, and building the clean environment
 * programs run with.
 *
 * @module
 */

import type { OptionReader } from "./option_reader.ts";
import { formatDuration } from "./units.ts";

/** systemd's default PATH, used when neither `env` nor `pass_env` sets one. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** How programs run on one listener. */
export interface CommandOptions {
  /** Longest run of a program, in ms; 0 for no limit (where the service allows it). */
  timeoutMs: number;
  /** Most programs running at once on this listener. */
  maxConcurrent: number;
  /** Programs run here (a real path). */
  workdir?: string;
  /** The program's environment (before `pass_env` and the PATH default). */
  env: Record<string, string>;
  /** Names copied from the daemon's environment when set there. */
  passEnv: string[];
  /** Run programs as this user id. */
  uid?: number;
  /** Run programs as this group id. */
  gid?: number;
  /** The `user` key as written, for `check`. */
  user?: string;
  /** The `group` key as written, for `check`. */
  group?: string;
}

/** Per-service defaults of {@linkcode readCommandOptions}. */
export interface CommandDefaults {
  /** The default `timeout` (a duration text; `"0"` for none). */
  timeout: string;
  /** Whether `timeout = 0` (no limit) is allowed. @default {false} */
  allowNoTimeout?: boolean;
  /** The daemon's uid (the `user`/`group` keys need root). @default {Deno.uid()} */
  uid?: number | null;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks an environment variable name.
 * @param name the name
 * @returns a problem message, or undefined when the name is valid
 */
export function checkEnvName(name: string): string | undefined {
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

/**
 * Reads the shared keys of a listener that runs programs.
 * @param reader the listener's option reader (problems go there)
 * @param defaults the service's default timeout and whether it may be 0
 * @returns the options (only meaningful when no problem was reported)
 */
export function readCommandOptions(
  reader: OptionReader,
  defaults: CommandDefaults,
): CommandOptions {
  const timeoutMs = reader.duration("timeout", {
    default: defaults.timeout === "0" ? 0 : defaults.timeout,
    min: defaults.allowNoTimeout ? 0 : 1,
    max: MAX_TIMER_MS,
  });
  const maxConcurrent = reader.integer("max_concurrent", { default: 16, min: 1, max: 100_000 });
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
  const identity = readIdentity(reader, defaults.uid === undefined ? Deno.uid() : defaults.uid);
  return { timeoutMs, maxConcurrent, workdir, env, passEnv, ...identity };
}

/**
 * Summarises the shared options for `switchboard check`.
 * @param options the parsed options
 * @returns `key=value` parts: timeout and max_concurrent, then workdir, user
 *   and group when set
 */
export function describeCommandOptions(options: CommandOptions): string[] {
  const parts = [
    `timeout=${options.timeoutMs === 0 ? "none" : formatDuration(options.timeoutMs)}`,
    `max_concurrent=${options.maxConcurrent}`,
  ];
  if (options.workdir) parts.push(`workdir=${options.workdir}`);
  if (options.user !== undefined) parts.push(`user=${options.user}`);
  if (options.group !== undefined) parts.push(`group=${options.group}`);
  return parts;
}

/**
 * Builds the environment programs run with: the `env` table, plus each
 * `pass_env` name the daemon has, plus PATH={@linkcode DEFAULT_PATH} when
 * neither gave a PATH. Nothing else of the daemon's environment leaks in.
 * @param options the listener's options
 * @param daemonEnv reads the daemon's environment @default {Deno.env.get}
 * @returns the complete environment
 */
export function commandEnvironment(
  options: Pick<CommandOptions, "env" | "passEnv">,
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
