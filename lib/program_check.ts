/**
 * Whether a program can be run, checked the way a shell looks it up, so a
 * service that runs programs (cmd, exec) can report "command not found"
 * (127) or "Permission denied" (126) as a shell would.
 *
 * @module
 */

import { resolve } from "node:path";

/** Why a program cannot be run, as a shell would say and exit. */
export interface ProgramProblem {
  /** 127 not found, 126 found but not executable. */
  code: 126 | 127;
  /** One line for the command's stderr. */
  message: string;
}

function executable(path: string): "yes" | "no" | "dir" | "missing" {
  try {
    const info = Deno.statSync(path);
    if (info.isDirectory) return "dir";
    if (!info.isFile) return "no";
    return info.mode === null || (info.mode & 0o111) !== 0 ? "yes" : "no";
  } catch {
    return "missing";
  }
}

/**
 * Finds the file a program name stands for, the way a shell looks it up: a
 * name with a `/` is a path (relative to `cwd`); a bare name is searched in
 * `path` (relative entries against `cwd`, an empty one is `cwd`).
 * @param program argv[0]
 * @param path the command's PATH
 * @param cwd the command's working directory
 * @returns the absolute path of an executable file, or undefined
 */
export function locateProgram(program: string, path: string, cwd: string): string | undefined {
  if (program.includes("/")) {
    const file = resolve(cwd, program);
    return executable(file) === "yes" ? file : undefined;
  }
  for (const dir of path.split(":")) {
    const file = resolve(cwd, dir === "" ? "." : dir, program);
    if (executable(file) === "yes") return file;
  }
  return undefined;
}

/**
 * Checks that a program can be run, the way a shell looks it up: a name with
 * a `/` is a path (relative to `cwd`); a bare name is searched in `path`.
 * @param program argv[0]
 * @param path the command's PATH
 * @param cwd the command's working directory
 * @returns undefined when it can run, else the exit code and message a shell gives
 */
export function checkProgram(
  program: string,
  path: string,
  cwd: string,
): ProgramProblem | undefined {
  if (program.includes("/")) {
    switch (executable(resolve(cwd, program))) {
      case "yes":
        return undefined;
      case "missing":
        return { code: 127, message: `${program}: No such file or directory` };
      case "dir":
        return { code: 126, message: `${program}: Is a directory` };
      default:
        return { code: 126, message: `${program}: Permission denied` };
    }
  }
  let denied = false;
  for (const dir of path.split(":")) {
    const state = executable(resolve(cwd, dir === "" ? "." : dir, program));
    if (state === "yes") return undefined;
    if (state === "no") denied = true;
  }
  return denied
    ? { code: 126, message: `${program}: Permission denied` }
    : { code: 127, message: `${program}: command not found` };
}
