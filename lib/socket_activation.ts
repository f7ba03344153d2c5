/**
 * systemd socket activation (sd_listen_fds(3)): the sockets systemd passes
 * as descriptors 3, 4, … with `LISTEN_FDS`, `LISTEN_PID` and
 * `LISTEN_FDNAMES`, adopted by listeners written `listen = "fd:NAME"` (the
 * unit's `FileDescriptorName=`) or `listen = "fd:3"`.
 *
 * The variables are removed from the environment once read and every
 * passed descriptor is marked close-on-exec, so neither reaches a command
 * that cmd runs. An adopted socket is never closed by a reload: a listener
 * that goes away only stops taking its connections (new ones are closed at
 * once), and a later reload may take it up again. Deno adopts a listening
 * TCP socket through `node:net` (`server.listen({ fd })`); its `node:dgram`
 * cannot adopt one, so `fd:` is TCP only.
 *
 * @module
 */

import { createServer, type Server, type Socket } from "node:net";
import type { ListenAddress } from "./address.ts";
import { setCloseOnExec } from "./close_on_exec.ts";
import { NodeStreamConn } from "./node_stream_conn.ts";
import type { AcceptedConn, StreamListener } from "./stream_listener.ts";

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;
const PREFIX = "fd:";
const NAME = /^[A-Za-z0-9_.:@-]{1,255}$/;

/**
 * Whether a `listen` value names a passed socket.
 * @param text the `listen` value
 * @returns true for `fd:…`
 */
export function isFdListen(text: string): boolean {
  return text.trim().startsWith(PREFIX);
}

/**
 * Parses `fd:NAME` or `fd:N`. The address it returns stands for "every
 * interface, port unknown until systemd passes the socket" (never
 * loopback, so rules for loopback-only listeners stay strict).
 *
 * @example
 * ```ts
 * import { parseFdListen } from "./socket_activation.ts";
 * if (parseFdListen("fd:web").fd !== "web") throw new Error("name");
 * ```
 *
 * @param text the `listen` value
 * @returns the address, with `fd` set to the name or number
 * @throws {SyntaxError} when the name is not a valid descriptor name
 */
export function parseFdListen(text: string): ListenAddress {
  const ref = text.trim().slice(PREFIX.length);
  if (/^\d+$/.test(ref)) {
    if (Number(ref) < LISTEN_FDS_START) {
      throw new SyntaxError(
        `Cannot use "${text}": descriptors passed by systemd start at ${LISTEN_FDS_START}`,
      );
    }
  } else if (!NAME.test(ref)) {
    throw new SyntaxError(
      `Cannot parse "${text}": expected "fd:NAME" (FileDescriptorName= of the socket unit) or "fd:N"`,
    );
  }
  return { hostname: "::", port: 0, scope: "all", fd: ref };
}

/** One descriptor systemd passed. */
export interface PassedSocket {
  /** The descriptor number. */
  fd: number;
  /** Its name (`FileDescriptorName=`; systemd's default is the socket unit's name). */
  name: string;
}

/** A socket a listener asked for was not passed or cannot be used; exit 71. */
export class PassedSocketError extends Error {
  /**
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "PassedSocketError";
  }
}

/** Where {@linkcode PassedSockets.fromEnvironment} looks (injectable for tests). */
export interface ActivationEnvironment {
  /** Reads a variable. @default {Deno.env.get} */
  env?: (name: string) => string | undefined;
  /** Removes a variable. @default {Deno.env.delete} */
  unset?: (name: string) => void;
  /** This process's pid, compared with LISTEN_PID. @default {Deno.pid} */
  pid?: number;
  /** Marks descriptors close-on-exec. @default {setCloseOnExec} */
  closeOnExec?: (fds: readonly number[]) => string | undefined;
}

const VARIABLES = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/** The sockets systemd passed to this process, and the ones adopted so far. */
export class PassedSockets {
  /** What was passed, in descriptor order. */
  readonly sockets: readonly PassedSocket[];
  /** Things worth a log line (a LISTEN_PID for another process, fcntl failing). */
  readonly notes: readonly string[];
  #adopted = new Map<number, Promise<AdoptedSocket>>();
  #handedOver = new Set<number>();

  /**
   * @param sockets the passed descriptors
   * @param notes lines for the log
   */
  constructor(sockets: readonly PassedSocket[] = [], notes: readonly string[] = []) {
    this.sockets = sockets;
    this.notes = notes;
  }

  /**
   * Reads (and removes) `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`,
   * and marks the passed descriptors close-on-exec.
   * @param environment where to look
   * @returns the passed sockets (none when not socket-activated)
   */
  static fromEnvironment(environment: ActivationEnvironment = {}): PassedSockets {
    const env = environment.env ?? ((name: string) => Deno.env.get(name));
    const unset = environment.unset ?? ((name: string) => Deno.env.delete(name));
    const count = env("LISTEN_FDS");
    const pid = env("LISTEN_PID");
    const names = env("LISTEN_FDNAMES");
    for (const name of VARIABLES) if (env(name) !== undefined) unset(name);
    if (count === undefined) return new PassedSockets();
    const ownPid = environment.pid ?? Deno.pid;
    if (pid !== undefined && pid !== "" && Number(pid) !== ownPid) {
      return new PassedSockets([], [
        `LISTEN_FDS ignored: LISTEN_PID=${pid} is another process (this is ${ownPid})`,
      ]);
    }
    const n = /^\d{1,4}$/.test(count) ? Number(count) : NaN;
    if (!Number.isInteger(n)) {
      return new PassedSockets([], [`LISTEN_FDS="${count}" ignored: not a count`]);
    }
    const given = names === undefined || names === "" ? [] : names.split(":");
    const sockets = Array.from({ length: n }, (_, i) => ({
      fd: LISTEN_FDS_START + i,
      name: given[i] ?? "unknown",
    }));
    const notes: string[] = [];
    const failed = (environment.closeOnExec ?? setCloseOnExec)(sockets.map((s) => s.fd));
    if (failed) {
      notes.push(
        `Cannot mark passed sockets close-on-exec (${failed}): commands run by cmd may inherit them`,
      );
    }
    return new PassedSockets(sockets, notes);
  }

  /**
   * The descriptors a reference means: `3` is descriptor 3, `web` every
   * socket named web.
   * @param ref what follows `fd:`
   * @returns the matching sockets
   * @throws {PassedSocketError} when none was passed
   */
  resolve(ref: string): PassedSocket[] {
    const byNumber = /^\d+$/.test(ref);
    const found = this.sockets.filter((s) => byNumber ? s.fd === Number(ref) : s.name === ref);
    if (found.length > 0) return found;
    const passed = this.sockets.length === 0
      ? "systemd passed no socket (LISTEN_FDS is not set for this process)"
      : `systemd passed ${this.sockets.map((s) => `${s.fd} (${s.name})`).join(", ")}`;
    throw new PassedSocketError(
      byNumber
        ? `descriptor ${ref} was not passed: ${passed}`
        : `no socket named "${ref}": ${passed}`,
    );
  }

  /**
   * Says which sockets worker processes serve now (they are not "unused"
   * here although this process does not take them).
   * @param refs what follows `fd:` in each listener the workers serve
   */
  handOver(refs: readonly string[]): void {
    this.#handedOver = new Set(refs.flatMap((ref) => {
      try {
        return this.resolve(ref).map((socket) => socket.fd);
      } catch {
        return [];
      }
    }));
  }

  /**
   * Starts taking the connections of the socket(s) `ref` names.
   * @param ref what follows `fd:`
   * @param owner the listener's name (for messages)
   * @returns a listener that stops taking connections when closed
   * @throws {PassedSocketError} when the socket was not passed, is not a
   *   listening TCP socket, or another listener already takes it
   */
  async listen(ref: string, owner: string): Promise<StreamListener> {
    const sockets = await Promise.all(this.resolve(ref).map((s) => this.#adopt(s)));
    const taken = sockets.find((socket) => socket.owner !== undefined);
    if (taken) {
      throw new PassedSocketError(
        `descriptor ${taken.fd} is already served by listener "${taken.owner}"`,
      );
    }
    return new AdoptedListener(sockets, owner);
  }

  #adopt(socket: PassedSocket): Promise<AdoptedSocket> {
    let adopting = this.#adopted.get(socket.fd);
    if (!adopting) {
      adopting = AdoptedSocket.adopt(socket);
      this.#adopted.set(socket.fd, adopting);
      // A failure is not remembered: a later reload may try again.
      adopting.catch(() => this.#adopted.delete(socket.fd));
    }
    return adopting;
  }

  /** Passed sockets no listener takes now. */
  async unused(): Promise<PassedSocket[]> {
    const unused: PassedSocket[] = [];
    for (const socket of this.sockets) {
      const adopted = await this.#adopted.get(socket.fd)?.catch(() => undefined);
      if ((!adopted || adopted.owner === undefined) && !this.#handedOver.has(socket.fd)) {
        unused.push(socket);
      }
    }
    return unused;
  }

  /** Closes every adopted socket (only when the daemon exits). */
  async close(): Promise<void> {
    const adopted = await Promise.allSettled(this.#adopted.values());
    this.#adopted.clear();
    await Promise.all(
      adopted.map((r) => r.status === "fulfilled" ? r.value.close() : Promise.resolve()),
    );
  }
}

/** One passed socket, listening through `node:net` for as long as the daemon runs. */
class AdoptedSocket {
  readonly fd: number;
  readonly addr: Deno.NetAddr;
  #server: Server;
  /** Who takes the connections now; without one they are closed at once. */
  onConnection?: (socket: Socket) => void;
  onError?: (error: Error) => void;
  owner?: string;

  private constructor(fd: number, server: Server, addr: Deno.NetAddr) {
    this.fd = fd;
    this.#server = server;
    this.addr = addr;
    server.on("connection", (socket: Socket) => {
      if (this.onConnection) this.onConnection(socket);
      else socket.destroy();
    });
    server.on("error", (error: Error) => this.onError?.(error));
  }

  static async adopt(passed: PassedSocket): Promise<AdoptedSocket> {
    const server = createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ fd: passed.fd }, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      throw new PassedSocketError(
        `descriptor ${passed.fd} (${passed.name}) is not a listening TCP socket: ${
          (error as Error).message
        }`,
      );
    }
    const address = server.address();
    if (address === null || typeof address === "string") {
      server.close();
      throw new PassedSocketError(
        `descriptor ${passed.fd} (${passed.name}) is not a TCP socket (${String(address)})`,
      );
    }
    return new AdoptedSocket(passed.fd, server, {
      transport: "tcp",
      hostname: address.address,
      port: address.port,
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

// Connections waiting for accept(); beyond this they are closed (the kernel's backlog is the queue).
const MAX_QUEUED = 1024;

/** Takes the connections of adopted sockets; `close` hands them back. */
class AdoptedListener implements StreamListener {
  #sockets: AdoptedSocket[];
  #queue: Socket[] = [];
  #waiting?: PromiseWithResolvers<AcceptedConn>;
  #error?: Error;
  #closed = false;

  constructor(sockets: AdoptedSocket[], owner: string) {
    this.#sockets = sockets;
    for (const socket of sockets) {
      socket.owner = owner;
      socket.onConnection = (connection) => this.#arrive(connection);
      socket.onError = (error) => {
        if (this.#waiting) this.#waiting.reject(error);
        else this.#error = error;
        this.#waiting = undefined;
      };
    }
  }

  get addr(): Deno.NetAddr {
    return this.#sockets[0]!.addr;
  }

  #arrive(socket: Socket): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve(new NodeStreamConn(socket));
    } else if (this.#queue.length < MAX_QUEUED) {
      this.#queue.push(socket);
    } else {
      socket.destroy();
    }
  }

  accept(): Promise<AcceptedConn> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Listener is closed"));
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(new NodeStreamConn(queued));
    if (this.#error) {
      const error = this.#error;
      this.#error = undefined;
      return Promise.reject(error);
    }
    this.#waiting = Promise.withResolvers<AcceptedConn>();
    return this.#waiting.promise;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#sockets) {
      socket.owner = undefined;
      socket.onConnection = undefined;
      socket.onError = undefined;
    }
    for (const socket of this.#queue.splice(0)) socket.destroy();
    this.#waiting?.reject(new Deno.errors.BadResource("Listener is closed"));
    this.#waiting = undefined;
  }
}
