/**
 * The operations of the `file` service's framed protocol (docs/protocol.md
 * "file (framed)"): `get`, `put`, `list` and `stat`, each logged at info with
 * peer, op, path, bytes and outcome.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { AtomicUpload, TargetExistsError } from "./atomic_upload.ts";
import { pump, type PumpOptions, ShortSourceError } from "../../lib/chunk_pump.ts";
import { listDirectory, mtimeMs } from "./dir_listing.ts";
import {
  DEFAULT_MAX_HEADER_LENGTH,
  encodeFrame,
  encodeHeader,
  FrameError,
  type FrameHeader,
} from "../../lib/header_codec.ts";
import type { FramedRequest, OperationHandler } from "../../lib/framed_server.ts";
import { RequestError } from "../../lib/framed_server.ts";
import type { Logger } from "../../lib/log.ts";
import { describeError, isDisconnect } from "../../lib/net_errors.ts";
import {
  fileSystemError,
  joinNames,
  osMessage,
  type PathRules,
  sameFile,
  type ServedRoot,
  splitRequestPath,
} from "./safe_path.ts";
import type { Sha256Job, Sha256Pool } from "../../lib/sha256_pool.ts";
import { StallWatch } from "./stall_watch.ts";

/** The settings the operations need. */
export interface FileOperationSettings {
  /** Whether `put` is allowed. */
  allowUpload: boolean;
  /** Whether an existing file may be replaced (when the request asks). */
  overwrite: boolean;
  /** The largest upload in bytes. */
  maxUpload: number;
  /** The most entries one `list` reply carries. */
  maxList: number;
  /** Whether names starting with "." are visible. */
  showHidden: boolean;
}

/** What one request did, for its log line. */
export interface RequestRecord {
  /** The path as requested (escaped by the logger). */
  path: string;
  /** Body bytes moved. */
  bytes: number;
  /** Entries listed (list only). */
  entries?: number;
}

/** A transfer failed after its header was sent: the connection must close. */
export class AbortedTransfer extends Deno.errors.Interrupted {
  /**
   * @param reason why the transfer stopped
   */
  constructor(reason: string) {
    super(reason);
    this.name = "AbortedTransfer";
  }
}

// Files up to this size are read whole and sent with their frames in one write.
const SMALL_FILE = 64 * 1024;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const END_WITHOUT_HASH = encodeFrame({ op: "end" });

/**
 * Shows a request's `path` field in a log line.
 * @param path the field as received
 * @returns the text, or a JSON rendering of a non-string (cut short)
 */
export function describePath(path: unknown): string {
  if (typeof path === "string") return path;
  const text = path === undefined ? "" : JSON.stringify(path) ?? String(path);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Logs one request at info: op, path, bytes, outcome and duration (the
 * logger already carries the listener and the peer).
 * @param log the connection's logger
 * @param op the operation
 * @param record path, bytes and entries
 * @param outcome `ok` or an error code
 * @param started performance.now() at the start
 */
export function logRequest(
  log: Logger,
  op: string,
  record: RequestRecord,
  outcome: string,
  started: number,
): void {
  log.info("Request", {
    op,
    path: record.path,
    bytes: record.bytes,
    entries: record.entries,
    outcome,
    ms: Math.round(performance.now() - started),
  });
}

/**
 * The outcome a failed request is logged with.
 * @param error what the operation threw
 * @returns the error code, or a word for disconnects and aborts
 */
export function outcomeOf(error: unknown): string {
  if (error instanceof RequestError) return error.code;
  // A body that never arrived whole: the client left mid-upload (the request
  // loop logs the malformed frame, throttled); not a failure of ours.
  if (error instanceof FrameError) {
    return error.reason === "truncated" ? "disconnected" : "bad_frame";
  }
  if (error instanceof AbortedTransfer) return "aborted";
  if (isDisconnect(error)) return "disconnected";
  return "error";
}

/** The chunk size for files read synchronously without hashing. */
export const SYNC_READ_CHUNK = 256 * 1024;

/**
 * The most chunk memory one transfer (get, put, stat's sha256) holds, so a
 * client that stops reading (or sending) costs the daemon a bounded amount:
 * at most 512 KiB per connection, with the frame reader's 16 KiB and the
 * connection's own state. A hashing worker would need four chunks of it;
 * measured here (512 MiB hashed download, shared machine), four 64 KiB
 * worker chunks gave 0.6–0.8 GB/s at ~1 s of CPU, one 256 KiB chunk hashed
 * inline 0.8–1.0 GB/s at ~0.45 s (four 1 MiB worker chunks: 1.0–1.4 GB/s at
 * ~0.55 s, but 4 MiB pinned by a client that stops reading). So the
 * service hashes inline: see `file/mod.ts`.
 */
export const TRANSFER_MEMORY = 256 * 1024;

/**
 * A pump source reading a file synchronously. File reads are synchronous on
 * purpose, as nginx's are: from the page cache a 256 KiB read costs tens of
 * µs, far less than the thread-pool round trip of an async read (1 GiB to a
 * socket: ~240 ms of CPU against ~310 ms here); a cold, slow disk stalls
 * the event loop for the read's duration instead.
 * @param file an open file
 * @returns the read functions for {@linkcode pump}
 */
export function readFileSync(
  file: Deno.FsFile,
): Pick<PumpOptions, "read" | "readSync"> {
  return {
    read: (view) => Promise.resolve(file.readSync(view)),
    readSync: (view) => file.readSync(view),
  };
}

/** The disk failed while an upload was written. */
class DiskError extends Error {
  constructor(cause: unknown) {
    super(osMessage(cause), { cause });
    this.name = "DiskError";
  }
}

function badRequest(message: string): RequestError {
  return new RequestError("bad_request", message);
}

function optionalBoolean(header: FrameHeader, key: string, fallback: boolean): boolean {
  const value = header[key];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw badRequest(`"${key}" must be true or false`);
  return value;
}

/** The framed operations of one `file` listener. */
export class FileOperations {
  readonly #root: ServedRoot;
  readonly #settings: FileOperationSettings;
  readonly #hashes: Sha256Pool;
  readonly #inFlight: Set<string>;
  readonly #rules: PathRules;

  /** The operations by name, for `serveFrames`. */
  readonly operations: Readonly<Record<string, OperationHandler>>;

  /**
   * @param root the served root
   * @param settings the listener's file settings
   * @param hashes where SHA-256 jobs come from
   * @param inFlight upload temporaries in use in this process
   */
  constructor(
    root: ServedRoot,
    settings: FileOperationSettings,
    hashes: Sha256Pool,
    inFlight: Set<string>,
  ) {
    this.#root = root;
    this.#settings = settings;
    this.#hashes = hashes;
    this.#inFlight = inFlight;
    this.#rules = { showHidden: settings.showHidden };
    this.operations = {
      get: this.#logged("get", (request, record) => this.#get(request, record)),
      put: this.#logged("put", (request, record) => this.#put(request, record)),
      list: this.#logged("list", (request, record) => this.#list(request, record)),
      stat: this.#logged("stat", (request, record) => this.#stat(request, record)),
    };
  }

  #logged(
    op: string,
    run: (request: FramedRequest, record: RequestRecord) => Promise<void>,
  ): OperationHandler {
    return async (request) => {
      const started = performance.now();
      const record: RequestRecord = { path: describePath(request.header.path), bytes: 0 };
      let outcome = "ok";
      try {
        await run(request, record);
      } catch (error) {
        outcome = outcomeOf(error);
        if (outcome === "error") {
          request.context.log.warn(`${op} failed: ${describeError(error)}`);
        }
        throw error;
      } finally {
        logRequest(request.context.log, op, record, outcome, started);
      }
    };
  }

  async #get(request: FramedRequest, record: RequestRecord): Promise<void> {
    const { header, conn } = request;
    if (header.path === undefined) throw badRequest('"path" is required');
    const names = splitRequestPath(header.path, this.#rules);
    const offset = header.offset === undefined ? 0 : header.offset;
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      throw badRequest('"offset" must be a non-negative integer');
    }
    const hashing = optionalBoolean(header, "sha256", true);
    const entry = this.#root.resolve(names);
    if (entry.info.isDirectory) {
      throw badRequest(`"${joinNames(names)}" is a directory: use list`);
    }
    const { file, info } = this.#root.openResolved(names, entry);
    try {
      if (offset > info.size) {
        throw badRequest(`"offset" ${offset} is past the end (the file has ${info.size} bytes)`);
      }
      const length = info.size - offset;
      const head = encodeHeader({
        op: "file",
        path: joinNames(names),
        size: length,
        offset,
        mtime: mtimeMs(info),
      });
      if (offset > 0) file.seekSync(offset, Deno.SeekMode.Start);
      if (length <= SMALL_FILE) {
        await this.#sendSmall(request, file, head, length, hashing);
        record.bytes = length;
        return;
      }
      await conn.writeAll(head);
      const job = hashing ? await this.#hashes.job(length) : undefined;
      const watch = new StallWatch(request.context);
      try {
        await pump({
          length,
          ...readFileSync(file),
          write: (view) => conn.writeAll(view),
          hash: job,
          // Chunks that stay in the CPU cache between the file read, the hash
          // and the socket write are fastest here.
          chunkSize: SYNC_READ_CHUNK,
          memory: TRANSFER_MEMORY,
          onChunk: (bytes) => {
            record.bytes += bytes;
            watch.progress();
          },
        });
      } catch (error) {
        job?.drop();
        if (isDisconnect(error)) throw error;
        // Mid-body, an error frame would be read as file content: close instead.
        const reason = error instanceof ShortSourceError
          ? "the file shrank while it was sent"
          : `cannot read the file: ${osMessage(error)}`;
        request.context.log.warn(`get aborted: ${reason}`, { path: record.path });
        await conn.closeWrite().catch(() => {});
        throw new AbortedTransfer(reason);
      } finally {
        watch[Symbol.dispose]();
      }
      const sha256 = job ? await job.digest() : undefined;
      await conn.writeAll(sha256 ? encodeFrame({ op: "end", sha256 }) : END_WITHOUT_HASH);
    } catch (error) {
      throw rethrowable(error, names);
    } finally {
      file.close();
    }
  }

  /** A small file: read whole, then header, body and end in one write. */
  async #sendSmall(
    request: FramedRequest,
    file: Deno.FsFile,
    head: Uint8Array,
    length: number,
    hashing: boolean,
  ): Promise<void> {
    const out = new Uint8Array(head.length + length + 128);
    out.set(head);
    const body = out.subarray(head.length, head.length + length);
    let got = 0;
    while (got < length) {
      // Sync: a 4 KiB read from the page cache costs far less than an op round trip.
      const n = file.readSync(body.subarray(got));
      if (n === null) throw new RequestError("io_error", "The file shrank while it was read");
      got += n;
    }
    const end = hashing
      ? encodeFrame({ op: "end", sha256: createHash("sha256").update(body).digest("hex") })
      : END_WITHOUT_HASH;
    out.set(end, head.length + length);
    await request.conn.writeAll(out.subarray(0, head.length + length + end.length));
  }

  async #put(request: FramedRequest, record: RequestRecord): Promise<void> {
    const { header, frames, send } = request;
    const settings = this.#settings;
    if (!settings.allowUpload) {
      throw new RequestError("forbidden", "Uploads are disabled on this listener");
    }
    const size = header.size;
    if (size === undefined) throw badRequest('"size" is required: the body\'s length');
    if (size > settings.maxUpload) {
      throw new RequestError(
        "too_large",
        `Upload of ${size} bytes exceeds max_upload (${settings.maxUpload} bytes)`,
      );
    }
    const expected = header.sha256;
    if (expected !== undefined && (typeof expected !== "string" || !HEX64.test(expected))) {
      throw badRequest('"sha256" must be 64 hex digits');
    }
    const wantsOverwrite = optionalBoolean(header, "overwrite", false);
    if (header.path === undefined) throw badRequest('"path" is required');
    const names = splitRequestPath(header.path, this.#rules);
    if (names.length === 0) throw badRequest('"path" must name a file, not the root');
    const name = names.at(-1)!;
    const path = joinNames(names);
    const dir = await this.#ensureDirectory(names.slice(0, -1));
    const existing = await lstatOrNull(join(dir, name), names);
    let replace = false;
    if (existing) {
      if (existing.isSymlink) await this.#checkLinkTarget(join(dir, name), names);
      if (existing.isDirectory) throw new RequestError("exists", `"${path}" is a directory`);
      if (!settings.overwrite) {
        throw new RequestError("exists", `"${path}" exists (this listener never overwrites)`);
      }
      if (!wantsOverwrite) {
        throw new RequestError("exists", `"${path}" exists (send "overwrite": true to replace it)`);
      }
      replace = true;
    }
    let upload: AtomicUpload;
    try {
      upload = await AtomicUpload.create(dir, name, this.#inFlight);
    } catch (error) {
      throw fileSystemError(error, names);
    }
    let job: Sha256Job | undefined;
    let sha256: string;
    try {
      await this.#checkTemporary(upload, names);
      job = await this.#hashes.job(size);
      {
        using watch = new StallWatch(request.context);
        await pump({
          length: size,
          read: (view) => frames.readBody(view),
          write: async (view) => {
            try {
              await upload.write(view);
            } catch (error) {
              throw new DiskError(error);
            }
          },
          hash: job,
          memory: TRANSFER_MEMORY,
          onChunk: (bytes) => {
            record.bytes += bytes;
            watch.progress();
          },
        });
      }
      sha256 = await job.digest();
      job = undefined;
      if (expected !== undefined && sha256 !== expected.toLowerCase()) {
        throw new RequestError(
          "checksum_mismatch",
          `The body's sha256 is ${sha256}, not ${expected.toLowerCase()}: nothing was stored`,
        );
      }
      if ((await Deno.realPath(dir)) !== dir) {
        throw new RequestError("forbidden", `The directory of "${path}" changed during the upload`);
      }
      await upload.commit({ replace });
    } catch (error) {
      job?.drop();
      await upload.abort();
      if (error instanceof TargetExistsError) {
        throw new RequestError("exists", `"${path}" appeared during the upload`);
      }
      if (error instanceof DiskError) {
        throw new RequestError("io_error", `Cannot store "${path}": ${error.message}`);
      }
      if (error instanceof RequestError || isDisconnect(error) || !(error instanceof Error)) {
        throw error;
      }
      if (error.name === "FrameError") throw error;
      throw new RequestError("io_error", `Cannot store "${path}": ${osMessage(error)}`);
    }
    await send({ op: "ok", path, length: size, sha256 });
  }

  /**
   * A symlink at an upload's target is what it points to, as for every op:
   * one that leaves the root is `forbidden`, one to a directory is a
   * directory (`exists`), one to anything but a regular file is `forbidden`.
   * A link to a file (or a dangling one) may be replaced: the rename puts
   * the new file in place of the link itself, never writes through it.
   */
  async #checkLinkTarget(link: string, names: readonly string[]): Promise<void> {
    let target: Deno.FileInfo;
    try {
      target = await Deno.lstat(this.#root.realPathOf(link, names));
    } catch (error) {
      if (error instanceof RequestError && error.code === "not_found") return;
      throw rethrowable(error, names);
    }
    if (target.isDirectory) {
      throw new RequestError("exists", `"${joinNames(names)}" is a directory (through a symlink)`);
    }
    if (!target.isFile) {
      throw new RequestError("forbidden", `"${joinNames(names)}" is not a regular file`);
    }
  }

  /** The temporary file must be where it was meant to be, inside the root. */
  async #checkTemporary(upload: AtomicUpload, names: readonly string[]): Promise<void> {
    const real = await Deno.realPath(upload.tempPath);
    const [opened, found] = await Promise.all([upload.file.stat(), Deno.lstat(real)]);
    if (real !== upload.tempPath || !this.#root.contains(real) || !sameFile(opened, found)) {
      throw new RequestError("forbidden", `The directory of "${joinNames(names)}" changed`);
    }
  }

  /**
   * Resolves (creating what is missing) the directory names under the root.
   * @returns its real path
   */
  async #ensureDirectory(names: readonly string[]): Promise<string> {
    let current = this.#root.path;
    for (let i = 0; i < names.length; i++) {
      const upTo = names.slice(0, i + 1);
      const next = join(current, names[i]!);
      let real: string;
      try {
        real = this.#root.realPathOf(next, upTo);
      } catch (error) {
        if (!(error instanceof RequestError) || error.code !== "not_found") throw error;
        try {
          await Deno.mkdir(next, { mode: 0o755 });
        } catch (cause) {
          if (!(cause instanceof Deno.errors.AlreadyExists)) throw fileSystemError(cause, upTo);
        }
        real = this.#root.realPathOf(next, upTo);
      }
      const info = await Deno.lstat(real).catch((error) => {
        throw fileSystemError(error, upTo);
      });
      if (!info.isDirectory) {
        throw badRequest(`"${joinNames(upTo)}" is not a directory`);
      }
      current = real;
    }
    return current;
  }

  async #list(request: FramedRequest, record: RequestRecord): Promise<void> {
    const { header, send } = request;
    const names = splitRequestPath(header.path ?? "", this.#rules);
    const after = header.after;
    if (after !== undefined && typeof after !== "string") {
      throw badRequest('"after" must be a string (a name)');
    }
    const entry = this.#root.resolve(names);
    if (!entry.info.isDirectory) {
      throw badRequest(`"${joinNames(names)}" is a file: use get or stat`);
    }
    const path = joinNames(names);
    const envelope = JSON.stringify({ op: "list", path, entries: [], truncated: false });
    let listing;
    try {
      listing = await listDirectory(this.#root, entry.real, {
        maxEntries: this.#settings.maxList,
        // The reply is one header: it must fit the codec's header limit.
        maxBytes: DEFAULT_MAX_HEADER_LENGTH - new TextEncoder().encode(envelope).length - 8,
        after,
        rules: this.#rules,
      });
    } catch (error) {
      throw fileSystemError(error, names);
    }
    this.#root.recheck(names, entry);
    record.entries = listing.entries.length;
    await send({ op: "list", path, entries: listing.entries, truncated: listing.truncated });
  }

  async #stat(request: FramedRequest, _record: RequestRecord): Promise<void> {
    const { header, send } = request;
    const names = splitRequestPath(header.path ?? "", this.#rules);
    const hashing = optionalBoolean(header, "sha256", false);
    const entry = this.#root.resolve(names);
    const path = joinNames(names);
    if (entry.info.isDirectory) {
      await send({ op: "stat", path, type: "dir", length: 0, mtime: mtimeMs(entry.info) });
      return;
    }
    if (!hashing) {
      await send({
        op: "stat",
        path,
        type: "file",
        length: entry.info.size,
        mtime: mtimeMs(entry.info),
      });
      return;
    }
    const { file, info } = this.#root.openResolved(names, entry);
    try {
      const job = await this.#hashes.job(info.size);
      try {
        await pump({
          length: info.size,
          ...readFileSync(file),
          write: () => Promise.resolve(),
          hash: job,
          memory: TRANSFER_MEMORY,
        });
      } catch (error) {
        job.drop();
        if (error instanceof ShortSourceError) {
          throw new RequestError("io_error", `"${path}" shrank while it was hashed`);
        }
        throw new RequestError("io_error", `Cannot read "${path}": ${osMessage(error)}`);
      }
      const sha256 = await job.digest();
      await send({
        op: "stat",
        path,
        type: "file",
        length: info.size,
        mtime: mtimeMs(info),
        sha256,
      });
    } finally {
      file.close();
    }
  }
}

async function lstatOrNull(path: string, names: readonly string[]): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw fileSystemError(error, names);
  }
}

function rethrowable(error: unknown, names: readonly string[]): unknown {
  if (error instanceof RequestError || isDisconnect(error)) return error;
  return fileSystemError(error, names);
}
