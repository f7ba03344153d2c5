/**
 * A chat room, independent of transports: its members and their names, the
 * commands (`/nick`, `/who`, `/leave`), per-member limits (message size,
 * token-bucket rate, time to live) and the fan-out of each message to every
 * other member exactly once. Transports plug in through {@linkcode MemberSink}:
 * a UDP address or a TCP connection.
 *
 * Each relayed message is framed once per framing (one byte array for all
 * datagram members, one for those whose datagrams end with a newline, one
 * for all line members) and the same bytes go to every member. Message bodies are bytes and are never decoded.
 *
 * A room shared with other daemons over a bus gets a {@linkcode RoomObserver}
 * (told of every local join, leave, rename and message, to pass them on) and
 * a view of the members elsewhere ({@linkcode OtherMembers}): names stay
 * unique, `max_members` and `/who` cover the whole room, and what comes from
 * the bus reaches the local members through {@linkcode ChatRoom.relay} and
 * {@linkcode ChatRoom.notice}.
 *
 * @module
 */

import {
  checkName,
  encodePrefix,
  foldName,
  formatMembers,
  frameDatagram,
  frameLine,
  parseCommand,
} from "./text.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import type { Logger } from "../../lib/log.ts";
import { TokenBucket } from "../../lib/token_bucket.ts";
import { formatRate, type Rate } from "../../lib/units.ts";

/**
 * How a member receives lines: one datagram each (`datagram-newline`: each
 * ending with `\n`, a listener's `append_newline`), or `\n`-terminated on a
 * stream.
 */
export type Framing = "datagram" | "datagram-newline" | "line";

/**
 * Why a member stopped being one. `left`: `/leave`, its connection closed or
 * its listener went away; `timeout`: silent for longer than its TTL; `too
 * slow`: its send queue overflowed; `closed`: the room closed (not announced).
 */
export type LeaveReason = "left" | "timeout" | "too slow" | "closed";

/** Where a member's lines go: implemented by the UDP and TCP transports. */
export interface MemberSink {
  /** How this member receives lines (read on each send: a reload may change it). */
  readonly framing: Framing;
  /**
   * Sends one framed line. The bytes are shared with other members and must
   * not be changed. A returned promise settles when the send is done and
   * never rejects (the sink handles its own errors).
   */
  deliver(bytes: Uint8Array): Promise<void> | undefined;
  /** Told once when the room has removed the member, for whatever reason. */
  removed(reason: LeaveReason): void;
}

/** The limits that apply to one member (from the listener it came through). */
export interface MemberLimits {
  /** Longest message, in bytes (after the trailing newline is stripped). */
  maxMessage: number;
  /** Sustained message rate. */
  rate: Rate;
  /** Messages allowed at once after a quiet spell. */
  burst: number;
  /** A member silent this long (ms) is removed. */
  ttlMs: number;
}

/** A member as seen outside the room. */
export interface ChatMember {
  /** Its id in this room (never reused). */
  readonly id: number;
  /** The current name. */
  readonly name: string;
  /** False once the member has been removed. */
  readonly present: boolean;
  /** When it joined, ms since the epoch. */
  readonly joinedAt: number;
  /** When it claimed its current name, ms since the epoch. */
  readonly claimedAt: number;
}

/** Why a member left, when it is announced (`closed` never is). */
export type AnnouncedReason = Exclude<LeaveReason, "closed">;

/** Told of every change among the local members, to pass it on to the other daemons. */
export interface RoomObserver {
  /** A member joined. */
  joined(member: ChatMember): void;
  /** A member left (not called when the room closes). */
  left(member: ChatMember, reason: AnnouncedReason): void;
  /** A member took a new name (`member.name`, claimed at `member.claimedAt`). */
  renamed(member: ChatMember): void;
  /** A member's message was relayed locally. `body` is only valid during the call. */
  message(member: ChatMember, body: Uint8Array): void;
}

/** The room's members on other daemons, as the room needs to see them. */
export interface OtherMembers {
  /** How many there are. */
  readonly size: number;
  /** Whether one of them has this name (folded). */
  hasName(folded: string): boolean;
  /** Each of them, for `/who`. */
  members(): Iterable<{ readonly name: string; readonly joinedAt: number }>;
}

/** Options for {@linkcode ChatRoom.join}. */
export interface JoinOptions {
  /** The default name (`ip:port`); `#2`, `#3`… is added if it is taken. */
  name: string;
  /**
   * The name a first `/nick NAME` asked for: joined under when it is valid
   * and free (no rename line follows), else the default is used.
   */
  nick?: string;
  /** The member's limits. */
  limits: MemberLimits;
  /** The room may hold at most this many members for this join to succeed. */
  maxMembers: number;
}

/** Options for {@linkcode ChatRoom}. */
export interface ChatRoomOptions {
  /** The room's name, for logs. */
  name: string;
  /** Monotonic clock in ms. */
  now: () => number;
  /** Logger for joins, leaves and drops. */
  log: Logger;
  /** Wall clock in ms since the epoch (join and name-claim times). @default {Date.now} */
  wallClock?: () => number;
  /**
   * The longest interval between looks for silent members, in real ms; a
   * member with a short TTL makes it shorter (a quarter of the TTL, at
   * least 50 ms). @default {1000}
   */
  sweepMs?: number;
}

/**
 * A `/who` reply to a datagram member is capped: a 4-byte request from a
 * forged source must not buy a large reply.
 */
const WHO_DATAGRAM_CAP = 512;
/** Replies to non-members (`room full`) are limited room-wide: they may come from spoofed sources. */
const REFUSALS: Rate = { count: 10, perMs: 1000 };
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

class Member implements ChatMember {
  readonly id: number;
  readonly joinedAt: number;
  claimedAt: number;
  name: string;
  folded: string;
  prefix: Uint8Array;
  readonly sink: MemberSink;
  limits: MemberLimits;
  readonly bucket: TokenBucket;
  expiresAt: number;
  /** When the next "rate limit" notice may be sent. */
  noticeAt = -Infinity;
  present = true;

  constructor(
    id: number,
    name: string,
    folded: string,
    sink: MemberSink,
    limits: MemberLimits,
    now: number,
    wallNow: number,
  ) {
    this.id = id;
    this.joinedAt = wallNow;
    this.claimedAt = wallNow;
    this.name = name;
    this.folded = folded;
    this.prefix = encodePrefix(name);
    this.sink = sink;
    this.limits = limits;
    this.bucket = new TokenBucket({ rate: limits.rate, burst: limits.burst, now });
    this.expiresAt = now + limits.ttlMs;
  }
}

// The rate formatter moved to lib (the listeners' limits use it too).
export { formatRate };

/** A chat room shared by the listeners that name it. */
export class ChatRoom {
  #name: string;
  #now: () => number;
  #wallClock: () => number;
  #log: Logger;
  #sweepMs: number;
  #members = new Set<Member>();
  #names = new Map<string, Member>();
  #sweepTimer?: ReturnType<typeof setInterval>;
  #sweepEvery = Infinity;
  #refusals: TokenBucket;
  #refusalLog = new LogThrottle(10_000);
  #slowLog = new LogThrottle(10_000);
  #closed = false;
  #nextId = 1;
  #observer?: RoomObserver;
  #others?: OtherMembers;

  /**
   * Creates an empty room.
   * @param options name, clock, logger and sweep interval
   */
  constructor(options: ChatRoomOptions) {
    this.#name = options.name;
    this.#now = options.now;
    this.#wallClock = options.wallClock ?? Date.now;
    this.#log = options.log;
    this.#sweepMs = options.sweepMs ?? 1000;
    this.#refusals = new TokenBucket({ rate: REFUSALS, burst: REFUSALS.count, now: this.#now() });
  }

  /** The room's name. */
  get name(): string {
    return this.#name;
  }

  /** How many members there are here (not counting other daemons'). */
  get size(): number {
    return this.#members.size;
  }

  /** How many members the whole room has, here and on other daemons. */
  get roomSize(): number {
    return this.#members.size + (this.#others?.size ?? 0);
  }

  /** The names of the whole room's members, in join order. */
  get names(): string[] {
    const local = [...this.#members];
    if (this.#others === undefined || this.#others.size === 0) return local.map((m) => m.name);
    const all: { name: string; joinedAt: number }[] = [...local, ...this.#others.members()];
    // A stable sort: local members that joined in one millisecond keep their order.
    all.sort((a, b) => a.joinedAt - b.joinedAt);
    return all.map((member) => member.name);
  }

  /** The members here, in join order (for a roster sent to other daemons). */
  get localMembers(): IterableIterator<ChatMember> {
    return this.#members.values();
  }

  /**
   * Shares the room with other daemons: `observer` hears of every local
   * change; `others` are counted for `max_members`, names and `/who`.
   * @param observer what passes local changes on
   * @param others the members elsewhere
   */
  share(observer: RoomObserver, others: OtherMembers): void {
    this.#observer = observer;
    this.#others = others;
  }

  /**
   * Sends a message from a member elsewhere to every member here.
   * @param prefix the sender's encoded `[name] `
   * @param body the message bytes (only read before this returns)
   * @returns a promise for the last datagram send it caused (never rejects), if any
   */
  relay(prefix: Uint8Array, body: Uint8Array): Promise<unknown> | undefined {
    return this.#fanOut(undefined, prefix, body, this.#now());
  }

  /**
   * Sends a server line (`* ana joined`, `* link to the room is down`) to every member here.
   * @param text the line, without newline
   * @returns a promise for the last datagram send it caused (never rejects), if any
   */
  notice(text: string): Promise<unknown> | undefined {
    return this.#announce(undefined, text, this.#now());
  }

  /**
   * The local member with this name, if any.
   * @param folded the name, folded with `foldName`
   * @returns the member
   */
  localByName(folded: string): ChatMember | undefined {
    return this.#names.get(folded);
  }

  /**
   * Gives a local member a free name because a member elsewhere holds its
   * name by an earlier claim: `ana` becomes `ana#2`, announced to everyone
   * here, the member too (it did not ask for it), and passed on.
   * @param member the local member
   */
  yieldName(member: ChatMember): void {
    const m = member as Member;
    if (!m.present) return;
    const base = m.name.replace(/#\d+$/, "");
    let name = base;
    let folded = foldName(name);
    for (let n = 2; this.#taken(folded); n++) {
      name = `${base}#${n}`;
      folded = foldName(name);
    }
    const old = m.name;
    this.#rename(m, name, folded);
    this.#log.info("Name taken elsewhere in the room: member renamed", {
      room: this.#name,
      member: old,
      name,
    });
    this.#announce(undefined, `* ${old} is now ${name}`, this.#now());
    this.#observer?.renamed(m);
  }

  #taken(folded: string): boolean {
    return this.#names.has(folded) || (this.#others?.hasName(folded) ?? false);
  }

  #rename(m: Member, name: string, folded: string): void {
    this.#names.delete(m.folded);
    this.#names.set(folded, m);
    m.name = name;
    m.folded = folded;
    m.prefix = encodePrefix(name);
    m.claimedAt = this.#wallClock();
  }

  /**
   * Adds a member and tells the others `* name joined` (not the newcomer:
   * its address may be forged, and a join must never send it anything).
   * @param sink where the member's lines go
   * @param options default name, limits and the member cap
   * @returns the member, or undefined when the room is full or closed
   */
  join(sink: MemberSink, options: JoinOptions): ChatMember | undefined {
    if (this.#closed || this.roomSize >= options.maxMembers) {
      if (!this.#closed) {
        const count = this.#refusalLog.hit(performance.now());
        if (count > 0) {
          this.#log.info(`Room "${this.#name}" is full (max_members ${options.maxMembers})`, {
            refused: count,
          });
        }
      }
      return undefined;
    }
    const now = this.#now();
    const nick = options.nick;
    let name = options.name;
    let folded = foldName(name);
    if (nick !== undefined && checkName(nick) === undefined && !this.#taken(foldName(nick))) {
      name = nick;
      folded = foldName(nick);
    }
    for (let n = 2; this.#taken(folded); n++) {
      name = `${options.name}#${n}`;
      folded = foldName(name);
    }
    const member = new Member(
      this.#nextId++,
      name,
      folded,
      sink,
      options.limits,
      now,
      this.#wallClock(),
    );
    this.#members.add(member);
    this.#names.set(folded, member);
    this.#log.debug("Member joined", { room: this.#name, member: name });
    this.#announce(member, `* ${name} joined`, now);
    this.#armSweep(options.limits.ttlMs);
    this.#observer?.joined(member);
    return member;
  }

  /**
   * Whether a refusal (`error: room full`) may be sent now. Refusals go to
   * addresses that are not members, so they are limited room-wide: a flood
   * from forged sources cannot turn the relay into a reflector.
   * @returns true when a refusal may be sent
   */
  mayRefuse(): boolean {
    return this.#refusals.take(this.#now());
  }

  /**
   * Whether `member` is still a member; one whose TTL has run out is removed
   * now (`* name left (timeout)`), so expiry does not depend on the sweep.
   * @param member the member
   * @returns true when it is present and not expired
   */
  alive(member: ChatMember): boolean {
    const m = member as Member;
    if (!m.present) return false;
    if (m.expiresAt > this.#now()) return true;
    this.#remove(m, "timeout");
    return false;
  }

  /**
   * Handles one line from a member: an empty one is a keep-alive, a command
   * is carried out, a message is relayed to every other member once as
   * `[name] text`. Over-long lines and lines over the rate are dropped and
   * the sender alone is told (rate notices at most once per rate period).
   * @param member the sender
   * @param body the line without its trailing newline; only read before this returns
   * @returns a promise for the last datagram send it caused (never rejects), if any
   */
  receive(member: ChatMember, body: Uint8Array): Promise<unknown> | undefined {
    const m = member as Member;
    if (!m.present) return undefined;
    const now = this.#now();
    if (m.expiresAt <= now) {
      this.#remove(m, "timeout");
      return undefined;
    }
    m.expiresAt = now + m.limits.ttlMs;
    if (body.length === 0) return undefined;
    if (!m.bucket.take(now)) {
      if (now >= m.noticeAt) {
        m.noticeAt = now + m.limits.rate.perMs;
        return this.#reply(
          m,
          `error: rate limit exceeded (${formatRate(m.limits.rate)}, burst ${m.limits.burst}); ` +
            "messages dropped",
        );
      }
      return undefined;
    }
    const command = parseCommand(body);
    switch (command.kind) {
      case "message":
        if (command.body.length > m.limits.maxMessage) {
          return this.#reply(
            m,
            `error: message too long (${command.body.length} bytes, limit ${m.limits.maxMessage}); not sent`,
          );
        }
        this.#observer?.message(m, command.body);
        return this.#fanOut(m, m.prefix, command.body, now);
      case "who": {
        const cap = m.sink.framing === "line" ? Infinity : WHO_DATAGRAM_CAP;
        return this.#reply(m, formatMembers(this.names, cap));
      }
      case "leave":
        this.#remove(m, "left");
        return undefined;
      case "nick":
        return this.#nick(m, command.name, command.error, now);
      case "unknown":
        return this.#reply(
          m,
          `error: unknown command "${command.command}" (try /nick NAME, /who, /leave; ` +
            '"//" sends a "/")',
        );
    }
  }

  /**
   * Reports that a line was too long to read (a stream member's line over
   * `max_message`): the sender alone is told, within its rate.
   * @param member the sender
   * @param length how many bytes the line had when it was refused
   * @returns a promise for the send, if any
   */
  tooLong(member: ChatMember, length: number): Promise<unknown> | undefined {
    const m = member as Member;
    if (!m.present) return undefined;
    const now = this.#now();
    m.expiresAt = now + m.limits.ttlMs;
    if (!m.bucket.take(now)) return undefined;
    return this.#reply(
      m,
      `error: message too long (over ${Math.max(length, m.limits.maxMessage)} bytes, ` +
        `limit ${m.limits.maxMessage}); not sent`,
    );
  }

  /**
   * Removes a member, telling the others `* name left` (with `(timeout)` or
   * `(too slow)` for those reasons; nothing for `closed`). Idempotent.
   * @param member the member
   * @param reason why @default {"left"}
   */
  leave(member: ChatMember, reason: LeaveReason = "left"): void {
    this.#remove(member as Member, reason);
  }

  /**
   * Changes a member's limits (after a reload of its listener).
   * @param member the member
   * @param limits the new limits; the TTL counts from the last message
   */
  setLimits(member: ChatMember, limits: MemberLimits): void {
    const m = member as Member;
    m.expiresAt += limits.ttlMs - m.limits.ttlMs;
    m.limits = limits;
    m.bucket.configure(limits.rate, limits.burst);
    if (m.present) this.#armSweep(limits.ttlMs);
  }

  /** Removes every member silent for longer than its TTL (`* name left (timeout)`). */
  sweep(): void {
    const now = this.#now();
    let expired: Member[] | undefined;
    for (const member of this.#members) {
      if (member.expiresAt <= now) (expired ??= []).push(member);
    }
    if (expired) { for (const member of expired) this.#remove(member, "timeout"); }
  }

  /** Removes every member without announcements and stops the sweep timer. */
  close(): void {
    this.#closed = true;
    for (const member of [...this.#members]) this.#remove(member, "closed");
    this.#disarmSweep();
  }

  // Expiry is also checked on traffic; the timer covers quiet rooms, so an
  // expiry is announced at most a quarter of the TTL (or sweepMs) late.
  #armSweep(ttlMs: number): void {
    const every = Math.max(50, Math.min(this.#sweepMs, Math.floor(ttlMs / 4)));
    if (this.#sweepTimer !== undefined && every >= this.#sweepEvery) return;
    clearInterval(this.#sweepTimer);
    this.#sweepEvery = every;
    this.#sweepTimer = setInterval(() => this.sweep(), every);
  }

  #disarmSweep(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#sweepEvery = Infinity;
  }

  #nick(
    m: Member,
    name: string | undefined,
    decodeError: string | undefined,
    now: number,
  ): Promise<unknown> | undefined {
    if (name === undefined) {
      return this.#reply(m, `error: ${decodeError ?? "usage: /nick NAME"}`);
    }
    const problem = checkName(name);
    if (problem) return this.#reply(m, `error: invalid name: ${problem}`);
    if (name === m.name) return undefined;
    const folded = foldName(name);
    const holder = this.#names.get(folded);
    if (holder !== undefined && holder !== m) return this.#reply(m, "error: name taken");
    if (holder === undefined && this.#others?.hasName(folded)) {
      return this.#reply(m, "error: name taken");
    }
    const old = m.name;
    this.#rename(m, name, folded);
    this.#log.debug("Member renamed", { room: this.#name, member: old, name });
    this.#observer?.renamed(m);
    // Like every announcement, to the others only: the renamed member sees
    // its new name in /who.
    return this.#announce(m, `* ${old} is now ${name}`, now);
  }

  #reply(m: Member, text: string): Promise<unknown> | undefined {
    const bytes = encoder.encode(m.sink.framing === "datagram" ? text : text + "\n");
    return m.sink.deliver(bytes);
  }

  #announce(except: Member | undefined, text: string, now: number): Promise<unknown> | undefined {
    return this.#fanOut(except, EMPTY, encoder.encode(text), now);
  }

  #fanOut(
    except: Member | undefined,
    prefix: Uint8Array,
    body: Uint8Array,
    now: number,
  ): Promise<unknown> | undefined {
    let datagram: Uint8Array | undefined;
    let datagramNewline: Uint8Array | undefined;
    let line: Uint8Array | undefined;
    // The caller waits for the last send only: when a socket's buffer is
    // full every later send waits too, so this is enough to keep sends from
    // piling up. bench/history/chat.md ("--sends"): awaiting each send in turn cost
    // the most CPU per delivery (3-15% more); the last one, the least.
    let last: Promise<void> | undefined;
    let expired: Member[] | undefined;
    for (const member of this.#members) {
      if (member === except) continue;
      if (member.expiresAt <= now) {
        (expired ??= []).push(member);
        continue;
      }
      const framing = member.sink.framing;
      const sent = member.sink.deliver(
        framing === "datagram"
          ? datagram ??= frameDatagram(prefix, body)
          : framing === "line"
          ? line ??= frameLine(prefix, body)
          : datagramNewline ??= frameDatagram(prefix, body, true),
      );
      if (sent !== undefined) last = sent;
    }
    if (expired) { for (const member of expired) this.#remove(member, "timeout"); }
    return last;
  }

  #remove(m: Member, reason: LeaveReason): void {
    if (!m.present) return;
    m.present = false;
    this.#members.delete(m);
    this.#names.delete(m.folded);
    if (this.#members.size === 0) this.#disarmSweep();
    if (reason !== "closed") {
      const suffix = reason === "left" ? "" : ` (${reason})`;
      if (reason === "too slow") {
        const count = this.#slowLog.hit(performance.now());
        if (count > 0) {
          this.#log.info("Member dropped: its send queue overflowed", {
            room: this.#name,
            member: m.name,
            count,
          });
        }
      } else {
        this.#log.debug("Member left", { room: this.#name, member: m.name, reason });
      }
      this.#announce(undefined, `* ${m.name} left${suffix}`, this.#now());
      this.#observer?.left(m, reason);
    }
    m.sink.removed(reason);
  }
}
