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

import ipaddr from "ipaddr.js";

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
// IPv6 destinations remembered as address words (IPv4 is parsed each time, without allocating).
const MAX_ADDRESSES = 64;
// Sources remembered as ready-made addresses, in a direct-mapped table: a
// flood of new sources replaces entries while they are young (a Map of
// thousands kept them long enough to reach V8's old generation: +30 MiB
// RSS for 40,000 sources).
const SOURCE_SLOTS = 256;

const AF_INET = 2;
const AF_INET6 = 10;
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
// Room for a sockaddr_in6 (28 bytes).
const NAME = 32;

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

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
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

interface Loaded {
  library?: Deno.DynamicLibrary<typeof SYMBOLS>;
  errno?: () => number;
  reason?: string;
}

// Opened while a socket uses it (Deno's test sanitizers count a library as
// a resource), closed with the last one.
let loaded: Loaded | undefined;
let users = 0;

function unavailable(): string | undefined {
  try {
    if (Deno.env.get("SWITCHBOARD_UDP") === "portable") return "SWITCHBOARD_UDP=portable";
  } catch {
    // No env permission: not forced.
  }
  const d = Deno as unknown as Record<string, unknown>;
  if ((globalThis as { Bun?: unknown }).Bun !== undefined) {
    return "this runtime's FFI has no non-blocking calls";
  }
  if (typeof d.dlopen !== "function" || typeof d.UnsafePointer !== "function") {
    return "no Deno FFI";
  }
  if (Deno.build.os !== "linux" || !["x86_64", "aarch64"].includes(Deno.build.arch)) {
    return `no recvmmsg layout for ${Deno.build.os}/${Deno.build.arch}`;
  }
  return undefined;
}

function acquire(): Loaded {
  if (loaded?.library) {
    users++;
    return loaded;
  }
  const reason = unavailable();
  if (reason) return { reason };
  let lastError: unknown;
  for (const name of LIBC_NAMES) {
    try {
      const library = Deno.dlopen(name, SYMBOLS);
      const view = new Deno.UnsafePointerView(library.symbols.__errno_location()!);
      users = 1;
      return loaded = { library, errno: () => view.getInt32() };
    } catch (error) {
      lastError = error;
    }
  }
  return {
    reason: `cannot load libc: ${lastError instanceof Error ? lastError.message : lastError}`,
  };
}

function release(): void {
  if (--users > 0 || !loaded?.library) return;
  loaded.library.close();
  loaded = undefined;
}

/**
 * Why the FFI socket cannot be used here, or undefined when it can.
 * @returns the reason, e.g. `no Deno FFI`
 */
export function mmsgUnavailable(): string | undefined {
  const { reason } = acquire();
  if (reason === undefined) release();
  return reason;
}

function address(buffer: Uint8Array, offset = 0): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer))) + offset;
}

function setPointer(words: Uint32Array, index: number, pointer: number): void {
  words[index] = pointer >>> 0;
  words[index + 1] = Math.floor(pointer / 0x1_0000_0000);
}

function osError(libc: Libc, code: number): Error {
  let text = `error ${code}`;
  try {
    text = new Deno.UnsafePointerView(libc.strerror(code)!).getCString();
  } catch {
    // Keep the number.
  }
  const message = `${text} (os error ${code})`;
  switch (code) {
    case 9:
      return new Deno.errors.BadResource(message);
    case 1:
    case 13:
      return new Deno.errors.PermissionDenied(message);
    case 98:
      return new Deno.errors.AddrInUse(message);
    case 99:
      return new Deno.errors.AddrNotAvailable(message);
    case 101:
    case 113:
      return new Deno.errors.NetworkUnreachable(message);
    case 111:
      return new Deno.errors.ConnectionRefused(message);
    default:
      return new Error(message);
  }
}

function badResource(): Error {
  return new Deno.errors.BadResource("Bad resource ID");
}

/**
 * IPv6 text as Deno prints it (Rust's `Ipv6Addr`): lower-case hex, the
 * longest run of two or more zero groups (the first of equals) as `::`,
 * and `::ffff:a.b.c.d` for IPv4-mapped addresses.
 * @param bytes the 16 address bytes
 * @param offset where they start in `bytes`
 * @returns the text
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(bytes[offset + 2 * i]! << 8 | bytes[offset + 2 * i + 1]!);
  if (
    groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 &&
    groups[4] === 0 && groups[5] === 0xffff
  ) {
    const o = offset + 12;
    return `::ffff:${bytes[o]}.${bytes[o + 1]}.${bytes[o + 2]}.${bytes[o + 3]}`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestLength < 2) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** One destination's address as big-endian 32-bit words: 1 (AF_INET) or 4 (AF_INET6, IPv4 mapped). */
type Destination = number[];

/**
 * An IPv4 dotted quad as a number, without allocating.
 * @param text the hostname
 * @returns the address, or -1 when `text` is not `a.b.c.d`
 */
function dottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + c - 48;
      digits++;
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
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
  readonly #libc: Libc;
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
  #sourceKeys: (number | string | undefined)[] = new Array(SOURCE_SLOTS).fill(undefined);
  #sourceAddrs: (Deno.NetAddr | undefined)[] = new Array(SOURCE_SLOTS).fill(undefined);

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
  #destinations = new Map<string, Destination>();
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

  private constructor(libc: Libc, errno: () => number, fd: number, family: number) {
    this.#libc = libc;
    this.#errno = errno;
    this.#fd = fd;
    this.#family = family;
    const name = new Uint8Array(NAME);
    const length = new Uint32Array([NAME]);
    if (libc.getsockname(fd, name, new Uint8Array(length.buffer)) < 0) {
      throw osError(libc, errno());
    }
    this.addr = this.#netAddr(name, 0);
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
   * @returns the socket, or undefined when FFI cannot be used or the bind
   *   failed (the caller binds with Deno then, which reports the error as
   *   Deno does)
   */
  static bind(
    options: { hostname: string; port: number; reuseAddress?: boolean },
  ): MmsgSocket | undefined {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      parsed = ipaddr.parse(options.hostname);
    } catch {
      return undefined;
    }
    const { library, errno } = acquire();
    if (!library || !errno) return undefined;
    const libc = library.symbols;
    const v6 = parsed.kind() === "ipv6";
    const family = v6 ? AF_INET6 : AF_INET;
    const fd = libc.socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      release();
      return undefined;
    }
    try {
      const name = new Uint8Array(NAME);
      const view = new DataView(name.buffer);
      view.setUint16(0, family, true);
      view.setUint16(2, options.port, false);
      if (v6) {
        name.set((parsed as ipaddr.IPv6).toByteArray(), 8);
        const zero = new Uint8Array(4);
        if (libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, zero, 4) < 0) throw new Error("v6only");
      } else {
        name.set(parsed.toByteArray(), 4);
      }
      if (options.reuseAddress) {
        const one = new Uint8Array(new Int32Array([1]).buffer);
        for (const option of [SO_REUSEADDR, SO_REUSEPORT]) {
          if (libc.setsockopt(fd, SOL_SOCKET, option, one, 4) < 0) throw new Error("reuse");
        }
      }
      if (libc.bind(fd, name, v6 ? 28 : 16) < 0) throw new Error("bind");
      return new MmsgSocket(libc, errno, fd, family);
    } catch {
      libc.close(fd);
      release();
      return undefined;
    }
  }

  #netAddr(names: Uint8Array, offset: number): Deno.NetAddr {
    const view = names === this.#recvNames ? this.#recvNameView : new DataView(names.buffer);
    const family = view.getUint16(offset, true);
    const port = view.getUint16(offset + 2, false);
    if (family === AF_INET) {
      const ip = view.getUint32(offset + 4, false);
      const key = ip * 65536 + port;
      const slot = (ip ^ port ^ ip >>> 8) & (SOURCE_SLOTS - 1);
      if (this.#sourceKeys[slot] === key) return this.#sourceAddrs[slot]!;
      const o = offset + 4;
      const hostname = `${names[o]}.${names[o + 1]}.${names[o + 2]}.${names[o + 3]}`;
      return this.#remember(slot, key, hostname, port);
    }
    const low = view.getUint32(offset + 20);
    let key: number | string;
    if (
      view.getUint32(offset + 8) === 0 && view.getUint32(offset + 12) === 0 &&
      view.getUint32(offset + 16) === 0xffff
    ) {
      key = -(low * 65536 + port) - 1;
    } else {
      key = `${view.getUint32(offset + 8)},${view.getUint32(offset + 12)},${
        view.getUint32(offset + 16)
      },${low},${port}`;
    }
    const slot = (low ^ port ^ low >>> 8) & (SOURCE_SLOTS - 1);
    if (this.#sourceKeys[slot] === key) return this.#sourceAddrs[slot]!;
    return this.#remember(slot, key, formatIPv6(names, offset + 8), port);
  }

  #remember(slot: number, key: number | string, hostname: string, port: number): Deno.NetAddr {
    // Null-prototype, as the objects Deno's own receive returns.
    const addr = { __proto__: null, transport: "udp", hostname, port } as unknown as Deno.NetAddr;
    this.#sourceKeys[slot] = key;
    this.#sourceAddrs[slot] = addr;
    return addr;
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
      if (code !== EAGAIN) throw osError(this.#libc, code);
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
    return this.#netAddr(this.#recvNames, i * NAME);
  }

  #destination(hostname: string): Destination {
    let found = this.#destinations.get(hostname);
    if (found !== undefined) return found;
    const parsed = ipaddr.parse(hostname);
    let bytes: number[];
    if (this.#family === AF_INET6) {
      const v6 = parsed.kind() === "ipv6"
        ? parsed as ipaddr.IPv6
        : (parsed as ipaddr.IPv4).toIPv4MappedAddress();
      bytes = v6.toByteArray();
    } else {
      const v4 = parsed.kind() === "ipv4"
        ? parsed as ipaddr.IPv4
        : (parsed as ipaddr.IPv6).isIPv4MappedAddress()
        ? (parsed as ipaddr.IPv6).toIPv4Address()
        : undefined;
      if (!v4) {
        throw new Deno.errors.InvalidData(`Cannot send to ${hostname} from an IPv4 socket`);
      }
      bytes = v4.toByteArray();
    }
    if (this.#destinations.size >= MAX_ADDRESSES) this.#destinations.clear();
    found = [];
    for (let i = 0; i < bytes.length; i += 4) {
      found.push(
        (bytes[i]! << 24 | bytes[i + 1]! << 16 | bytes[i + 2]! << 8 | bytes[i + 3]!) >>> 0,
      );
    }
    this.#destinations.set(hostname, found);
    return found;
  }

  #writeName(names: DataView, offset: number, to: Deno.NetAddr): number {
    const v4 = dottedQuad(to.hostname);
    names.setUint32(offset, this.#family | to.port << 24 | (to.port >> 8) << 16, true);
    if (this.#family === AF_INET6) {
      names.setUint32(offset + 4, 0);
      if (v4 >= 0) {
        names.setUint32(offset + 8, 0);
        names.setUint32(offset + 12, 0);
        names.setUint32(offset + 16, 0xffff);
        names.setUint32(offset + 20, v4);
      } else {
        const words = this.#destination(to.hostname);
        for (let i = 0; i < 4; i++) names.setUint32(offset + 8 + 4 * i, words[i]!);
      }
      names.setUint32(offset + 24, 0);
      return 28;
    }
    names.setUint32(offset + 4, v4 >= 0 ? v4 : this.#destination(to.hostname)[0]!);
    names.setUint32(offset + 8, 0);
    names.setUint32(offset + 12, 0);
    return 16;
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
      nameLength = this.#writeName(this.#sendNameView, i * NAME, to);
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
      this.#settle(done, osError(libc, code));
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
      this.#writeName(new DataView(name.buffer), 0, to);
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
        words[2] = this.#family === AF_INET6 ? 28 : 16;
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
    release();
  }
}
