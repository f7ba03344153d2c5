/**
 * The `Deno` calls switchboard makes, over `node:` modules, for the
 * self-contained executable built with `bun build --compile` (no Deno
 * runtime can be downloaded here, see README "Install"). The daemon's code
 * stays plain Deno; this module is the only place that knows another runtime.
 *
 * What it carries: TCP listen/connect with half-close, keepalive and nodelay
 * (`node:net`, `allowHalfOpen`); UDP up to 65,507 bytes (`node:dgram`); unix
 * datagrams for sd_notify (`bun:ffi` on libc `socket`/`sendto`, because
 * neither node nor bun has them); `Deno.Command` with `clearEnv`, `uid`/`gid`,
 * `detached` (a new session and process group) and pipes as Web streams;
 * `Deno.kill` of process groups; signal listeners; files with positions,
 * seeks and Web streams; `Deno.serve` (on `Bun.serve`); `Deno.errors` with
 * Deno's classes, names and `(os error N)` messages. Workers (the sha256
 * pool) are the runtime's own.
 *
 * Binding is asynchronous in node's APIs, so `Deno.listen` and
 * `Deno.listenDatagram` return promises here; the daemon awaits them.
 *
 * @module
 */

import * as childProcess from "node:child_process";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { Readable, Writable } from "node:stream";
import * as tty from "node:tty";

// ---------------------------------------------------------------------------
// Errors

const ERROR_NAMES = [
  "NotFound",
  "PermissionDenied",
  "ConnectionRefused",
  "ConnectionReset",
  "ConnectionAborted",
  "NotConnected",
  "AddrInUse",
  "AddrNotAvailable",
  "BrokenPipe",
  "AlreadyExists",
  "InvalidData",
  "TimedOut",
  "Interrupted",
  "WriteZero",
  "WouldBlock",
  "UnexpectedEof",
  "BadResource",
  "Http",
  "Busy",
  "NotSupported",
  "FilesystemLoop",
  "IsADirectory",
  "NetworkUnreachable",
  "NotADirectory",
  "NotCapable",
] as const;

type ErrorName = typeof ERROR_NAMES[number];
type ErrorClass = new (message?: string, options?: ErrorOptions) => Error;

/** `Deno.errors`: one class per meaning, named as Deno names them. */
export const errors: Record<ErrorName, ErrorClass> = Object.fromEntries(
  ERROR_NAMES.map((name) => {
    const named = {
      [name]: class extends Error {
        constructor(message?: string, options?: ErrorOptions) {
          super(message, options);
          this.name = name;
        }
      },
    };
    return [name, named[name]!];
  }),
) as unknown as Record<ErrorName, ErrorClass>;

// errno code → [Deno class, the OS's description] (Linux numbering).
const ERRNO: Record<string, [ErrorName | undefined, number, string]> = {
  EPERM: ["PermissionDenied", 1, "Operation not permitted"],
  ENOENT: ["NotFound", 2, "No such file or directory"],
  ESRCH: ["NotFound", 3, "No such process"],
  EINTR: ["Interrupted", 4, "Interrupted system call"],
  EIO: [undefined, 5, "Input/output error"],
  EBADF: ["BadResource", 9, "Bad file descriptor"],
  EAGAIN: ["WouldBlock", 11, "Resource temporarily unavailable"],
  ENOMEM: [undefined, 12, "Cannot allocate memory"],
  EACCES: ["PermissionDenied", 13, "Permission denied"],
  EBUSY: ["Busy", 16, "Device or resource busy"],
  EEXIST: ["AlreadyExists", 17, "File exists"],
  ENODEV: [undefined, 19, "No such device"],
  EXDEV: [undefined, 18, "Invalid cross-device link"],
  ENOTDIR: ["NotADirectory", 20, "Not a directory"],
  EISDIR: ["IsADirectory", 21, "Is a directory"],
  EINVAL: ["InvalidData", 22, "Invalid argument"],
  EMFILE: [undefined, 24, "Too many open files"],
  ENFILE: [undefined, 23, "Too many open files in system"],
  ENOTTY: [undefined, 25, "Inappropriate ioctl for device"],
  ETXTBSY: [undefined, 26, "Text file busy"],
  EFBIG: [undefined, 27, "File too large"],
  ENOSPC: [undefined, 28, "No space left on device"],
  ESPIPE: [undefined, 29, "Illegal seek"],
  EMLINK: [undefined, 31, "Too many links"],
  EROFS: ["PermissionDenied", 30, "Read-only file system"],
  EPIPE: ["BrokenPipe", 32, "Broken pipe"],
  ENAMETOOLONG: [undefined, 36, "File name too long"],
  ENOTEMPTY: [undefined, 39, "Directory not empty"],
  ENOSYS: [undefined, 38, "Function not implemented"],
  ELOOP: ["FilesystemLoop", 40, "Too many levels of symbolic links"],
  EOVERFLOW: [undefined, 75, "Value too large for defined data type"],
  ENOTSOCK: [undefined, 88, "Socket operation on non-socket"],
  EMSGSIZE: [undefined, 90, "Message too long"],
  EOPNOTSUPP: ["NotSupported", 95, "Operation not supported"],
  ENOTSUP: ["NotSupported", 95, "Operation not supported"],
  EAFNOSUPPORT: [undefined, 97, "Address family not supported by protocol"],
  EADDRINUSE: ["AddrInUse", 98, "Address already in use"],
  EADDRNOTAVAIL: ["AddrNotAvailable", 99, "Cannot assign requested address"],
  ENETDOWN: [undefined, 100, "Network is down"],
  ENETUNREACH: ["NetworkUnreachable", 101, "Network is unreachable"],
  ECONNABORTED: ["ConnectionAborted", 103, "Software caused connection abort"],
  ECONNRESET: ["ConnectionReset", 104, "Connection reset by peer"],
  ENOBUFS: [undefined, 105, "No buffer space available"],
  ENOTCONN: ["NotConnected", 107, "Transport endpoint is not connected"],
  ETIMEDOUT: ["TimedOut", 110, "Connection timed out"],
  ECONNREFUSED: ["ConnectionRefused", 111, "Connection refused"],
  EHOSTUNREACH: ["NetworkUnreachable", 113, "No route to host"],
  ECANCELED: [undefined, 125, "Operation canceled"],
  EDQUOT: [undefined, 122, "Disk quota exceeded"],
};

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/**
 * Turns an error from a `node:` API into what Deno would have thrown: the
 * class by errno, Deno's message (`Connection refused (os error 111)`, with
 * `: open '/x'` for paths). Anything else is returned unchanged.
 * @param error what node threw or emitted
 * @returns the Deno-shaped error
 */
export function toDenoError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  if (Object.values(errors).some((cls) => error instanceof cls)) return error;
  const system = error as SystemError;
  // Name lookups fail as Deno's do (getaddrinfo's own words).
  if (system.code === "ENOTFOUND" || system.code === "EAI_NONAME") {
    return new errors.NotFound(
      "failed to lookup address information: Name or service not known",
      { cause: error },
    );
  }
  if (system.code === "EAI_AGAIN") {
    return new errors.NotFound(
      "failed to lookup address information: Temporary failure in name resolution",
      { cause: error },
    );
  }
  const known = system.code ? ERRNO[system.code] : undefined;
  if (!known) {
    if (system.code === "ERR_SOCKET_DGRAM_NOT_RUNNING" || system.code === "ERR_STREAM_DESTROYED") {
      return new errors.BadResource("Bad resource ID", { cause: error });
    }
    return error;
  }
  const [name, errno, description] = known;
  let message = `${description} (os error ${errno})`;
  if (system.path !== undefined) {
    message += `: ${system.syscall ?? "open"} '${system.path}'`;
    if (system.dest !== undefined) message += ` -> '${system.dest}'`;
  }
  if (!name) {
    const plain = new Error(message, { cause: error });
    return plain;
  }
  return new errors[name](message, { cause: error });
}

/**
 * A Deno error for a raw errno (from calls made through bun:ffi).
 * @param errno the C errno value
 * @param what the call and its argument, for the message
 * @returns the error
 */
function errnoError(errno: number, what: string): Error {
  const entry = Object.values(ERRNO).find(([, number]) => number === errno);
  const message = `${entry?.[2] ?? "Unknown error"} (os error ${errno}): ${what}`;
  return entry?.[0] ? new errors[entry[0]](message) : new Error(message);
}

function rethrow(error: unknown): never {
  throw toDenoError(error);
}

/** Yields what `next` gives until its resource is closed (BadResource ends it). */
async function* untilClosed<T>(next: () => Promise<T>): AsyncIterableIterator<T> {
  for (;;) {
    try {
      yield await next();
    } catch (error) {
      if (error instanceof errors.BadResource) return;
      throw error;
    }
  }
}

function badResource(): Error {
  return new errors.BadResource("Bad resource ID");
}

// ---------------------------------------------------------------------------
// Files

interface FileInfo {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  size: number;
  mtime: Date | null;
  atime: Date | null;
  birthtime: Date | null;
  ctime: Date | null;
  dev: number;
  ino: number | null;
  mode: number | null;
  nlink: number | null;
  uid: number | null;
  gid: number | null;
  rdev: number | null;
  blksize: number | null;
  blocks: number | null;
  isBlockDevice: boolean | null;
  isCharDevice: boolean | null;
  isFifo: boolean | null;
  isSocket: boolean | null;
}

function fileInfo(stats: fs.Stats): FileInfo {
  return {
    isFile: stats.isFile(),
    isDirectory: stats.isDirectory(),
    isSymlink: stats.isSymbolicLink(),
    size: stats.size,
    mtime: stats.mtime,
    atime: stats.atime,
    birthtime: stats.birthtime,
    ctime: stats.ctime,
    dev: stats.dev,
    ino: stats.ino,
    mode: stats.mode,
    nlink: stats.nlink,
    uid: stats.uid,
    gid: stats.gid,
    rdev: stats.rdev,
    blksize: stats.blksize,
    blocks: stats.blocks,
    isBlockDevice: stats.isBlockDevice(),
    isCharDevice: stats.isCharacterDevice(),
    isFifo: stats.isFIFO(),
    isSocket: stats.isSocket(),
  };
}

interface OpenOptions {
  read?: boolean;
  write?: boolean;
  append?: boolean;
  truncate?: boolean;
  create?: boolean;
  createNew?: boolean;
  mode?: number;
}

function openFlags(options: OpenOptions): number {
  const c = fs.constants;
  const write = options.write || options.append;
  let flags = options.read && write ? c.O_RDWR : write ? c.O_WRONLY : c.O_RDONLY;
  if (options.append) flags |= c.O_APPEND;
  if (options.truncate) flags |= c.O_TRUNC;
  if (options.create || options.createNew) flags |= c.O_CREAT;
  if (options.createNew) flags |= c.O_EXCL;
  return flags; // libuv adds O_CLOEXEC itself
}

const SeekMode = { Start: 0, Current: 1, End: 2 } as const;

function promised<T>(run: (done: (error: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((error, value) => error ? reject(toDenoError(error)) : resolve(value));
  });
}

const STREAM_CHUNK = 256 * 1024;

/** `Deno.FsFile` over a file descriptor, keeping its own position. */
class FsFile {
  #fd: number | undefined;
  #position = 0;
  #append: boolean;

  constructor(fd: number, append = false) {
    this.#fd = fd;
    this.#append = append;
  }

  get #open(): number {
    if (this.#fd === undefined) throw badResource();
    return this.#fd;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    if (buffer.length === 0) return 0;
    const fd = this.#open;
    const n = await promised<number>((done) =>
      fs.read(fd, buffer, 0, buffer.length, this.#position, done)
    );
    this.#position += n;
    return n === 0 ? null : n;
  }

  readSync(buffer: Uint8Array): number | null {
    if (buffer.length === 0) return 0;
    let n: number;
    try {
      n = fs.readSync(this.#open, buffer, 0, buffer.length, this.#position);
    } catch (error) {
      rethrow(error);
    }
    this.#position += n;
    return n === 0 ? null : n;
  }

  async write(data: Uint8Array): Promise<number> {
    const fd = this.#open;
    const at = this.#append ? null : this.#position;
    const n = await promised<number>((done) => fs.write(fd, data, 0, data.length, at, done));
    if (!this.#append) this.#position += n;
    return n;
  }

  writeSync(data: Uint8Array): number {
    let n: number;
    try {
      n = fs.writeSync(this.#open, data, 0, data.length, this.#append ? null : this.#position);
    } catch (error) {
      rethrow(error);
    }
    if (!this.#append) this.#position += n;
    return n;
  }

  #seekTo(offset: number, whence: number, size: () => number): number {
    const base = whence === SeekMode.Start
      ? 0
      : whence === SeekMode.Current
      ? this.#position
      : size();
    const target = base + offset;
    if (target < 0) throw new errors.InvalidData("Invalid argument (os error 22)");
    this.#position = target;
    return target;
  }

  async seek(offset: number | bigint, whence: number): Promise<number> {
    const fd = this.#open;
    const size = whence === SeekMode.End
      ? (await promised<fs.Stats>((done) => fs.fstat(fd, done))).size
      : 0;
    return this.#seekTo(Number(offset), whence, () => size);
  }

  seekSync(offset: number | bigint, whence: number): number {
    const fd = this.#open;
    return this.#seekTo(Number(offset), whence, () => fs.fstatSync(fd).size);
  }

  async stat(): Promise<FileInfo> {
    const fd = this.#open;
    return fileInfo(await promised<fs.Stats>((done) => fs.fstat(fd, done)));
  }

  statSync(): FileInfo {
    try {
      return fileInfo(fs.fstatSync(this.#open));
    } catch (error) {
      rethrow(error);
    }
  }

  async truncate(length = 0): Promise<void> {
    const fd = this.#open;
    await promised<void>((done) => fs.ftruncate(fd, length, (e) => done(e, undefined)));
  }

  async sync(): Promise<void> {
    const fd = this.#open;
    await promised<void>((done) => fs.fsync(fd, (e) => done(e, undefined)));
  }

  async syncData(): Promise<void> {
    const fd = this.#open;
    await promised<void>((done) => fs.fdatasync(fd, (e) => done(e, undefined)));
  }

  async utime(atime: number | Date, mtime: number | Date): Promise<void> {
    const fd = this.#open;
    await promised<void>((done) => fs.futimes(fd, atime, mtime, (e) => done(e, undefined)));
  }

  isTerminal(): boolean {
    return this.#fd !== undefined && tty.isatty(this.#fd);
  }

  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const chunk = new Uint8Array(STREAM_CHUNK);
        const n = await this.read(chunk).catch((error) => {
          this.close();
          throw error;
        });
        if (n === null) {
          this.close();
          controller.close();
          controller.byobRequest?.respond(0);
          return;
        }
        controller.enqueue(chunk.subarray(0, n));
      },
      cancel: () => this.close(),
    });
  }

  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        let rest = chunk;
        while (rest.length > 0) rest = rest.subarray(await this.write(rest));
      },
      close: () => this.close(),
      abort: () => this.close(),
    });
  }

  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed.
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function open(file: string | URL, options: OpenOptions = { read: true }): Promise<FsFile> {
  const fd = await promised<number>((done) =>
    fs.open(file, openFlags(options), options.mode ?? 0o666, done)
  );
  return new FsFile(fd, options.append === true);
}

function openSync(file: string | URL, options: OpenOptions = { read: true }): FsFile {
  try {
    return new FsFile(
      fs.openSync(file, openFlags(options), options.mode ?? 0o666),
      !!options.append,
    );
  } catch (error) {
    rethrow(error);
  }
}

function sync<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return run(...args);
    } catch (error) {
      rethrow(error);
    }
  };
}

function async<A extends unknown[], R>(
  run: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return (...args: A): Promise<R> => run(...args).catch(rethrow);
}

interface DirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
}

function dirEntry(entry: fs.Dirent): DirEntry {
  return {
    name: entry.name,
    isFile: entry.isFile(),
    isDirectory: entry.isDirectory(),
    isSymlink: entry.isSymbolicLink(),
  };
}

async function* readDir(dir: string | URL): AsyncIterableIterator<DirEntry> {
  let handle: fs.Dir;
  try {
    handle = await fs.promises.opendir(dir);
  } catch (error) {
    rethrow(error);
  }
  try {
    for (;;) {
      const entry = await handle.read().catch(rethrow);
      if (entry === null) return;
      yield dirEntry(entry);
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

function readDirSync(dir: string | URL): IterableIterator<DirEntry> {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).map(dirEntry)[Symbol.iterator]();
  } catch (error) {
    rethrow(error);
  }
}

async function remove(target: string | URL, options: { recursive?: boolean } = {}): Promise<void> {
  try {
    const info = await fs.promises.lstat(target);
    if (!info.isDirectory()) await fs.promises.unlink(target);
    else if (options.recursive) await fs.promises.rm(target, { recursive: true, force: true });
    else await fs.promises.rmdir(target);
  } catch (error) {
    rethrow(error);
  }
}

function removeSync(target: string | URL, options: { recursive?: boolean } = {}): void {
  try {
    const info = fs.lstatSync(target);
    if (!info.isDirectory()) fs.unlinkSync(target);
    else if (options.recursive) fs.rmSync(target, { recursive: true, force: true });
    else fs.rmdirSync(target);
  } catch (error) {
    rethrow(error);
  }
}

interface MkdirOptions {
  recursive?: boolean;
  mode?: number;
}

const fileSystem = {
  SeekMode,
  FsFile,
  open,
  openSync,
  create: (file: string | URL) =>
    open(file, { read: true, write: true, create: true, truncate: true }),
  stat: async(async (p: string | URL) => fileInfo(await fs.promises.stat(p))),
  lstat: async(async (p: string | URL) => fileInfo(await fs.promises.lstat(p))),
  statSync: sync((p: string | URL) => fileInfo(fs.statSync(p))),
  lstatSync: sync((p: string | URL) => fileInfo(fs.lstatSync(p))),
  realPath: async((p: string | URL) => fs.promises.realpath(p)),
  realPathSync: sync((p: string | URL) => fs.realpathSync(p)),
  readTextFile: async((p: string | URL) => fs.promises.readFile(p, "utf8")),
  readTextFileSync: sync((p: string | URL) => fs.readFileSync(p, "utf8")),
  readFile: async(async (p: string | URL) => new Uint8Array(await fs.promises.readFile(p))),
  readFileSync: sync((p: string | URL) => new Uint8Array(fs.readFileSync(p))),
  writeTextFile: async((p: string | URL, text: string) => fs.promises.writeFile(p, text)),
  writeFile: async((p: string | URL, data: Uint8Array) => fs.promises.writeFile(p, data)),
  readDir,
  readDirSync,
  remove,
  removeSync,
  rename: async((from: string | URL, to: string | URL) => fs.promises.rename(from, to)),
  renameSync: sync((from: string | URL, to: string | URL) => fs.renameSync(from, to)),
  link: async((from: string, to: string) => fs.promises.link(from, to)),
  symlink: async((from: string, to: string) => fs.promises.symlink(from, to)),
  copyFile: async((from: string | URL, to: string | URL) => fs.promises.copyFile(from, to)),
  chmod: async((p: string | URL, mode: number) => fs.promises.chmod(p, mode)),
  utime: async((p: string | URL, atime: number | Date, mtime: number | Date) =>
    fs.promises.utimes(p, atime, mtime)
  ),
  mkdir: async(async (p: string | URL, options: MkdirOptions = {}) => {
    await fs.promises.mkdir(p, { recursive: options.recursive ?? false, mode: options.mode });
  }),
  mkdirSync: sync((p: string | URL, options: MkdirOptions = {}) => {
    fs.mkdirSync(p, { recursive: options.recursive ?? false, mode: options.mode });
  }),
  makeTempDir: async((options: { prefix?: string } = {}) =>
    fs.promises.mkdtemp(path.join(os.tmpdir(), options.prefix ?? ""))
  ),
  makeTempDirSync: sync((options: { prefix?: string } = {}) =>
    fs.mkdtempSync(path.join(os.tmpdir(), options.prefix ?? ""))
  ),
};

// ---------------------------------------------------------------------------
// Standard streams

/** fd 0–2 with Deno's reader/writer methods; EAGAIN (a non-blocking tty) is waited out. */
class StdStream {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get rid(): number {
    return this.#fd;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    if (buffer.length === 0) return 0;
    for (;;) {
      try {
        const n = await promised<number>((done) =>
          fs.read(this.#fd, buffer, 0, buffer.length, null, done)
        );
        return n === 0 ? null : n;
      } catch (error) {
        if (!(error instanceof errors.WouldBlock)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  writeSync(data: Uint8Array): number {
    for (;;) {
      try {
        return fs.writeSync(this.#fd, data);
      } catch (error) {
        const mapped = toDenoError(error);
        if (!(mapped instanceof errors.WouldBlock)) throw mapped;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
  }

  write(data: Uint8Array): Promise<number> {
    return promised<number>((done) => fs.write(this.#fd, data, 0, data.length, null, done));
  }

  isTerminal(): boolean {
    return tty.isatty(this.#fd);
  }

  setRaw(mode: boolean): void {
    process.stdin.setRawMode?.(mode);
  }

  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const chunk = new Uint8Array(16 * 1024);
        const n = await this.read(chunk);
        if (n === null) {
          controller.close();
          controller.byobRequest?.respond(0);
        } else controller.enqueue(chunk.subarray(0, n));
      },
    });
  }

  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        let rest = chunk;
        while (rest.length > 0) rest = rest.subarray(await this.write(rest));
      },
    });
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

// ---------------------------------------------------------------------------
// TCP

/** Bytes a connection may hold unread before its socket is paused. */
const READ_AHEAD = 256 * 1024;

// Every chunk node reads is a fresh buffer outside the JS heap, which bun's
// collector hardly sees: after this many bytes received (all connections
// together) a collection runs, so a long upload's spent chunks are returned
// instead of piling up. Measured on the 512 MiB upload test: RSS grew by
// 27–37 MiB without it (limit 32), 23–34 MiB with an asynchronous hint every
// 8–16 MiB, 14–21 MiB with a full collection every 32 MiB (a few ms each, so
// at most a few percent of a gigabyte-per-second transfer).
const COLLECT_EVERY = 32 * 1024 * 1024;
let receivedSinceCollect = 0;

function countReceived(bytes: number): void {
  receivedSinceCollect += bytes;
  if (receivedSinceCollect < COLLECT_EVERY) return;
  receivedSinceCollect = 0;
  (globalThis as { Bun?: { gc?: (sync: boolean) => void } }).Bun?.gc?.(true);
}

interface NetAddr {
  transport: "tcp" | "udp";
  hostname: string;
  port: number;
}

function netAddr(transport: "tcp" | "udp", address?: string, port?: number): NetAddr {
  return { transport, hostname: address ?? "", port: port ?? 0 };
}

/**
 * `Deno.TcpConn` over a `net.Socket`: received chunks wait in a short queue
 * (the socket is paused while more than {@linkcode READ_AHEAD} bytes wait, so
 * reading is back-pressure, as on Deno); `write` resolves once node has
 * handed the bytes to the kernel (callers reuse their buffers).
 */
class TcpConn {
  #socket: net.Socket;
  #chunks: Buffer[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  readonly localAddr: NetAddr;
  readonly remoteAddr: NetAddr;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.localAddr = netAddr("tcp", socket.localAddress, socket.localPort);
    this.remoteAddr = netAddr("tcp", socket.remoteAddress, socket.remotePort);
    const wake = (): void => {
      const resume = this.#wake;
      this.#wake = undefined;
      resume?.();
    };
    socket.on("data", (chunk: Buffer) => {
      countReceived(chunk.length);
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > READ_AHEAD) socket.pause();
      wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (error) => {
      this.#error ??= toDenoError(error);
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    socket.resume();
  }

  get rid(): number {
    return -1;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw badResource();
      const chunk = this.#chunks[0];
      if (chunk !== undefined) {
        const n = Math.min(chunk.length, buffer.length);
        buffer.set(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (n === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(n);
        this.#queued -= n;
        if (this.#queued <= READ_AHEAD && this.#socket.isPaused()) this.#socket.resume();
        return n;
      }
      if (this.#error !== undefined) {
        const error = this.#error;
        if (error instanceof errors.ConnectionReset || error instanceof errors.BrokenPipe) {
          this.#error = undefined;
          this.#ended = true;
        }
        throw error;
      }
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(badResource());
    if (data.length === 0) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.#socket.write(data, (error) => {
        if (error) reject(toDenoError(error));
        else resolve(data.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(badResource());
    return new Promise<void>((resolve) => this.#socket.end(() => resolve()));
  }

  close(): void {
    if (this.#closed) throw badResource();
    this.#closed = true;
    this.#socket.destroy();
    const resume = this.#wake;
    this.#wake = undefined;
    resume?.();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive);
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const chunk = new Uint8Array(64 * 1024);
        const n = await this.read(chunk).catch((error) => {
          if (!this.#closed) this.close();
          throw error;
        });
        if (n === null) {
          if (!this.#closed) this.close();
          controller.close();
          controller.byobRequest?.respond(0);
        } else controller.enqueue(chunk.subarray(0, n));
      },
      cancel: () => {
        if (!this.#closed) this.close();
      },
    });
  }

  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => {
        if (!this.#closed) this.close();
      },
      abort: () => {
        if (!this.#closed) this.close();
      },
    });
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/** `Deno.TcpListener` over `net.Server`: accepted sockets wait in a queue. */
class TcpListener {
  #server: net.Server;
  #queue: net.Socket[] = [];
  #waiting: { resolve: (conn: TcpConn) => void; reject: (error: unknown) => void }[] = [];
  #closed = false;
  readonly addr: NetAddr;

  constructor(server: net.Server) {
    this.#server = server;
    const address = server.address() as net.AddressInfo;
    this.addr = netAddr("tcp", address.address, address.port);
    server.on("connection", (socket: net.Socket) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter.resolve(new TcpConn(socket));
      else this.#queue.push(socket);
    });
  }

  get rid(): number {
    return -1;
  }

  accept(): Promise<TcpConn> {
    if (this.#closed) return Promise.reject(badResource());
    const socket = this.#queue.shift();
    if (socket) return Promise.resolve(new TcpConn(socket));
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  close(): void {
    if (this.#closed) throw badResource();
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#queue.splice(0)) socket.destroy();
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new errors.BadResource("Listener has been closed"));
    }
  }

  ref(): void {
    this.#server.ref();
  }

  unref(): void {
    this.#server.unref();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TcpConn> {
    return untilClosed(() => this.accept());
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

interface ListenOptions {
  hostname?: string;
  port?: number;
  transport?: "tcp";
  reusePort?: boolean;
}

async function listen(options: ListenOptions): Promise<TcpListener> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(toDenoError(error)));
    server.listen({
      host: options.hostname ?? "0.0.0.0",
      port: options.port ?? 0,
      exclusive: true,
      ipv6Only: (options.hostname ?? "").includes(":") && options.hostname !== "::",
      reusePort: options.reusePort,
    } as net.ListenOptions, () => resolve());
  });
  server.removeAllListeners("error");
  server.on("error", () => {});
  return new TcpListener(server);
}

interface ConnectOptions {
  hostname?: string;
  port: number;
  transport?: "tcp";
  signal?: AbortSignal;
}

function connect(options: ConnectOptions): Promise<TcpConn> {
  return new Promise<TcpConn>((resolve, reject) => {
    const socket = net.connect({
      host: options.hostname ?? "127.0.0.1",
      port: options.port,
      allowHalfOpen: true,
    });
    const onError = (error: Error): void => {
      socket.destroy();
      reject(toDenoError(error));
    };
    socket.once("error", onError);
    options.signal?.addEventListener("abort", () => onError(new Error("aborted")), { once: true });
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(new TcpConn(socket));
    });
  });
}

// ---------------------------------------------------------------------------
// UDP and unix datagrams

const MAX_QUEUED_DATAGRAMS = 4096;

/** `Deno.DatagramConn` over `dgram.Socket`; what the daemon has not read yet waits, bounded. */
class UdpConn {
  #socket: dgram.Socket;
  #queue: [Buffer, dgram.RemoteInfo][] = [];
  #waiting: {
    buffer: Uint8Array | undefined;
    resolve: (value: [Uint8Array, NetAddr]) => void;
    reject: (error: unknown) => void;
  } | undefined;
  #closed = false;
  readonly addr: NetAddr;

  constructor(socket: dgram.Socket) {
    this.#socket = socket;
    const address = socket.address();
    this.addr = netAddr("udp", address.address, address.port);
    socket.on("message", (message: Buffer, from: dgram.RemoteInfo) => {
      const waiter = this.#waiting;
      if (waiter) {
        this.#waiting = undefined;
        waiter.resolve(this.#deliver(message, from, waiter.buffer));
      } else if (this.#queue.length < MAX_QUEUED_DATAGRAMS) this.#queue.push([message, from]);
    });
    socket.on("error", () => {});
  }

  #deliver(message: Buffer, from: dgram.RemoteInfo, buffer?: Uint8Array): [Uint8Array, NetAddr] {
    const source = netAddr("udp", from.address, from.port);
    if (!buffer) return [new Uint8Array(message), source];
    const n = Math.min(buffer.length, message.length);
    buffer.set(message.subarray(0, n));
    return [buffer.subarray(0, n), source];
  }

  receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddr]> {
    if (this.#closed) return Promise.reject(badResource());
    const next = this.#queue.shift();
    if (next) return Promise.resolve(this.#deliver(next[0], next[1], buffer));
    if (this.#waiting) return Promise.reject(new errors.Busy("receive already in progress"));
    return new Promise((resolve, reject) => this.#waiting = { buffer, resolve, reject });
  }

  send(data: Uint8Array, to: NetAddr): Promise<number> {
    if (this.#closed) return Promise.reject(badResource());
    return new Promise<number>((resolve, reject) => {
      this.#socket.send(data, to.port, to.hostname, (error) => {
        // bun reports an earlier datagram's ICMP "port unreachable" on the
        // next send; Deno's unconnected sockets never see it: sent is sent.
        if (error && (error as SystemError).code !== "ECONNREFUSED") reject(toDenoError(error));
        else resolve(data.length);
      });
    });
  }

  close(): void {
    if (this.#closed) throw badResource();
    this.#closed = true;
    this.#socket.close();
    this.#waiting?.reject(new errors.BadResource("Bad resource ID"));
    this.#waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<[Uint8Array, NetAddr]> {
    return untilClosed(() => this.receive());
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

interface LibC {
  __errno_location(): number;
  socket(domain: number, type: number, protocol: number): number;
  sendto(
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array,
    alen: number,
  ): number;
  close(fd: number): number;
}

interface BunFfi {
  read: { i32(pointer: number, offset?: number): number };
  dlopen(
    lib: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: LibC; close(): void };
}

let libc: LibC | undefined;
let readErrno: (() => number) | undefined;

// Synchronous, as Deno's calls are: bun provides require() in modules.
function loadFfi(what: string): BunFfi {
  const load = (globalThis as { require?: (id: string) => unknown }).require ??
    (import.meta as unknown as { require?: (id: string) => unknown }).require;
  try {
    return load!("bun:ffi") as BunFfi;
  } catch {
    throw new errors.NotSupported(`${what} needs bun:ffi, which this runtime does not have`);
  }
}

function loadLibc(): LibC {
  if (libc) return libc;
  const ffi = loadFfi("unix datagram sockets");
  const { symbols } = ffi.dlopen("libc.so.6", {
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  });
  readErrno = () => ffi.read.i32(symbols.__errno_location());
  libc = symbols;
  return libc;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_MAX = 108;

/** A `sockaddr_un` for a path, or an abstract name given as `\0name` or `@name`. */
function sockaddrUn(target: string): Uint8Array {
  const abstract = target.startsWith("\0") || target.startsWith("@");
  const name = new TextEncoder().encode(abstract ? target.slice(1) : target);
  if (name.length + 1 > SUN_PATH_MAX) throw new errors.InvalidData("unix socket path too long");
  const address = new Uint8Array(2 + (abstract ? 1 : 0) + name.length + (abstract ? 0 : 1));
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, abstract ? 3 : 2);
  return address;
}

/**
 * A sending unix datagram socket (what sd_notify needs): an unbound
 * `socket(AF_UNIX, SOCK_DGRAM)` and `sendto`. Receiving is not carried.
 */
class UnixDatagramConn {
  #fd: number;
  #lib: LibC;
  readonly addr: { transport: "unixpacket"; path: string };

  constructor(lib: LibC, fd: number, name: string) {
    this.#lib = lib;
    this.#fd = fd;
    this.addr = { transport: "unixpacket", path: name };
  }

  send(data: Uint8Array, to: { path: string }): Promise<number> {
    if (this.#fd < 0) return Promise.reject(badResource());
    const address = sockaddrUn(to.path);
    const n = Number(this.#lib.sendto(this.#fd, data, data.length, 0, address, address.length));
    if (n < 0) return Promise.reject(errnoError(readErrno?.() ?? 0, `sendto '${to.path}'`));
    return Promise.resolve(n);
  }

  receive(): Promise<never> {
    return Promise.reject(new errors.NotSupported("receiving on unix datagram sockets"));
  }

  close(): void {
    if (this.#fd < 0) throw badResource();
    this.#lib.close(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    if (this.#fd >= 0) this.close();
  }
}

interface DatagramOptions {
  transport: "udp" | "unixpacket";
  hostname?: string;
  port?: number;
  path?: string;
  reuseAddress?: boolean;
}

function listenDatagram(options: DatagramOptions): UnixDatagramConn | Promise<UdpConn> {
  if (options.transport === "unixpacket") {
    const lib = loadLibc();
    const fd = lib.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errnoError(readErrno?.() ?? 0, "socket(AF_UNIX, SOCK_DGRAM)");
    return new UnixDatagramConn(lib, fd, options.path ?? "");
  }
  return bindUdp(options);
}

async function bindUdp(options: DatagramOptions): Promise<UdpConn> {
  const hostname = options.hostname ?? "0.0.0.0";
  const socket = dgram.createSocket({
    type: net.isIPv6(hostname) ? "udp6" : "udp4",
    reuseAddr: options.reuseAddress ?? false,
    ipv6Only: net.isIPv6(hostname) && hostname !== "::",
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (error) => reject(toDenoError(error)));
    socket.bind({ address: hostname, port: options.port ?? 0, exclusive: true }, () => resolve());
  });
  socket.removeAllListeners("error");
  return new UdpConn(socket);
}

// Deno's FFI type names → bun:ffi's.
const FFI_TYPES: Record<string, string> = {
  pointer: "ptr",
  buffer: "ptr",
  function: "ptr",
  usize: "u64",
  isize: "i64",
};

interface ForeignFunction {
  parameters: readonly string[];
  result: string;
  nonblocking?: boolean;
}

/**
 * `Deno.dlopen` over `bun:ffi`: the same libraries and symbols, with Deno's
 * type names translated (`pointer`/`buffer` → `ptr`).
 * @param path the library, e.g. `libc.so.6`
 * @param symbols Deno-style definitions
 * @returns `{ symbols, close }`
 * @throws {Deno.errors.NotSupported} without bun:ffi
 */
function dlopen(
  path: string | URL,
  symbols: Record<string, ForeignFunction>,
): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void } {
  const ffi = loadFfi("Deno.dlopen");
  const type = (name: string): string => FFI_TYPES[name] ?? name;
  const definitions = Object.fromEntries(
    Object.entries(symbols).map(([name, f]) => [
      name,
      { args: f.parameters.map(type), returns: type(f.result) },
    ]),
  );
  const library = ffi.dlopen(String(path), definitions) as unknown as {
    symbols: Record<string, (...args: unknown[]) => unknown>;
    close(): void;
  };
  return { symbols: library.symbols, close: () => library.close() };
}

// ---------------------------------------------------------------------------
// Subprocesses

interface CommandOptions {
  args?: string[];
  cwd?: string | URL;
  clearEnv?: boolean;
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  stdin?: "piped" | "inherit" | "null";
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
  detached?: boolean;
  signal?: AbortSignal;
}

interface CommandStatus {
  success: boolean;
  code: number;
  signal: string | null;
}

interface CommandOutput extends CommandStatus {
  stdout: Uint8Array;
  stderr: Uint8Array;
}

function stdio(mode: "piped" | "inherit" | "null" | undefined, fallback: string): string {
  const chosen = mode ?? fallback;
  return chosen === "piped" ? "pipe" : chosen === "null" ? "ignore" : "inherit";
}

/**
 * Finds `program` as Deno does before spawning, so a missing or
 * non-executable program fails synchronously with NotFound or
 * PermissionDenied, as `Deno.Command#spawn` does.
 */
function resolveProgram(program: string, env: Record<string, string | undefined>, cwd: string) {
  const check = (candidate: string): boolean => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.statSync(candidate).isFile();
    } catch (error) {
      if ((error as SystemError).code === "EACCES") {
        throw new errors.PermissionDenied(`Permission denied (os error 13): '${program}'`);
      }
      return false;
    }
  };
  if (program.includes("/")) {
    if (!check(path.resolve(cwd, program))) {
      throw new errors.NotFound(`Failed to spawn '${program}': entity not found`);
    }
    return;
  }
  for (const dir of (env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    if (dir && check(path.join(dir, program))) return;
  }
  throw new errors.NotFound(`Failed to spawn '${program}': entity not found`);
}

const SIGNAL_NUMBERS = os.constants.signals as Record<string, number>;

function statusOf(code: number | null, signal: NodeJS.Signals | null): CommandStatus {
  if (signal) {
    return { success: false, code: 128 + (SIGNAL_NUMBERS[signal] ?? 0), signal };
  }
  return { success: code === 0, code: code ?? 1, signal: null };
}

/** `Deno.ChildProcess` over `child_process.ChildProcess`, pipes as Web streams. */
class ChildProcess {
  #child: childProcess.ChildProcess;
  readonly pid: number;
  readonly status: Promise<CommandStatus>;
  #stdin: WritableStream<Uint8Array> | undefined;
  #stdout: ReadableStream<Uint8Array> | undefined;
  #stderr: ReadableStream<Uint8Array> | undefined;

  constructor(child: childProcess.ChildProcess) {
    this.#child = child;
    this.pid = child.pid ?? -1;
    this.status = new Promise<CommandStatus>((resolve) => {
      child.once("exit", (code, signal) => resolve(statusOf(code, signal)));
      child.once("error", () => resolve({ success: false, code: 1, signal: null }));
    });
    if (child.stdin) {
      child.stdin.on("error", () => {});
      this.#stdin = Writable.toWeb(child.stdin) as WritableStream<Uint8Array>;
    }
    if (child.stdout) this.#stdout = byteStream(child.stdout);
    if (child.stderr) this.#stderr = byteStream(child.stderr);
  }

  get stdin(): WritableStream<Uint8Array> {
    if (!this.#stdin) throw new TypeError("stdin is not piped");
    return this.#stdin;
  }

  get stdout(): ReadableStream<Uint8Array> {
    if (!this.#stdout) throw new TypeError("stdout is not piped");
    return this.#stdout;
  }

  get stderr(): ReadableStream<Uint8Array> {
    if (!this.#stderr) throw new TypeError("stderr is not piped");
    return this.#stderr;
  }

  kill(signal: string = "SIGTERM"): void {
    try {
      if (!this.#child.kill(signal as NodeJS.Signals) && this.#child.exitCode !== null) {
        throw new TypeError("Child process has already terminated");
      }
    } catch (error) {
      rethrow(error);
    }
  }

  async output(): Promise<CommandOutput> {
    const [status, stdout, stderr] = await Promise.all([
      this.status,
      this.#stdout ? collect(this.#stdout) : new Uint8Array(),
      this.#stderr ? collect(this.#stderr) : new Uint8Array(),
    ]);
    return { ...status, stdout, stderr };
  }

  ref(): void {
    this.#child.ref();
  }

  unref(): void {
    this.#child.unref();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.kill();
    } catch {
      // Already gone.
    }
    await this.status;
  }
}

// A byte stream (BYOB readers work, as on Deno's pipes). Chunks are copied:
// node's buffers share pooled memory that must not be transferred.
function byteStream(readable: Readable): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    start(controller) {
      readable.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 1) <= 0) readable.pause();
      });
      readable.once("end", () => {
        controller.close();
        controller.byobRequest?.respond(0);
      });
      readable.once("error", (error) => controller.error(toDenoError(error)));
    },
    pull() {
      readable.resume();
    },
    cancel() {
      readable.destroy();
    },
  }, { highWaterMark: 64 * 1024 });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of stream) {
    parts.push(part);
    size += part.length;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** `Deno.Command`: `spawn`, `output` and `outputSync`. */
class Command {
  #program: string;
  #options: CommandOptions;

  constructor(program: string | URL, options: CommandOptions = {}) {
    this.#program = program instanceof URL ? program.pathname : program;
    this.#options = options;
  }

  #env(): Record<string, string | undefined> {
    return this.#options.clearEnv
      ? { ...this.#options.env }
      : { ...process.env, ...this.#options.env };
  }

  #spawnOptions(stdinDefault: string, outDefault: string): childProcess.SpawnOptions {
    const options = this.#options;
    return {
      cwd: options.cwd instanceof URL ? options.cwd.pathname : options.cwd,
      env: this.#env(),
      uid: options.uid,
      gid: options.gid,
      detached: options.detached ?? false,
      stdio: [
        stdio(options.stdin, stdinDefault),
        stdio(options.stdout, outDefault),
        stdio(options.stderr, outDefault),
      ] as childProcess.StdioOptions,
      signal: options.signal,
    };
  }

  spawn(): ChildProcess {
    const spawnOptions = this.#spawnOptions("inherit", "inherit");
    resolveProgram(this.#program, spawnOptions.env!, String(spawnOptions.cwd ?? process.cwd()));
    let child: childProcess.ChildProcess;
    try {
      child = childProcess.spawn(this.#program, this.#options.args ?? [], spawnOptions);
    } catch (error) {
      rethrow(error);
    }
    return new ChildProcess(child);
  }

  output(): Promise<CommandOutput> {
    const spawnOptions = this.#spawnOptions("null", "piped");
    resolveProgram(this.#program, spawnOptions.env!, String(spawnOptions.cwd ?? process.cwd()));
    const child = childProcess.spawn(this.#program, this.#options.args ?? [], spawnOptions);
    return new ChildProcess(child).output();
  }

  outputSync(): CommandOutput {
    const spawnOptions = this.#spawnOptions("null", "piped");
    resolveProgram(this.#program, spawnOptions.env!, String(spawnOptions.cwd ?? process.cwd()));
    const result = childProcess.spawnSync(this.#program, this.#options.args ?? [], {
      ...spawnOptions,
      stdio: spawnOptions.stdio,
    } as childProcess.SpawnSyncOptions);
    if (result.error) rethrow(result.error);
    const status = statusOf(result.status, result.signal);
    const bytes = (b: Buffer | string | null | undefined): Uint8Array =>
      b ? new Uint8Array(Buffer.isBuffer(b) ? b : Buffer.from(b)) : new Uint8Array();
    return { ...status, stdout: bytes(result.stdout), stderr: bytes(result.stderr) };
  }
}

function kill(pid: number, signal: string | number = "SIGTERM"): void {
  try {
    process.kill(pid, signal === 0 ? 0 : signal as NodeJS.Signals);
  } catch (error) {
    rethrow(error);
  }
}

// ---------------------------------------------------------------------------
// HTTP (metrics)

interface BunServer {
  port: number;
  hostname: string;
  stop(force?: boolean): Promise<void> | void;
}

interface ServeOptions {
  hostname?: string;
  port?: number;
  signal?: AbortSignal;
  onListen?: (addr: NetAddr) => void;
}

type ServeHandler = (
  request: Request,
  info: { remoteAddr: NetAddr },
) => Response | Promise<Response>;

function serve(options: ServeOptions, handler: ServeHandler): {
  addr: NetAddr;
  finished: Promise<void>;
  shutdown(): Promise<void>;
  ref(): void;
  unref(): void;
} {
  const bun = (globalThis as { Bun?: { serve(o: unknown): BunServer } }).Bun;
  if (!bun) throw new errors.NotSupported("Deno.serve needs Bun.serve in this build");
  let server: BunServer;
  try {
    server = bun.serve({
      hostname: options.hostname ?? "0.0.0.0",
      port: options.port ?? 8000,
      reusePort: false,
      fetch: (request: Request) => handler(request, { remoteAddr: netAddr("tcp", "0.0.0.0", 0) }),
    });
  } catch (error) {
    rethrow(error);
  }
  const addr = netAddr("tcp", options.hostname ?? server.hostname, server.port);
  let done!: () => void;
  const finished = new Promise<void>((resolve) => done = resolve);
  let stopped = false;
  const shutdown = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      await server.stop(true);
      done();
    }
    await finished;
  };
  options.signal?.addEventListener("abort", () => void shutdown(), { once: true });
  options.onListen?.(addr);
  return { addr, finished, shutdown, ref() {}, unref() {} };
}

// ---------------------------------------------------------------------------
// Process, signals, environment

const env = {
  get: (name: string): string | undefined => process.env[name],
  set: (name: string, value: string): void => {
    process.env[name] = value;
  },
  delete: (name: string): void => {
    delete process.env[name];
  },
  has: (name: string): boolean => name in process.env,
  toObject: (): Record<string, string> =>
    Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >,
};

const signalHandlers = new Map<() => void, () => void>();

function addSignalListener(signal: string, handler: () => void): void {
  const wrapped = (): void => handler();
  signalHandlers.set(handler, wrapped);
  process.on(signal as NodeJS.Signals, wrapped);
}

function removeSignalListener(signal: string, handler: () => void): void {
  const wrapped = signalHandlers.get(handler);
  if (wrapped) process.off(signal as NodeJS.Signals, wrapped);
  signalHandlers.delete(handler);
}

function consoleSize(): { columns: number; rows: number } {
  const tty = process.stdout.isTTY ? process.stdout : process.stderr.isTTY ? process.stderr : null;
  if (!tty) throw new errors.NotSupported("not a terminal");
  return { columns: tty.columns ?? 80, rows: tty.rows ?? 24 };
}

/**
 * Deno's way with an uncaught exception: an `error` event on `globalThis`
 * that a listener may cancel (`preventDefault()`) to keep running; an
 * uncancelled one prints the error and ends the process with 1, as Deno does.
 * (bun ends the process on `uncaughtException` without that event.)
 */
export function bridgeUncaughtErrors(): void {
  process.on("uncaughtException", (error: Error) => {
    const event = new ErrorEvent("error", { error, message: error?.message, cancelable: true });
    globalThis.dispatchEvent(event);
    if (event.defaultPrevented) return;
    console.error("error: Uncaught", error);
    process.exit(1);
  });
}

/** The runtime this adapter runs on, for `switchboard version`. */
export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  return versions.bun ? `bun ${versions.bun}` : `node ${process.version.slice(1)}`;
}

/**
 * The `Deno` namespace this build provides: everything switchboard calls,
 * and nothing more.
 * @param argv the process arguments after the executable
 * @returns the object to install as `globalThis.Deno`
 */
export function createDeno(argv: string[]): Record<string, unknown> {
  return {
    ...fileSystem,
    errors,
    args: argv,
    pid: process.pid,
    ppid: process.ppid,
    noColor: !!process.env.NO_COLOR,
    build: { os: process.platform, arch: process.arch === "x64" ? "x86_64" : process.arch },
    version: { deno: "2.9.6", v8: process.versions.v8 ?? "", typescript: "" },
    env,
    cwd: () => process.cwd(),
    chdir: (dir: string) => process.chdir(dir),
    execPath: () => process.execPath,
    exit: (code?: number): never => process.exit(code ?? 0),
    uid: () => process.getuid?.() ?? null,
    gid: () => process.getgid?.() ?? null,
    hostname: () => os.hostname(),
    consoleSize,
    addSignalListener,
    removeSignalListener,
    kill,
    unrefTimer: (id: unknown) => (id as { unref?: () => void })?.unref?.(),
    refTimer: (id: unknown) => (id as { ref?: () => void })?.ref?.(),
    stdin: new StdStream(0),
    stdout: new StdStream(1),
    stderr: new StdStream(2),
    listen,
    connect,
    listenDatagram,
    Command,
    serve,
    dlopen,
  };
}
