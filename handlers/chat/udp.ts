/**
 * The datagram side of the chat relay: one {@linkcode ChatDatagramPort} per
 * UDP socket in a room. It maps source addresses to members (the first
 * datagram from an unknown address joins it — under NAME when it is
 * `/nick NAME` — and is then handled like any other), strips one trailing
 * newline, and sends the room's lines to members from the listener's socket
 * (each ending with `\n` when the listener has `append_newline`).
 *
 * @module
 */

import { formatHostPort, normalizeHost } from "../../lib/address.ts";
import type {
  ChatMember,
  ChatRoom,
  Framing,
  LeaveReason,
  MemberLimits,
  MemberSink,
} from "./room.ts";
import { parseCommand, stripNewline } from "./text.ts";
import type { Logger } from "../../lib/log.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import { describeError } from "../../lib/net_errors.ts";

/** Sends a datagram from a listener's socket. */
export type DatagramSend = (data: Uint8Array, to: Deno.NetAddr) => Promise<void>;

/** Options for {@linkcode ChatDatagramPort}. */
export interface ChatDatagramPortOptions {
  /** The room the socket's members are in. */
  room: ChatRoom;
  /** Sends from the listener's socket. */
  send: DatagramSend;
  /** Limits for members joining through this socket. */
  limits: MemberLimits;
  /** The room cap for newcomers through this socket. */
  maxMembers: number;
  /** End every datagram sent with `\n` (`append_newline`, for `nc -u` users). */
  appendNewline: boolean;
  /** For send failures. */
  log: Logger;
}

const ROOM_FULL = new TextEncoder().encode("error: room full");
const ROOM_FULL_LINE = new TextEncoder().encode("error: room full\n");

/**
 * A member's name before `/nick`: its address, IPv4-mapped IPv6 unmapped.
 * @param from the source address
 * @returns `ip:port` or `[v6]:port`
 */
export function addressName(from: Deno.NetAddr): string {
  return formatHostPort(normalizeHost(from.hostname), from.port);
}

class DatagramSink implements MemberSink {
  readonly #port: ChatDatagramPort;
  readonly #to: Deno.NetAddr;
  readonly #key: string;

  constructor(port: ChatDatagramPort, to: Deno.NetAddr, key: string) {
    this.#port = port;
    this.#to = to;
    this.#key = key;
  }

  get framing(): Framing {
    return this.#port.appendNewline ? "datagram-newline" : "datagram";
  }

  deliver(bytes: Uint8Array): Promise<void> {
    return this.#port.sendTo(bytes, this.#to);
  }

  removed(_reason: LeaveReason): void {
    this.#port.forget(this.#key);
  }
}

/** The members of one room that talk through one UDP socket. */
export class ChatDatagramPort {
  #room: ChatRoom;
  #send: DatagramSend;
  #limits: MemberLimits;
  #maxMembers: number;
  #appendNewline: boolean;
  #log: Logger;
  #members = new Map<string, ChatMember>();
  #sendFailures = new LogThrottle(10_000);
  #onSendError = (error: unknown): void => {
    if (error instanceof Deno.errors.BadResource) return; // the socket closed: stopping
    const count = this.#sendFailures.hit(performance.now());
    if (count > 0) this.#log.info(`Chat send failed: ${describeError(error)}`, { count });
  };

  /**
   * @param options room, socket, limits and logger
   */
  constructor(options: ChatDatagramPortOptions) {
    this.#room = options.room;
    this.#send = options.send;
    this.#limits = options.limits;
    this.#maxMembers = options.maxMembers;
    this.#appendNewline = options.appendNewline;
    this.#log = options.log;
  }

  /** Whether datagrams sent through this socket end with `\n`. */
  get appendNewline(): boolean {
    return this.#appendNewline;
  }

  /** How many members talk through this socket. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Applies a reloaded listener's settings, to newcomers and to the members
   * already there.
   * @param options the new send function, limits and cap
   */
  reconfigure(
    options: Pick<ChatDatagramPortOptions, "send" | "limits" | "maxMembers" | "appendNewline">,
  ): void {
    this.#send = options.send;
    this.#limits = options.limits;
    this.#maxMembers = options.maxMembers;
    this.#appendNewline = options.appendNewline;
    for (const member of this.#members.values()) this.#room.setLimits(member, options.limits);
  }

  /**
   * Handles one datagram. `data` is only read before this returns.
   * @param data the datagram (a view of the receive buffer)
   * @param from its source
   * @returns a promise for the last send it caused (never rejects), if any
   */
  handle(data: Uint8Array, from: Deno.NetAddr): Promise<unknown> | undefined {
    const key = `${from.hostname} ${from.port}`;
    let member = this.#members.get(key);
    if (member !== undefined && !this.#room.alive(member)) member = undefined;
    const body = stripNewline(data);
    if (member === undefined) {
      const command = body.length > 0 && body[0] === 0x2f ? parseCommand(body) : undefined;
      // A /leave from someone who is not a member asks for nothing.
      if (command?.kind === "leave") return undefined;
      member = this.#room.join(new DatagramSink(this, from, key), {
        name: addressName(from),
        nick: command?.kind === "nick" ? command.name : undefined,
        limits: this.#limits,
        maxMembers: this.#maxMembers,
      });
      if (member === undefined) {
        if (!this.#room.mayRefuse()) return undefined;
        return this.sendTo(this.#appendNewline ? ROOM_FULL_LINE : ROOM_FULL, from);
      }
      this.#members.set(key, member);
    }
    // A first "/nick NAME" that joined under NAME renames to the same name:
    // nothing is announced, but it counts against the rate as any command.
    return this.#room.receive(member, body);
  }

  /**
   * Sends from the socket; failures are logged (throttled), never thrown.
   * @param bytes the datagram
   * @param to the destination
   * @returns a promise that settles when the send is done
   */
  sendTo(bytes: Uint8Array, to: Deno.NetAddr): Promise<void> {
    return this.#send(bytes, to).catch(this.#onSendError);
  }

  /**
   * Forgets an address once the room removed its member.
   * @param key the address key
   */
  forget(key: string): void {
    this.#members.delete(key);
  }

  /** Removes every member of this socket from the room (`* name left`): the socket is going away. */
  removeAll(): void {
    for (const member of [...this.#members.values()]) this.#room.leave(member, "left");
    this.#members.clear();
  }
}
