/**
 * Atomic uploads: the bytes go to a hidden, unique temporary file in the
 * target directory, which is fsynced and then renamed (or hard-linked, when
 * an existing file must not be replaced) onto the target. Readers never see
 * a partial file, and a failure never damages an existing one. Temporary
 * files left by a crash are removed at start-up.
 *
 * @module
 */

import { join } from "node:path";

/** The prefix of upload temporaries: hidden, and recognisable after a crash. */
export const UPLOAD_TEMP_PREFIX = ".switchboard-upload-";

const TEMP_NAME = /^\.switchboard-upload-[0-9a-f]{16}\.tmp$/;

/**
 * Whether a name is one of our upload temporaries.
 * @param name a file name
 * @returns true for names made by {@linkcode AtomicUpload.create}
 */
export function isUploadTempName(name: string): boolean {
  return name.startsWith(UPLOAD_TEMP_PREFIX) && TEMP_NAME.test(name);
}

/** The target appeared (or was there) and must not be replaced. */
export class TargetExistsError extends Error {
  /**
   * @param target the target path
   */
  constructor(target: string) {
    super(`Cannot commit upload: "${target}" exists`);
    this.name = "TargetExistsError";
  }
}

function randomHex(bytes: number): string {
  const data = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(data, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** One upload in progress: a temporary file that becomes the target on commit. */
export class AtomicUpload {
  /** The temporary file's path. */
  readonly tempPath: string;
  /** The target's path. */
  readonly targetPath: string;
  /** The open temporary file (written by the caller). */
  readonly file: Deno.FsFile;
  readonly #dir: string;
  readonly #inFlight: Set<string>;
  #closed = false;
  #done = false;

  private constructor(
    dir: string,
    tempPath: string,
    targetPath: string,
    file: Deno.FsFile,
    inFlight: Set<string>,
  ) {
    this.#dir = dir;
    this.tempPath = tempPath;
    this.targetPath = targetPath;
    this.file = file;
    this.#inFlight = inFlight;
  }

  /**
   * Creates the temporary file (mode 0644 less the umask) next to the target.
   * @param dir the target directory (a real path)
   * @param name the target's name in `dir`
   * @param inFlight the set of temporaries in use in this process (start-up
   *   clean-up spares them); the new one is added until commit or abort
   * @returns the upload
   * @throws {Deno.errors.PermissionDenied} and other errors from creating the file
   */
  static async create(dir: string, name: string, inFlight: Set<string>): Promise<AtomicUpload> {
    for (let attempt = 0;; attempt++) {
      const tempPath = join(dir, `${UPLOAD_TEMP_PREFIX}${randomHex(8)}.tmp`);
      try {
        const file = await Deno.open(tempPath, { write: true, createNew: true, mode: 0o644 });
        inFlight.add(tempPath);
        return new AtomicUpload(dir, tempPath, join(dir, name), file, inFlight);
      } catch (error) {
        // A clash of 64 random bits: try another name.
        if (!(error instanceof Deno.errors.AlreadyExists) || attempt >= 3) throw error;
      }
    }
  }

  /**
   * Writes all of `bytes` to the temporary file.
   * @param bytes the next part of the content
   * @throws {Error} when the disk fails (e.g. no space left)
   */
  async write(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(await this.file.write(rest));
  }

  /**
   * Makes the content durable and visible at the target: fsync, then rename
   * (replace) or hard link plus unlink (no replace, atomic against a file
   * that appears meanwhile), then fsync the directory.
   * @param options whether an existing target may be replaced
   * @throws {TargetExistsError} when the target exists and `replace` is false
   * @throws {Error} when the disk fails; the temporary file is then removed
   */
  async commit(options: { replace: boolean }): Promise<void> {
    try {
      await this.file.syncData();
      this.#close();
      if (options.replace) {
        await Deno.rename(this.tempPath, this.targetPath);
      } else {
        await this.#linkNoReplace();
      }
      this.#done = true;
      this.#inFlight.delete(this.tempPath);
    } catch (error) {
      await this.abort();
      throw error;
    }
    await syncDirectory(this.#dir);
  }

  async #linkNoReplace(): Promise<void> {
    try {
      await Deno.link(this.tempPath, this.targetPath);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new TargetExistsError(this.targetPath);
      // A file system without hard links: check, then rename (a small race).
      if (await exists(this.targetPath)) throw new TargetExistsError(this.targetPath);
      await Deno.rename(this.tempPath, this.targetPath);
      return;
    }
    await Deno.remove(this.tempPath).catch(() => {});
  }

  /** Closes and removes the temporary file (idempotent, never throws). */
  async abort(): Promise<void> {
    this.#close();
    if (this.#done) return;
    this.#done = true;
    try {
      await Deno.remove(this.tempPath);
    } catch {
      // Already gone, or the directory is gone: nothing is left behind either way.
    }
    this.#inFlight.delete(this.tempPath);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.file.close();
    } catch {
      // Already closed.
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Fsyncs a directory so that a rename in it survives a crash (best effort:
 * some file systems refuse).
 * @param dir the directory
 */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not supported here; the rename itself is still atomic.
  }
}

/** What {@linkcode removeStaleUploads} did. */
export interface StaleUploadSweep {
  /** Temporary files removed. */
  removed: number;
  /** Whether the whole tree was visited (false when the entry budget ran out). */
  complete: boolean;
}

/**
 * Removes upload temporaries left by a crash anywhere under `root` (symlinks
 * are not followed). Temporaries in `inFlight` belong to uploads of this
 * process and are kept.
 * @param root the served root (a real path)
 * @param inFlight temporaries in use by this process
 * @param options how many directory entries to visit at most
 * @returns how many were removed and whether the walk finished
 */
export async function removeStaleUploads(
  root: string,
  inFlight: ReadonlySet<string>,
  options: { budget?: number } = {},
): Promise<StaleUploadSweep> {
  let budget = options.budget ?? 1_000_000;
  let removed = 0;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (--budget < 0) return { removed, complete: false };
        const path = join(dir, entry.name);
        if (entry.isDirectory) {
          pending.push(path);
        } else if (entry.isFile && isUploadTempName(entry.name) && !inFlight.has(path)) {
          try {
            await Deno.remove(path);
            removed++;
          } catch {
            // Read-only or already gone: nothing to do.
          }
        }
      }
    } catch {
      // Unreadable directory: its temporaries (if any) cannot be ours to clean.
    }
  }
  return { removed, complete: true };
}
