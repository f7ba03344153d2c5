/**
 * Containment of client paths under a served root (the `file` service).
 *
 * A request path is first checked as text ({@linkcode splitRequestPath}):
 * `/`-separated, relative, no `..`, no NUL, no backslash, no name over 255
 * bytes, no hidden name unless allowed. It is then resolved on disk
 * ({@linkcode ServedRoot}): the real path (symlinks followed) must lie under
 * the root's real path. Deno has no `openat`/`O_NOFOLLOW`, so what is
 * actually opened is checked too: the opened file's (dev, ino) must be those
 * of the resolved path inside the root, taken before the open.
 *
 * These metadata calls are synchronous on purpose: on this machine an async
 * open + fstat + read of a 4 KiB file costs 82 µs (a thread-pool round trip
 * per call), the sync calls 8 µs. Like nginx's blocking open(), a slow (e.g.
 * network) file system can then stall the event loop for the call's duration.
 *
 * What remains (documented in docs/file.md): between the checks and the open
 * a local user who can write inside the root could swap a directory for a
 * symlink and back; the daemon may then open an outside file for an instant,
 * but never sends it (its identity does not match). A hard link inside the
 * root to an outside file is inside the root.
 *
 * @module
 */

import { RequestError } from "../../lib/framed_server.ts";
import { isUploadTempName } from "./atomic_upload.ts";

/** The longest name (one path component) in UTF-8 bytes, as on Linux. */
export const MAX_NAME_BYTES = 255;
/** The longest request path in UTF-8 bytes (PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

const encoder = new TextEncoder();

/** What a listener lets clients see. */
export interface PathRules {
  /** Whether names starting with "." are visible. */
  showHidden: boolean;
}

/**
 * Whether a name is hidden (starts with ".").
 * @param name one path component
 * @returns true for hidden names
 */
export function isHiddenName(name: string): boolean {
  return name.startsWith(".");
}

/**
 * Whether a name can be addressed by a client at all: names with a
 * backslash, hidden names (unless shown) and upload temporaries cannot.
 * @param name a directory entry's name
 * @param rules the listener's rules
 * @returns true when a request could name it
 */
export function isServableName(name: string, rules: PathRules): boolean {
  if (name === "" || name.includes("\\") || name.includes("\0")) return false;
  if (isUploadTempName(name)) return false;
  if (!rules.showHidden && isHiddenName(name)) return false;
  return encoder.encode(name).length <= MAX_NAME_BYTES;
}

/**
 * Checks a request path as text and splits it into names. `""`, `"."` and
 * `"/"`-free relative paths are accepted; empty and `.` components are
 * dropped (`a//b/./c` is `a/b/c`).
 *
 * @example
 * ```ts
 * import { splitRequestPath } from "./safe_path.ts";
 * const names = splitRequestPath("docs//guide/./intro.md", { showHidden: false });
 * if (names.join("|") !== "docs|guide|intro.md") throw new Error("wrong split");
 * ```
 *
 * @param path the `path` field as the client sent it
 * @param rules whether hidden names are visible
 * @returns the names, empty for the root
 * @throws {RequestError} `bad_request` when not a string or not valid
 *   Unicode; `forbidden` for absolute paths, `..`, NUL, backslashes and
 *   over-long names; `not_found` for hidden names when they are not shown
 */
export function splitRequestPath(path: unknown, rules: PathRules): string[] {
  if (typeof path !== "string") {
    throw new RequestError("bad_request", '"path" must be a string');
  }
  if (!path.isWellFormed()) {
    throw new RequestError("bad_request", '"path" is not valid Unicode');
  }
  if (path.includes("\0")) throw new RequestError("forbidden", "Path contains a NUL byte");
  if (path.startsWith("/")) {
    throw new RequestError(
      "forbidden",
      "Absolute paths are not allowed: paths are relative to the served root",
    );
  }
  if (path.includes("\\")) {
    throw new RequestError("forbidden", 'Backslashes are not allowed in paths: use "/"');
  }
  if (encoder.encode(path).length > MAX_PATH_BYTES) {
    throw new RequestError("forbidden", `Path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  const names: string[] = [];
  for (const name of path.split("/")) {
    if (name === "" || name === ".") continue;
    if (name === "..") throw new RequestError("forbidden", 'Path escapes the served root ("..")');
    if (encoder.encode(name).length > MAX_NAME_BYTES) {
      throw new RequestError(
        "forbidden",
        `A name in the path is longer than ${MAX_NAME_BYTES} bytes`,
      );
    }
    names.push(name);
  }
  // Checked after the loop so that a ".." anywhere is reported as forbidden.
  for (const name of names) {
    if ((!rules.showHidden && isHiddenName(name)) || isUploadTempName(name)) {
      throw notFound(names);
    }
  }
  return names;
}

/**
 * The canonical form of a checked path (names joined by "/", "" for the root).
 * @param names from {@linkcode splitRequestPath}
 * @returns the path as replies show it
 */
export function joinNames(names: readonly string[]): string {
  return names.join("/");
}

function notFound(names: readonly string[]): RequestError {
  return new RequestError("not_found", `No such file or directory: "${joinNames(names)}"`);
}

/** A file opened under the root, with its identity checked. */
export interface OpenedFile {
  /** The open file (the caller closes it). */
  file: Deno.FsFile;
  /** The opened file's own stat (fstat). */
  info: Deno.FileInfo;
  /** Its real path, inside the root. */
  real: string;
}

/** What a resolved path is: a regular file or a directory. */
export interface ResolvedEntry {
  /** The real path (no symlinks), inside the root. */
  real: string;
  /** lstat of the real path (so never a symlink). */
  info: Deno.FileInfo;
}

/**
 * Maps a file-system error to the error the client gets.
 * @param error what a Deno file operation threw
 * @param names the request path, for the message
 * @returns a request error (`not_found`, `forbidden` or `io_error`)
 */
export function fileSystemError(error: unknown, names: readonly string[]): RequestError {
  if (error instanceof RequestError) return error;
  if (
    error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory ||
    error instanceof Deno.errors.FilesystemLoop
  ) {
    return notFound(names);
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new RequestError("forbidden", `Permission denied: "${joinNames(names)}"`);
  }
  return new RequestError("io_error", `Cannot access "${joinNames(names)}": ${osMessage(error)}`);
}

/**
 * The OS's reason without the path Deno appends (paths outside the root
 * must not leak to clients).
 * @param error anything thrown
 * @returns e.g. `No space left on device (os error 28)`
 */
export function osMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Deno appends the operation and its paths: "… (os error 2): open '/x'".
  const os = /^.*?\(os error \d+\)/.exec(message);
  return os ? os[0] : message.replace(/: [a-z_]+ '.*$/s, "");
}

/** A served root: resolves request paths and opens files inside it only. */
export class ServedRoot {
  /** The root's real path (symlinks resolved at start-up). */
  readonly path: string;
  readonly #prefix: string;
  readonly #rules: PathRules;

  private constructor(path: string, rules: PathRules) {
    this.path = path;
    this.#prefix = path === "/" ? "/" : `${path}/`;
    this.#rules = rules;
  }

  /**
   * Resolves the configured root.
   * @param root the configured root directory
   * @param rules whether hidden names are visible
   * @returns the served root
   * @throws {Error} when the root does not exist or is not a directory
   */
  static async open(root: string, rules: PathRules): Promise<ServedRoot> {
    const real = await Deno.realPath(root);
    const info = await Deno.stat(real);
    if (!info.isDirectory) throw new Error(`Cannot serve "${root}": not a directory`);
    return new ServedRoot(real, rules);
  }

  /**
   * Whether an absolute real path is the root or under it.
   * @param real an absolute path without symlinks
   * @returns true when inside
   */
  contains(real: string): boolean {
    return real === this.path || real.startsWith(this.#prefix);
  }

  /**
   * The path of `names` under the root, not resolved.
   * @param names checked names
   * @returns an absolute path
   */
  join(names: readonly string[]): string {
    return names.length === 0 ? this.path : this.#prefix + names.join("/");
  }

  /**
   * The names of a real path relative to the root.
   * @param real an absolute path inside the root
   * @returns its names, empty for the root
   */
  namesOf(real: string): string[] {
    return real === this.path ? [] : real.slice(this.#prefix.length).split("/");
  }

  /**
   * Resolves symlinks and checks that the result stays inside the root and
   * visible (a visible symlink to a hidden file is not a way around
   * `show_hidden`).
   * @param absolute an absolute path under the root (unresolved)
   * @param names the request path, for messages
   * @returns the real path
   * @throws {RequestError} `forbidden` outside the root; `not_found` when
   *   missing or hidden
   */
  realPathOf(absolute: string, names: readonly string[]): string {
    let real: string;
    try {
      real = Deno.realPathSync(absolute);
    } catch (error) {
      throw fileSystemError(error, names);
    }
    if (!this.contains(real)) {
      throw new RequestError("forbidden", `"${joinNames(names)}" resolves outside the served root`);
    }
    for (const name of this.namesOf(real)) {
      if ((!this.#rules.showHidden && isHiddenName(name)) || isUploadTempName(name)) {
        throw notFound(names);
      }
    }
    return real;
  }

  /**
   * Resolves a checked path to a regular file or directory inside the root.
   * Only the names under the root are examined (its own real path is known):
   * one lstat per name, and a realpath (with the containment check) only
   * where a name is a symlink.
   * @param names from {@linkcode splitRequestPath}
   * @returns its real path and lstat
   * @throws {RequestError} `forbidden` outside the root or for other kinds
   *   (FIFOs, sockets, devices); `not_found` when missing or hidden
   */
  resolve(names: readonly string[]): ResolvedEntry {
    let real = this.path;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(real);
      for (let i = 0; i < names.length; i++) {
        if (!info.isDirectory) throw notFound(names);
        const next = `${real === "/" ? "" : real}/${names[i]}`;
        info = Deno.lstatSync(next);
        if (info.isSymlink) {
          real = this.realPathOf(next, names);
          info = Deno.lstatSync(real);
        } else {
          real = next;
        }
      }
    } catch (error) {
      throw fileSystemError(error, names);
    }
    if (!info.isFile && !info.isDirectory) {
      throw new RequestError(
        "forbidden",
        `"${joinNames(names)}" is not a regular file or directory`,
      );
    }
    return { real, info };
  }

  /**
   * Opens a resolved entry for reading and checks that what was opened is
   * the entry that was checked: the same (dev, ino) as the lstat of its
   * real path inside the root. A directory swapped for a symlink between
   * the check and the open makes the open reach another file, whose
   * identity differs: it is refused before a byte is read.
   * @param names the request path, for messages
   * @param entry from {@linkcode ServedRoot.resolve}
   * @returns the open file with its fstat
   * @throws {RequestError} `forbidden` when the identity does not match
   */
  openResolved(names: readonly string[], entry: ResolvedEntry): OpenedFile {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(entry.real, { read: true });
    } catch (error) {
      throw fileSystemError(error, names);
    }
    try {
      const info = file.statSync();
      if (!sameFile(info, entry.info)) {
        throw new RequestError("forbidden", `"${joinNames(names)}" changed while it was opened`);
      }
      return { file, info, real: entry.real };
    } catch (error) {
      file.close();
      throw fileSystemError(error, names);
    }
  }

  /**
   * Checks that a directory is still what was resolved (after reading it by
   * path, which Deno cannot do through a descriptor).
   * @param names the request path, for messages
   * @param entry from {@linkcode ServedRoot.resolve}
   * @throws {RequestError} `forbidden` when it changed
   */
  recheck(names: readonly string[], entry: ResolvedEntry): void {
    let again: ResolvedEntry;
    try {
      again = this.resolve(names);
    } catch {
      throw new RequestError("forbidden", `"${joinNames(names)}" changed while it was read`);
    }
    if (again.real !== entry.real || !sameFile(again.info, entry.info)) {
      throw new RequestError("forbidden", `"${joinNames(names)}" changed while it was read`);
    }
  }
}

/**
 * Whether two stats describe the same file (device and inode).
 * @param a one stat
 * @param b another
 * @returns true when both have dev and ino and they match
 */
export function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.dev === b.dev && a.ino !== null && a.ino === b.ino;
}
