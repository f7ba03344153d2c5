/**
 * Finding and loading the config: `-c FILE`, `$SWITCHBOARD_CONFIG`,
 * `./switchboard.toml`, `/etc/switchboard/switchboard.toml`, else the
 * embedded default (loopback only, and only what is safe).
 *
 * @module
 */

import { resolve } from "node:path";
import { type Config, ConfigError, parseConfig } from "./config.ts";
import type { Service } from "./service.ts";

/** Where a config comes from. */
export type ConfigSource =
  | { kind: "file"; path: string; why: "-c" | "SWITCHBOARD_CONFIG" | "search" }
  | { kind: "embedded" };

/** Name shown for the embedded default in messages. */
export const EMBEDDED = "<embedded default>";

/** The environment the search looks at (injectable for tests). */
export interface ConfigEnvironment {
  /** Reads an environment variable. @default {Deno.env.get} */
  env?: (name: string) => string | undefined;
  /** The working directory. @default {Deno.cwd()} */
  cwd?: string;
  /** Paths searched when neither -c nor $SWITCHBOARD_CONFIG is given. */
  searchPaths?: readonly string[];
}

function envOf(environment: ConfigEnvironment): (name: string) => string | undefined {
  return environment.env ?? ((name) => Deno.env.get(name));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides which config to use, in the documented order (README, "Configuration").
 * @param explicit the `-c FILE` argument, if any
 * @param environment environment, working directory and search paths
 * @returns the source; a `-c` or `$SWITCHBOARD_CONFIG` file is returned even
 *   when missing, so that loading it fails (exit 78) instead of falling back
 */
export function findConfigSource(
  explicit: string | undefined,
  environment: ConfigEnvironment = {},
): ConfigSource {
  const cwd = environment.cwd ?? Deno.cwd();
  if (explicit !== undefined) return { kind: "file", path: resolve(cwd, explicit), why: "-c" };
  const fromEnv = envOf(environment)("SWITCHBOARD_CONFIG");
  if (fromEnv) return { kind: "file", path: resolve(cwd, fromEnv), why: "SWITCHBOARD_CONFIG" };
  const candidates = environment.searchPaths ??
    ["switchboard.toml", "/etc/switchboard/switchboard.toml"];
  for (const candidate of candidates) {
    const path = resolve(cwd, candidate);
    if (exists(path)) return { kind: "file", path, why: "search" };
  }
  return { kind: "embedded" };
}

/** The embedded default config and what it left out. */
export interface DefaultConfig {
  /** TOML text. */
  text: string;
  /** One line per thing skipped and why. */
  notes: string[];
}

/**
 * Builds the embedded default from the service table: each service that has
 * an embedded part runs on `127.0.0.1` at its default port (echo, chat and
 * time always; file read-only on `./files` when that folder exists; cmd only
 * when `SWITCHBOARD_TOKEN` is set, with that token).
 * @param services the service table
 * @param environment environment and working directory
 * @returns the TOML text and the notes on what was skipped
 */
export function defaultConfig(
  services: readonly Service[],
  environment: ConfigEnvironment = {},
): DefaultConfig {
  const embedded = { cwd: environment.cwd ?? Deno.cwd(), env: envOf(environment) };
  const notes: string[] = [];
  const listeners: string[] = [];
  for (const service of services) {
    const part = service.embeddedDefault?.(embedded);
    if (!part) continue;
    if (part.note) notes.push(`Embedded default: ${part.note}`);
    for (const keys of part.listeners) {
      const fields = {
        name: keys.name,
        service: service.name,
        ...keys,
        listen: `127.0.0.1:${service.defaultPort}`,
      };
      listeners.push(
        "[[listener]]\n" +
          Object.entries(fields).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n"),
      );
    }
  }
  return { text: `[daemon]\nlog_level = "info"\n\n${listeners.join("\n\n")}\n`, notes };
}

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions extends ConfigEnvironment {
  /** The service table (from the composition root, `handlers/mod.ts`). */
  services: readonly Service[];
}

/**
 * Loads and validates the config from `source`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config_file.ts";
 * import { defineService } from "./service.ts";
 * const hello = defineService({
 *   name: "hello",
 *   transports: ["tcp"],
 *   defaultPort: 7100,
 *   embeddedDefault: () => ({ listeners: [{ name: "hello" }] }),
 *   parseOptions: () => ({}),
 *   open: () => ({ stream: async () => {} }),
 * });
 * const config = await loadConfig({ kind: "embedded" }, {
 *   services: [hello],
 *   env: () => undefined,
 *   cwd: "/",
 * });
 * if (config.listeners[0]?.address.port !== 7100) throw new Error("default port");
 * ```
 *
 * @param source from {@linkcode findConfigSource}
 * @param options the service table; environment and working directory (for the embedded default)
 * @returns the validated config
 * @throws {ConfigError} when the file cannot be read or is invalid
 */
export async function loadConfig(
  source: ConfigSource,
  options: LoadConfigOptions,
): Promise<Config> {
  const { services } = options;
  if (source.kind === "embedded") {
    const { text, notes } = defaultConfig(services, options);
    const config = parseConfig(text, EMBEDDED, { services, baseDir: options.cwd ?? Deno.cwd() });
    return { ...config, notes: [...notes, ...config.notes] };
  }
  let text: string;
  try {
    text = await Deno.readTextFile(source.path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (error as Error).message;
    const via = source.why === "search" ? "" : ` (given by ${source.why})`;
    throw new ConfigError([{
      file: source.path,
      key: "",
      message: `cannot read config${via}: ${why}`,
    }]);
  }
  return parseConfig(text, source.path, { services });
}
