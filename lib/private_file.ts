/**
 * Reading files that hold secrets (token files, TLS private keys): a secret
 * must be a regular file that neither its group nor others can read or
 * write, as ssh insists for private keys.
 *
 * @module
 */

/** A secret file is missing, not a regular file, or open to others; the message says which. */
export class PrivateFileError extends Error {
  /**
   * @param message what is wrong, naming the file
   */
  constructor(message: string) {
    super(message);
    this.name = "PrivateFileError";
  }
}

/**
 * Reads a secret file after checking its kind and mode.
 *
 * @example
 * ```ts
 * import { readPrivateFile, PrivateFileError } from "./private_file.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "s3cret\n", { mode: 0o644 });
 * Deno.chmodSync(path, 0o644);
 * try {
 *   readPrivateFile(path);
 *   throw new Error("a world-readable secret was accepted");
 * } catch (error) {
 *   if (!(error instanceof PrivateFileError)) throw error;
 * }
 * Deno.chmodSync(path, 0o600);
 * if (readPrivateFile(path) !== "s3cret\n") throw new Error("wrong text");
 * Deno.removeSync(path);
 * ```
 *
 * @param path an absolute path
 * @returns the file's text
 * @throws {PrivateFileError} when the file does not exist, is not a regular
 *   file, is readable or writable by group or others, or cannot be read
 */
export function readPrivateFile(path: string): string {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new PrivateFileError(`"${path}" is not a regular file`);
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      throw new PrivateFileError(`"${path}" is readable by others (mode ${mode}): chmod 600 it`);
    }
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof PrivateFileError) throw error;
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : (error as Error).message;
    throw new PrivateFileError(`"${path}" ${why}`);
  }
}
