/**
 * Checking a `cmd` exec request against docs/protocol.md and the listener's rules:
 * exactly one of `cmd` / `argv`, well-typed fields, stdin within
 * `max_stdin`, the command allowed, `cwd` inside `workdir`. Every refusal is
 * a {@linkcode RequestError}; nothing has run yet when one is thrown.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { CmdOptions } from "./options.ts";
import { RequestError } from "../../lib/framed_server.ts";
import type { FrameHeader } from "../../lib/header_codec.ts";
import { formatSize } from "../../lib/units.ts";

/** How a command gets its stdin. */
export type StdinMode = "none" | "body" | "stream";

/** A checked exec request. */
export interface ExecRequest {
  /** The program and its arguments (for shell text: the shell, its flags, the text). */
  argv: string[];
  /** Whether the request was shell text (`cmd`) rather than `argv`. */
  shell: boolean;
  /** What the request asked to run, for logs: the shell text or the argv. */
  display: string;
  /** The timeout in ms: the listener's, or the request's when lower. */
  timeoutMs: number;
  /** The `cwd` the request gave, unresolved. */
  cwd?: string;
  /** Where stdin comes from. */
  stdin: StdinMode;
  /** Body length when `stdin` is `body`. */
  size: number;
}

function badRequest(message: string): RequestError {
  return new RequestError("bad_request", message);
}

function checkText(value: string, what: string): void {
  if (value.includes("\0")) throw badRequest(`${what} must not contain NUL`);
}

/**
 * Checks an exec header and decides what would run.
 * @param header the request header (`op` is `exec`)
 * @param options the listener's options
 * @returns the checked request
 * @throws {RequestError} `bad_request` for missing, contradictory or mistyped
 *   fields; `too_large` for a body over `max_stdin`; `forbidden` for a
 *   command the listener does not allow
 */
export function parseExecRequest(
  header: FrameHeader,
  options: Pick<CmdOptions, "shell" | "timeoutMs" | "maxStdin" | "allowCommands" | "allowShell">,
): ExecRequest {
  const hasCmd = header.cmd !== undefined;
  const hasArgv = header.argv !== undefined;
  if (hasCmd === hasArgv) {
    throw badRequest(
      hasCmd
        ? 'Give either "cmd" (shell text) or "argv" (a program and its arguments), not both'
        : 'Missing command: give "cmd" (shell text) or "argv" (a program and its arguments)',
    );
  }
  let argv: string[];
  let display: string;
  if (hasCmd) {
    if (typeof header.cmd !== "string") throw badRequest('"cmd" must be a string');
    checkText(header.cmd, '"cmd"');
    argv = [...options.shell, header.cmd];
    display = header.cmd;
  } else {
    const list = header.argv;
    if (!Array.isArray(list) || list.length === 0) {
      throw badRequest('"argv" must be a non-empty array of strings');
    }
    list.forEach((item, index) => {
      if (typeof item !== "string") throw badRequest(`"argv[${index}]" must be a string`);
      checkText(item, `"argv[${index}]"`);
    });
    if (list[0] === "") throw badRequest('"argv[0]" must name a program');
    argv = list as string[];
    display = JSON.stringify(argv);
  }

  let timeoutMs = options.timeoutMs;
  if (header.timeout_ms !== undefined) {
    const asked = header.timeout_ms;
    if (typeof asked !== "number" || !Number.isFinite(asked) || asked <= 0) {
      throw badRequest('"timeout_ms" must be a positive number of milliseconds');
    }
    timeoutMs = Math.min(timeoutMs, Math.ceil(asked));
  }

  let cwd: string | undefined;
  if (header.cwd !== undefined) {
    if (typeof header.cwd !== "string" || header.cwd === "") {
      throw badRequest('"cwd" must be a non-empty string');
    }
    checkText(header.cwd, '"cwd"');
    cwd = header.cwd;
  }

  let stdin: StdinMode = header.size === undefined ? "none" : "body";
  if (header.stdin !== undefined) {
    if (header.stdin !== "stream") {
      throw badRequest('"stdin" must be "stream" (or absent: stdin as the body, if any)');
    }
    if (header.size !== undefined) {
      throw badRequest('"stdin": "stream" contradicts a body ("size"): use one or the other');
    }
    stdin = "stream";
  }
  const size = header.size ?? 0;
  if (size > options.maxStdin) {
    throw new RequestError(
      "too_large",
      `stdin of ${size} bytes is over this listener's max_stdin (${formatSize(options.maxStdin)})`,
    );
  }

  if (hasCmd && !options.allowShell) {
    throw new RequestError(
      "forbidden",
      'Shell commands ("cmd") are not allowed here: send "argv" with an allowed program',
    );
  }
  if (!hasCmd && options.allowCommands && !options.allowCommands.includes(argv[0]!)) {
    throw new RequestError("forbidden", `Command "${argv[0]}" is not allowed here`);
  }
  return { argv, shell: hasCmd, display, timeoutMs, cwd, stdin, size };
}

/**
 * Resolves a request's working directory. Relative paths start at
 * `workdir` (or the daemon's directory); symlinks are resolved, and with a
 * `workdir` the result must be inside it.
 * @param requested the request's `cwd`, or undefined for the default
 * @param options the listener's `workdir`
 * @param daemonCwd the daemon's working directory @default {Deno.cwd()}
 * @returns the absolute, real directory
 * @throws {RequestError} `forbidden` outside `workdir`, `not_found` when it
 *   does not exist, `bad_request` when it is not a directory
 */
export function resolveCwd(
  requested: string | undefined,
  options: Pick<CmdOptions, "workdir">,
  daemonCwd: string = Deno.cwd(),
): string {
  const base = options.workdir ?? daemonCwd;
  if (requested === undefined) return base;
  const wanted = isAbsolute(requested) ? requested : resolve(base, requested);
  let real: string;
  try {
    real = Deno.realPathSync(wanted);
  } catch (error) {
    // Existence is not revealed outside the workdir.
    if (options.workdir && !inside(resolve(wanted), options.workdir)) throw outsideWorkdir();
    if (error instanceof Deno.errors.NotFound) {
      throw new RequestError("not_found", `No such directory "${requested}"`);
    }
    throw new RequestError("forbidden", `Cannot use directory "${requested}"`);
  }
  if (options.workdir && !inside(real, options.workdir)) throw outsideWorkdir();
  let isDirectory = false;
  try {
    isDirectory = Deno.statSync(real).isDirectory;
  } catch {
    // Vanished meanwhile: reported as not a directory.
  }
  if (!isDirectory) throw badRequest(`"cwd" "${requested}" is not a directory`);
  return real;
}

function outsideWorkdir(): RequestError {
  return new RequestError("forbidden", '"cwd" must be inside this listener\'s workdir');
}

function inside(path: string, root: string): boolean {
  return root === "/" || path === root || path.startsWith(root + "/");
}
