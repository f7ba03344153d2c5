/**
 * A UDP socket driven through libc with Deno FFI: `recvmmsg` takes up to
 * {@linkcode RECEIVE_BATCH} datagrams per call into preallocated slots, and
 * sends queued during a batch (replies, a chat fan-out) leave in one
 * `sendmmsg`. Deno's datagram API costs two async ops per request, which is
 * most of the CPU a UDP service spends (bench/run, `--cpu-prof`); here a
 * batch costs one non-blocking `recvmmsg` on the main thread, one blocking
 * `recvmmsg` on a worker thread only when the socket is empty, and one
 * `sendmmsg`.
 *
 * Linux with a 64-bit libc only (the struct layouts below are LP64 Linux's).
 * {@linkcode openMmsg} says why it cannot be used elsewhere — no
 * `Deno.dlopen` or `Deno.UnsafePointer` (the offline executable built by bun
 * has neither working), no libc, no FFI permission, or
 * `SWITCHBOARD_UDP=portable` — and the caller then uses `Deno.listenDatagram`.
 *
 * @module
 */

import { ffiUnavailable, type Libc, osError, SharedLibc } from "./libc_loader.ts";
import {
  AF_INET6,
  bindAddress,
  DestinationAddresses,
  SOCKADDR_ROOM as NAME,
  sockaddrLength,
  SourceAddresses,
} from "./sockaddr.ts";

/** Datagrams taken per `recvmmsg`. */
export const RECEIVE_BATCH = 32;
/** Sends given to one `sendmmsg`. */
const SEND_BATCH = 64;
// Larger than the largest UDP payload (65,507 bytes over IPv4), so nothing is truncated.
const SLOT = 65536;
// Queued send payloads; any datagram fits in an empty arena.
const ARENA = 4 * SLOT;
// Sends waiting for socket buffer space beyond this are refused.
const MAX_BACKLOG = 16384;

const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const MSG_DONTWAIT = 0x40;
const MSG_WAITFORONE = 0x10000;
const SHUT_RDWR = 2;
const EINTR = 4;
const EAGAIN = 11;

// struct mmsghdr on LP64 Linux: msghdr (name 0, namelen 8, iov 16,
// iovlen 24, control 32, controllen 40, flags 48) then msg_len at 56.
const HEADER = 64;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  recvmmsg_wait: {
    name: "recvmmsg",
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  sendmmsg_wait: {
    name: "sendmmsg",
    parameters: ["i32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

/** The C calls a socket makes, as the shared loader binds them. */
export type MmsgLibc = Libc<typeof SYMBOLS>;

// Opened while a socket uses it (Deno's test sanitizers count a library as
// a resource), closed with the last one.
const LIBC = new SharedLibc(SYMBOLS);

function unavailable(): string | undefined {
  try {
    if (Deno.env.get("SWITCHBOARD_UDP") === "portable") return "SWITCHBOARD_UDP=portable";
  } catch {
    // No env permission: not forced.
  }
  const reason = ffiUnavailable();
  if (reason !== undefined) return reason;
  if (!["x86_64", "aarch64"].includes(Deno.build.arch)) {
    return `no recvmmsg layout for ${Deno.build.os}/${Deno.build.arch}`;
  }
  return undefined;
}

function acquire(): MmsgLibc | string {
  return unavailable() ?? LIBC.acquire();
}

/**
 * Why the FFI socket cannot be used here, or undefined when it can.
 * @returns the reason, e.g. `no Deno FFI`
 */
export function mmsgUnavailable(): string | undefined {
  const libc = acquire();
  if (typeof libc === "string") return libc;
  LIBC.release();
  return undefined;
}

function address(buffer: Uint8Array, offset = 0): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer))) + offset;
}

function setPointer(words: Uint32Array, index: number, pointer: number): void {
  words[index] = pointer >>> 0;
  words[index + 1] = Math.floor(pointer / 0x1_0000_0000);
}

function failure(libc: MmsgLibc, code: number): Error {
  return osError(code, libc.strerror(code));
}

function badResource(): Error {
  return new Deno.errors.BadResource("Bad resource ID");
}

/**
 * A bound UDP socket served with `recvmmsg`/`sendmmsg`. Receiving: call
 * {@linkcode MmsgSocket.receive}, read datagrams `0 … n-1` with
 * {@linkcode MmsgSocket.data} and {@linkcode MmsgSocket.from} (views valid
 * until the next `receive`), then {@linkcode MmsgSocket.flush}. Sends queue
 * and leave at the next flush (or at the end of the current microtask
 * checkpoint when nobody flushes).
 */
export class MmsgSocket {
  /** The bound address, as `Deno.listenDatagram` reports it. */
  readonly addr: Deno.NetAddr;
  /** Bytes handed to the kernel so far. */
  bytesOut = 0;
  readonly #handle: MmsgLibc;
  readonly #libc: MmsgLibc["symbols"];
  readonly #errno: () => number;
  readonly #fd: number;
  readonly #family: number;
  #closed = false;
  #released = false;
  #threadCalls = 0;

  // Receiving.
  readonly #recvHeaders = new Uint8Array(RECEIVE_BATCH * HEADER);
  readonly #recvWords = new Uint32Array(this.#recvHeaders.buffer);
  readonly #recvNames = new Uint8Array(RECEIVE_BATCH * NAME);
  readonly #recvNameView = new DataView(this.#recvNames.buffer);
  readonly #slots = new Uint8Array(RECEIVE_BATCH * SLOT);
  #count = 0;
  readonly #sources = new SourceAddresses();

  // Sending.
  readonly #sendHeaders = new Uint8Array(SEND_BATCH * HEADER);
  readonly #sendWords = new Uint32Array(this.#sendHeaders.buffer);
  readonly #sendIov = new Uint32Array(SEND_BATCH * 4);
  readonly #sendNames = new Uint8Array(SEND_BATCH * NAME);
  readonly #sendNameView = new DataView(this.#sendNames.buffer);
  readonly #arena = new Uint8Array(ARENA);
  readonly #arenaAddress: number;
  #arenaUsed = 0;
  #queued = 0;
  #resolvers: ((n: number) => void)[] = [];
  #rejecters: ((error: unknown) => void)[] = [];
  #lengths: number[] = [];
  #flushQueued = false;
  readonly #destinations: DestinationAddresses;
  // Sends waiting for buffer space (EAGAIN), sent one by one off the main thread.
  #backlog: {
    data: Uint8Array;
    name: Uint8Array;
    resolve: (n: number) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #draining = false;
  #inFlight = 0;
  #idle?: PromiseWithResolvers<void>;

  private constructor(handle: MmsgLibc, fd: number, family: number) {
    const libc = handle.symbols;
    this.#handle = handle;
    this.#libc = libc;
    this.#errno = handle.errno;
    this.#fd = fd;
    this.#family = family;
    this.#destinations = new DestinationAddresses(family);
    const name = new Uint8Array(NAME);
    const length = new Uint32Array([NAME]);
    if (libc.getsockname(fd, name, new Uint8Array(length.buffer)) < 0) {
      throw failure(handle, handle.errno());
    }
    this.addr = this.#sources.read(name, new DataView(name.buffer), 0);
    const slots = address(this.#slots);
    const names = address(this.#recvNames);
    const iov = new Uint32Array(RECEIVE_BATCH * 4);
    const iovAddress = address(new Uint8Array(iov.buffer));
    this.#recvIov = iov;
    for (let i = 0; i < RECEIVE_BATCH; i++) {
      setPointer(iov, i * 4, slots + i * SLOT);
      iov[i * 4 + 2] = SLOT;
      const w = i * (HEADER / 4);
      setPointer(this.#recvWords, w, names + i * NAME);
      this.#recvWords[w + 2] = NAME;
      setPointer(this.#recvWords, w + 4, iovAddress + i * 16);
      this.#recvWords[w + 6] = 1;
    }
    this.#arenaAddress = address(this.#arena);
    const sendNames = address(this.#sendNames);
    const sendIov = address(new Uint8Array(this.#sendIov.buffer));
    for (let i = 0; i < SEND_BATCH; i++) {
      const w = i * (HEADER / 4);
      setPointer(this.#sendWords, w, sendNames + i * NAME);
      setPointer(this.#sendWords, w + 4, sendIov + i * 16);
      this.#sendWords[w + 6] = 1;
    }
  }

  // Kept so the iovecs the headers point to stay alive.
  readonly #recvIov: Uint32Array;

  /**
   * Binds a UDP socket through libc; `::` is dual-stack.
   * @param options the IP literal, port (0: any free port), and
   *   `reuseAddress` (SO_REUSEADDR and SO_REUSEPORT, as Deno's option:
   *   processes sharing a port)
   * @param interpose for tests only: wraps the C calls (to make `sendmmsg`
   *   report EAGAIN, which loopback UDP never does)
   * @returns the socket, or undefined when FFI cannot be used or the bind
   *   failed (the caller binds with Deno then, which reports the error as
   *   Deno does)
   */
  static bind(
    options: { hostname: string; port: number; reuseAddress?: boolean },
    interpose?: (libc: MmsgLibc) => MmsgLibc,
  ): MmsgSocket | undefined {
    const bound = bindAddress(options.hostname, options.port);
    if (bound === undefined) return undefined;
    const acquired = acquire();
    if (typeof acquired === "string") return undefined;
    const handle = interpose ? interpose(acquired) : acquired;
    const libc = handle.symbols;
    const { family, name } = bound;
    const fd = libc.socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      LIBC.release();
      return undefined;
    }
    try {
      if (family === AF_INET6) {
        const zero = new Uint8Array(4);
        if (libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, zero, 4) < 0) throw new Error("v6only");
      }
      if (options.reuseAddress) {
        const one = new Uint8Array(new Int32Array([1]).buffer);
        for (const option of [SO_REUSEADDR, SO_REUSEPORT]) {
          if (libc.setsockopt(fd, SOL_SOCKET, option, one, 4) < 0) throw new Error("reuse");
        }
      }
      if (libc.bind(fd, name, sockaddrLength(family)) < 0) throw new Error("bind");
      return new MmsgSocket(handle, fd, family);
    } catch {
      libc.close(fd);
      LIBC.release();
      return undefined;
    }
  }

  /**
   * Takes the datagrams waiting, or waits (off the main thread) for at
   * least one. The number is returned directly when some were waiting.
   * @returns how many datagrams are in slots `0 … n-1` (0: none, call again)
   * @throws {Deno.errors.BadResource} once closed; other errors as Deno's
   */
  receive(): number | Promise<number> {
    if (this.#closed) throw badResource();
    const words = this.#recvWords;
    for (let i = 0; i < this.#count; i++) words[i * (HEADER / 4) + 2] = NAME;
    this.#count = 0;
    const n = this.#libc.recvmmsg(this.#fd, this.#recvHeaders, RECEIVE_BATCH, MSG_DONTWAIT, null);
    if (n > 0) return this.#count = n;
    if (n < 0) {
      const code = this.#errno();
      if (code === EINTR) return 0;
      if (code !== EAGAIN) throw failure(this.#handle, code);
    }
    return this.#wait();
  }

  async #wait(): Promise<number> {
    this.#threadCalls++;
    let n: number;
    try {
      n = await this.#libc.recvmmsg_wait(
        this.#fd,
        this.#recvHeaders,
        RECEIVE_BATCH,
        MSG_WAITFORONE,
        null,
      );
    } finally {
      this.#threadCalls--;
      this.#releaseWhenIdle();
    }
    if (this.#closed) throw badResource();
    // errno belongs to the worker thread: a failure is retried by the
    // caller's next call, which reads it on this one.
    return this.#count = n > 0 ? n : 0;
  }

  /**
   * The payload of datagram `i` of the last receive.
   * @param i the index, below what `receive` returned
   * @returns a view of its slot, valid until the next `receive`
   */
  data(i: number): Uint8Array {
    const length = this.#recvWords[i * (HEADER / 4) + 14]!;
    return this.#slots.subarray(i * SLOT, i * SLOT + length);
  }

  /**
   * The source of datagram `i` of the last receive.
   * @param i the index, below what `receive` returned
   * @returns its address, hostname as Deno writes it (the object is shared
   *   by datagrams from the same source; do not change it)
   */
  from(i: number): Deno.NetAddr {
    return this.#sources.read(this.#recvNames, this.#recvNameView, i * NAME);
  }

  /**
   * Queues a datagram; it leaves at the next {@linkcode flush}. `data` is
   * copied, so it may be reused at once.
   * @param data the payload
   * @param to the destination (an IP literal)
   * @returns a promise for the bytes sent
   * @throws nothing: failures reject the promise ({@linkcode Deno.errors.BadResource} once closed)
   */
  send(data: Uint8Array, to: Deno.NetAddr): Promise<number> {
    if (this.#closed) return Promise.reject(badResource());
    if (typeof to.port !== "number" || to.port < 1 || to.port > 65535) {
      return Promise.reject(new TypeError(`Invalid port ${to.port}`));
    }
    if (this.#draining) return this.#toBacklog(data, to);
    if (this.#queued === SEND_BATCH || this.#arenaUsed + data.length > ARENA) {
      this.flush();
      if (this.#draining) return this.#toBacklog(data, to);
    }
    const i = this.#queued;
    let nameLength: number;
    try {
      nameLength = this.#destinations.write(this.#sendNameView, i * NAME, to);
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const offset = this.#arenaUsed;
    this.#arena.set(data, offset);
    this.#arenaUsed = offset + data.length;
    setPointer(this.#sendIov, i * 4, this.#arenaAddress + offset);
    this.#sendIov[i * 4 + 2] = data.length;
    this.#sendWords[i * (HEADER / 4) + 2] = nameLength;
    this.#resolvers[i] = resolve;
    this.#rejecters[i] = reject;
    this.#lengths[i] = data.length;
    this.#queued = i + 1;
    this.#inFlight++;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushTask);
    }
    return promise;
  }

  #flushTask = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  /** Hands the queued datagrams to the kernel (one `sendmmsg` per 64). */
  flush(): void {
    const queued = this.#queued;
    if (queued === 0) return;
    const libc = this.#libc;
    let done = 0;
    let blocked = false;
    while (done < queued) {
      const headers = done === 0 ? this.#sendHeaders : this.#sendHeaders.subarray(done * HEADER);
      const n = libc.sendmmsg(this.#fd, headers, queued - done, MSG_DONTWAIT);
      if (n > 0) {
        for (let i = done; i < done + n; i++) this.#settle(i, undefined);
        done += n;
        continue;
      }
      const code = this.#errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) {
        blocked = true;
        break;
      }
      // The first datagram failed (an unreachable destination…): report it, go on.
      this.#settle(done, failure(this.#handle, code));
      done++;
    }
    if (blocked) {
      for (let i = done; i < queued; i++) {
        const offset = this.#iovOffset(i);
        this.#backlog.push({
          data: this.#arena.slice(offset, offset + this.#lengths[i]!),
          name: this.#sendNames.slice(i * NAME, (i + 1) * NAME),
          resolve: this.#resolvers[i]!,
          reject: this.#rejecters[i]!,
        });
      }
    }
    this.#queued = 0;
    this.#arenaUsed = 0;
    this.#resolvers.length = 0;
    this.#rejecters.length = 0;
    this.#lengths.length = 0;
    if (blocked) void this.#drain();
  }

  #iovOffset(i: number): number {
    const low = this.#sendIov[i * 4]!;
    const high = this.#sendIov[i * 4 + 1]!;
    return high * 0x1_0000_0000 + low - this.#arenaAddress;
  }

  #settle(i: number, error: unknown): void {
    if (error === undefined) {
      const n = this.#lengths[i]!;
      this.bytesOut += n;
      this.#resolvers[i]!(n);
    } else {
      this.#rejecters[i]!(error);
    }
    this.#sent();
  }

  #sent(): void {
    if (--this.#inFlight === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = undefined;
    }
  }

  #toBacklog(data: Uint8Array, to: Deno.NetAddr): Promise<number> {
    if (this.#backlog.length >= MAX_BACKLOG) {
      return Promise.reject(new Deno.errors.WouldBlock("Send queue full"));
    }
    const name = new Uint8Array(NAME);
    try {
      this.#destinations.write(new DataView(name.buffer), 0, to);
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#backlog.push({ data: data.slice(), name, resolve, reject });
    this.#inFlight++;
    return promise;
  }

  // Sends the backlog one datagram at a time, blocking on a worker thread
  // until the socket has room; new sends join the backlog meanwhile.
  async #drain(): Promise<void> {
    this.#draining = true;
    const header = new Uint8Array(HEADER);
    const words = new Uint32Array(header.buffer);
    const iov = new Uint32Array(4);
    setPointer(words, 4, address(new Uint8Array(iov.buffer)));
    words[6] = 1;
    this.#threadCalls++;
    try {
      for (;;) {
        const item = this.#backlog.shift();
        if (item === undefined) break;
        if (this.#closed) {
          item.reject(badResource());
          this.#sent();
          continue;
        }
        setPointer(words, 0, address(item.name));
        words[2] = sockaddrLength(this.#family);
        setPointer(iov, 0, address(item.data));
        iov[2] = item.data.length;
        const n = await this.#libc.sendmmsg_wait(this.#fd, header, 1, 0);
        if (n === 1) {
          this.bytesOut += item.data.length;
          item.resolve(item.data.length);
        } else {
          item.reject(this.#closed ? badResource() : new Error("Send failed"));
        }
        this.#sent();
      }
    } finally {
      this.#draining = false;
      this.#threadCalls--;
      this.#releaseWhenIdle();
    }
  }

  /**
   * Settles once every queued or backlogged send is done.
   * @returns a promise that never rejects
   */
  allSent(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  /**
   * Closes: a waiting receive ends with BadResource, queued sends leave
   * first, later ones are refused. The descriptor itself is closed once no
   * worker thread uses it.
   * @throws {Deno.errors.BadResource} when already closed
   */
  close(): void {
    if (this.#closed) throw badResource();
    this.flush();
    this.#closed = true;
    // Wakes a recvmmsg (or sendmmsg) blocked on a worker thread.
    this.#libc.shutdown(this.#fd, SHUT_RDWR);
    this.#releaseWhenIdle();
  }

  #releaseWhenIdle(): void {
    if (!this.#closed || this.#released || this.#threadCalls > 0) return;
    this.#released = true;
    this.#libc.close(this.#fd);
    LIBC.release();
  }
}
