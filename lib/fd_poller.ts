/**
 * Readiness of raw file descriptors (pipes, pidfds) for the event loop: one
 * epoll set, and one nonblocking FFI call to epoll_wait(2) in flight while
 * someone waits. Descriptors are registered once, edge-triggered; a wait
 * resolves at the next event, or at once when one arrived since the last
 * wait. Nothing is in flight while nobody waits, so an idle poller keeps
 * neither the process nor a test alive.
 *
 * @module
 */

import type { LibCHandle } from "./libc.ts";

/** epoll(7) event bits. */
export const EPOLLIN = 0x001;
/** Ready for writing. */
export const EPOLLOUT = 0x004;
/** An error on the descriptor. */
export const EPOLLERR = 0x008;
/** Hang-up: the other end is closed. */
export const EPOLLHUP = 0x010;
const EPOLLET = 1 << 31;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const MAX_EVENTS = 64;
// struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere.
const EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
const DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

/** A registered descriptor. */
export interface Watch {
  /** The descriptor. */
  readonly fd: number;
  /**
   * Resolves at the next event on the descriptor (or at once when one came
   * since the last wait), or when the watch is removed.
   */
  wait(): Promise<void>;
  /**
   * Stops watching; a pending wait resolves.
   * @param closing the descriptor is closed right after and this process
   *   holds no other copy of it: the kernel drops it from the set then, so
   *   no epoll_ctl is needed
   */
  remove(closing?: boolean): void;
}

class Registration implements Watch {
  readonly fd: number;
  readonly token: number;
  #poller: FdPoller;
  ready = false;
  removed = false;
  resolve: (() => void) | undefined;

  constructor(poller: FdPoller, fd: number, token: number) {
    this.#poller = poller;
    this.fd = fd;
    this.token = token;
  }

  wait(): Promise<void> {
    if (this.ready || this.removed) {
      this.ready = false;
      return Promise.resolve();
    }
    return this.#poller.park(this);
  }

  remove(closing = false): void {
    if (this.removed) return;
    this.removed = true;
    this.#poller.drop(this, closing);
  }
}

/** One epoll set served by the event loop. */
export class FdPoller {
  #lib: LibCHandle;
  #epfd: number;
  #wakeFd: number;
  #events = new Uint8Array(new ArrayBuffer(MAX_EVENTS * EVENT_SIZE));
  #eventView = new DataView(this.#events.buffer);
  #ctl = new Uint8Array(new ArrayBuffer(16));
  #ctlView = new DataView(this.#ctl.buffer);
  #wakeBuffer = new Uint8Array(new ArrayBuffer(8));
  #byToken = new Map<number, Registration>();
  #nextToken = 1;
  #parked = 0;
  #inFlight = false;
  #woken = false;
  #armQueued = false;
  #allSignals = new Uint8Array(new ArrayBuffer(128));

  /**
   * Creates the epoll set and its wake-up eventfd.
   * @param lib the C library
   * @throws {Error} when epoll or eventfd cannot be created
   */
  constructor(lib: LibCHandle) {
    this.#lib = lib;
    const { symbols } = lib;
    this.#epfd = symbols.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`epoll_create1 failed (errno ${lib.errno()})`);
    this.#wakeFd = symbols.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.#wakeFd < 0) {
      symbols.close(this.#epfd);
      throw new Error(`eventfd failed (errno ${lib.errno()})`);
    }
    this.#control(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN, 0);
    symbols.sigfillset(this.#allSignals);
  }

  /**
   * Registers a descriptor, edge-triggered.
   * @param fd the descriptor (nonblocking, for pipes)
   * @param events `EPOLLIN` or `EPOLLOUT` (errors and hang-ups always count)
   * @returns the watch
   * @throws {Error} when epoll_ctl fails
   */
  add(fd: number, events: number): Watch {
    const token = this.#nextToken++;
    if (this.#nextToken > 0x7fffffff) this.#nextToken = 1;
    const registration = new Registration(this, fd, token);
    this.#control(EPOLL_CTL_ADD, fd, events | EPOLLET, token);
    this.#byToken.set(token, registration);
    return registration;
  }

  /** @internal */
  park(registration: Registration): Promise<void> {
    return new Promise<void>((resolve) => {
      registration.resolve = resolve;
      this.#parked++;
      this.#arm();
    });
  }

  /** @internal */
  drop(registration: Registration, closing: boolean): void {
    this.#byToken.delete(registration.token);
    // An event already queued for it finds no token and is ignored.
    if (!closing) this.#control(EPOLL_CTL_DEL, registration.fd, 0, 0);
    this.#release(registration);
    // Nobody waits any more: the call in flight must end, or it keeps the
    // process alive.
    if (this.#parked === 0 && this.#inFlight && !this.#woken) this.#wake();
  }

  #release(registration: Registration): void {
    const resolve = registration.resolve;
    if (resolve === undefined) return;
    registration.resolve = undefined;
    this.#parked--;
    resolve();
  }

  #control(op: number, fd: number, events: number, token: number): void {
    this.#ctlView.setUint32(0, events >>> 0, true);
    this.#ctlView.setUint32(DATA_OFFSET, token, true);
    this.#ctlView.setUint32(DATA_OFFSET + 4, 0, true);
    if (this.#lib.symbols.epoll_ctl(this.#epfd, op, fd, this.#ctl) < 0 && op !== EPOLL_CTL_DEL) {
      throw new Error(`epoll_ctl failed (errno ${this.#lib.errno()})`);
    }
  }

  #wake(): void {
    this.#woken = true;
    new DataView(this.#wakeBuffer.buffer).setBigUint64(0, 1n, true);
    this.#lib.symbols.write(this.#wakeFd, this.#wakeBuffer, 8n);
  }

  #arm(): void {
    if (this.#inFlight || this.#armQueued || this.#parked === 0) return;
    // Once the current callbacks are done: the waits they park go together.
    this.#armQueued = true;
    queueMicrotask(this.#armNow);
  }

  #armNow = (): void => {
    this.#armQueued = false;
    if (this.#inFlight || this.#parked === 0) return;
    const { symbols } = this.#lib;
    // What is ready already costs no trip to another thread.
    const ready = symbols.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, 0);
    if (ready > 0) {
      this.#dispatch(ready);
      this.#arm();
      return;
    }
    this.#inFlight = true;
    // Every signal blocked while waiting: a SIGCHLD meant for the runtime
    // would only interrupt the wait.
    symbols.epoll_pwait(this.#epfd, this.#events, MAX_EVENTS, -1, this.#allSignals).then(
      (count) => {
        this.#inFlight = false;
        this.#dispatch(count);
        this.#arm();
      },
    );
  };

  #dispatch(count: number): void {
    const view = this.#eventView;
    for (let i = 0; i < count; i++) {
      const token = view.getUint32(i * EVENT_SIZE + DATA_OFFSET, true);
      if (token === 0) {
        this.#lib.symbols.read(this.#wakeFd, this.#wakeBuffer, 8n);
        this.#woken = false;
        continue;
      }
      const registration = this.#byToken.get(token);
      if (registration === undefined) continue; // removed meanwhile
      if (registration.resolve) this.#release(registration);
      else registration.ready = true;
    }
  }
}

let shared: FdPoller | undefined;

/**
 * The process's poller, created on first use.
 * @param lib the C library
 * @returns the poller
 * @throws {Error} when epoll cannot be set up
 */
export function fdPoller(lib: LibCHandle): FdPoller {
  shared ??= new FdPoller(lib);
  return shared;
}
