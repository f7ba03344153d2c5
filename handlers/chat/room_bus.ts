/**
 * Shares one daemon's chat room with the other daemons that name the same
 * room on the same NATS bus. Each daemon relays its own members' messages
 * and membership changes on the room's subject and delivers what the
 * others publish to its own members; so every member of the room gets each
 * message once, in its sender's order (one subject, one connection per
 * daemon, and a per-daemon sequence number that drops repeats).
 *
 * Membership converges by rosters: a daemon that (re)gains the link says
 * `hello` and everyone publishes its roster; heartbeats every second carry
 * each daemon's membership version, and a daemon that missed a change asks
 * for a roster. A daemon silent for {@linkcode PEER_TIMEOUT_MS} (killed, or
 * cut off) is dropped and its members leave (`left (timeout)`); one that
 * stops cleanly says `bye` and its members leave at once. While this
 * daemon's own link is down, what it knows of the others is kept as it was
 * (they may well still be there) and reconciled when the link returns.
 *
 * Two members who claim one name at once on two daemons (each daemon checks
 * only what it has heard) are told apart afterwards: the later claim (ties:
 * the larger link id) is renamed `name#2` on its own daemon, visibly.
 *
 * @module
 */

import { hostname } from "node:os";
import { BusLink } from "./bus_link.ts";
import type { BusOptions } from "./bus_options.ts";
import {
  type BusEnvelope,
  type BusEvent,
  decodeEnvelope,
  encodeEnvelope,
  type RosterEntry,
} from "./bus_wire.ts";
import { type Peer, type RemoteMember, RemoteRoster } from "./remote_roster.ts";
import type { AnnouncedReason, ChatMember, ChatRoom, RoomObserver } from "./room.ts";
import { encodePrefix } from "./text.ts";
import type { Link, LinkBoard } from "../../lib/link_board.ts";
import type { Logger } from "../../lib/log.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";

/** How often a daemon says it is alive, in ms. */
export const HEARTBEAT_MS = 1000;
/** A daemon not heard for this long has left the room with its members, in ms. */
export const PEER_TIMEOUT_MS = 3500;
/** Members per roster message (a roster of 100,000 members is 200 messages of ~20 KB). */
const ROSTER_PART = 500;
/** A daemon is asked for its roster at most this often, in ms. */
const SYNC_EVERY_MS = 2000;
/**
 * Bytes from the bus waiting while datagram members' sends finish; beyond
 * this the bus is faster than the members can take and messages are dropped.
 */
const MAX_BACKLOG = 16 * 1024 * 1024;

/** The text members are told when the link goes down. */
export const LINK_DOWN = "* link to the room is down";
/** The text members are told when the link is back. */
export const LINK_BACK = "* link to the room is back";

/** Options for {@linkcode RoomBus}. */
export interface RoomBusOptions {
  /** The local room. */
  room: ChatRoom;
  /** The room's name (its subject is `switchboard.chat.<room>`). */
  roomName: string;
  /** Where the bus is. */
  bus: BusOptions;
  /** The supervisor's link board. */
  links: LinkBoard;
  /** For peers coming and going and bad envelopes. */
  log: Logger;
  /** Monotonic clock in ms (the supervisor's). */
  now: () => number;
}

/**
 * The subject a room's daemons share.
 * @param room the room's name (letters, digits, `.`, `_`, `-`)
 * @returns `switchboard.chat.<room>`
 */
export function roomSubject(room: string): string {
  return `switchboard.chat.${room}`;
}

/** One daemon's side of a room shared over the bus. */
export class RoomBus implements RoomObserver {
  readonly #room: ChatRoom;
  readonly #roomName: string;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #id = crypto.randomUUID().slice(0, 13);
  readonly #host = `${hostname()}/${Deno.pid}`;
  readonly #roster = new RemoteRoster();
  readonly #link: Link;
  readonly #bus: BusLink;
  readonly #badLog = new LogThrottle(10_000);
  readonly #dropLog = new LogThrottle(10_000);
  #backlog: Uint8Array[] = [];
  #backlogBytes = 0;
  #draining = false;
  #seq = 0;
  #version = 0;
  #toldDown = false;
  #rosterTimer?: ReturnType<typeof setTimeout>;
  #beat: ReturnType<typeof setInterval>;
  #closed = false;

  /**
   * Shares `room` on the bus; the link is dialled in the background.
   * @param options room, bus, board, logger and clock
   */
  constructor(options: RoomBusOptions) {
    this.#room = options.room;
    this.#roomName = options.roomName;
    this.#log = options.log;
    this.#now = options.now;
    const what = `room "${options.roomName}"`;
    this.#link = options.links.add(`chat ${what}`, options.bus.target);
    this.#room.share(this, this.#roster);
    this.#bus = new BusLink({
      bus: options.bus,
      subject: roomSubject(options.roomName),
      clientName: `switchboard chat ${options.roomName} ${this.#host}`,
      what,
      log: options.log,
      link: this.#link,
      onMessage: (data) => this.#take(data),
      onUp: () => this.#up(),
      onDown: () => this.#down(),
    });
    this.#beat = setInterval(() => this.#tick(), HEARTBEAT_MS);
  }

  /** This daemon's id on the bus (for tests and logs). */
  get id(): string {
    return this.#id;
  }

  /** Whether the link to the bus is up. */
  get up(): boolean {
    return this.#bus.up;
  }

  /** The other daemons heard, with their member counts. */
  get peers(): { id: string; host: string; members: number }[] {
    return [...this.#roster.peers].map((p) => ({
      id: p.id,
      host: p.host,
      members: p.members.size,
    }));
  }

  /** Says goodbye (the other daemons drop this one's members) and closes the link. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#beat);
    clearTimeout(this.#rosterTimer);
    this.#send({ t: "bye" });
    await this.#bus.close();
    this.#link.remove();
  }

  // RoomObserver: local changes go out on the bus.

  joined(member: ChatMember): void {
    this.#version++;
    this.#send({
      t: "join",
      m: member.id,
      n: member.name,
      j: member.joinedAt,
      c: member.claimedAt,
      v: this.#version,
    });
  }

  left(member: ChatMember, reason: AnnouncedReason): void {
    this.#version++;
    this.#send({ t: "leave", m: member.id, r: reason, v: this.#version });
  }

  renamed(member: ChatMember): void {
    this.#version++;
    this.#send({ t: "nick", m: member.id, n: member.name, c: member.claimedAt, v: this.#version });
  }

  message(member: ChatMember, body: Uint8Array): void {
    if (!this.#bus.up) return;
    this.#bus.publish(
      encodeEnvelope({ t: "msg", m: member.id, n: member.name, d: this.#id, s: ++this.#seq }, body),
    );
  }

  #send(event: BusEvent): void {
    if (!this.#bus.up) return;
    this.#bus.publish(encodeEnvelope({ ...event, d: this.#id, s: ++this.#seq } as BusEnvelope));
  }

  #up(): void {
    // Whatever was heard before the link went down gets a fresh chance to
    // speak up before it is dropped.
    const now = this.#now();
    for (const peer of this.#roster.peers) peer.lastHeard = now;
    this.#send({ t: "hello", h: this.#host });
    this.#publishRoster();
    if (this.#toldDown) {
      this.#toldDown = false;
      this.#room.notice(LINK_BACK);
    }
  }

  #down(): void {
    if (this.#closed || this.#toldDown) return;
    this.#toldDown = true;
    this.#room.notice(LINK_DOWN);
  }

  #tick(): void {
    if (!this.#bus.up) return;
    this.#send({ t: "beat", v: this.#version, c: this.#room.size });
    const now = this.#now();
    for (const peer of [...this.#roster.peers]) {
      if (now - peer.lastHeard <= PEER_TIMEOUT_MS) continue;
      const gone = this.#roster.removePeer(peer);
      this.#log.info("Chat room: a daemon went silent; its members left", {
        room: this.#roomName,
        daemon: peer.host,
        members: gone.length,
      });
      for (const member of gone) this.#room.notice(`* ${member.name} left (timeout)`);
    }
  }

  #scheduleRoster(): void {
    // Several requests at once (a hello heard by many) get one roster.
    if (this.#rosterTimer !== undefined) return;
    this.#rosterTimer = setTimeout(() => {
      this.#rosterTimer = undefined;
      this.#publishRoster();
    }, 20);
  }

  #publishRoster(): void {
    if (!this.#bus.up) return;
    const entries: RosterEntry[] = [];
    for (const member of this.#room.localMembers) {
      entries.push([member.id, member.name, member.joinedAt, member.claimedAt]);
    }
    const parts = Math.max(1, Math.ceil(entries.length / ROSTER_PART));
    const id = this.#seq + 1;
    for (let p = 0; p < parts; p++) {
      const ms = entries.slice(p * ROSTER_PART, (p + 1) * ROSTER_PART);
      this.#send({ t: "roster", r: id, p, P: parts, v: this.#version, ms });
    }
  }

  #askRoster(peer: Peer, now: number): void {
    if (now - peer.syncAskedAt < SYNC_EVERY_MS) return;
    peer.syncAskedAt = now;
    this.#send({ t: "sync", to: peer.id });
  }

  #bad(why: string): void {
    const count = this.#badLog.hit(performance.now());
    if (count > 0) {
      this.#log.warn(`Chat room: ignored a message from the bus: ${why}`, {
        room: this.#roomName,
        count,
      });
    }
  }

  // What comes from the bus is handled in order; while a fan-out's datagram
  // sends are still in flight the rest waits (as a local sender's next
  // datagram does), so a burst from the bus neither piles up sends on the
  // socket nor lets them overtake each other.
  #take(data: Uint8Array): void {
    if (!this.#draining) {
      const sending = this.#receive(data);
      if (sending !== undefined) {
        this.#draining = true;
        void this.#drain(sending);
      }
      return;
    }
    if (this.#backlogBytes + data.length > MAX_BACKLOG) {
      const count = this.#dropLog.hit(performance.now());
      if (count > 0) {
        this.#log.warn("Chat room: members cannot take what the bus brings; messages dropped", {
          room: this.#roomName,
          count,
        });
      }
      return;
    }
    this.#backlog.push(data.slice());
    this.#backlogBytes += data.length;
  }

  async #drain(sending: Promise<unknown>): Promise<void> {
    await sending;
    while (this.#backlog.length > 0) {
      const data = this.#backlog.shift()!;
      this.#backlogBytes -= data.length;
      const next = this.#receive(data);
      if (next !== undefined) await next;
    }
    this.#draining = false;
  }

  #receive(data: Uint8Array): Promise<unknown> | undefined {
    if (this.#closed) return undefined;
    const decoded = decodeEnvelope(data);
    if (decoded === undefined) {
      this.#bad("not a switchboard chat envelope");
      return undefined;
    }
    const [h, body] = decoded;
    if (h.d === this.#id) return undefined;
    const now = this.#now();
    let peer = this.#roster.peer(h.d);
    if (peer === undefined) {
      // A bye or a member leaving from a daemon never heard needs nothing.
      if (h.t === "bye" || h.t === "leave") return undefined;
      peer = this.#roster.addPeer(h.d, now);
      if (h.t !== "hello" && h.t !== "roster") this.#askRoster(peer, now);
    }
    if (h.s <= peer.lastSeq) return undefined; // already delivered
    peer.lastSeq = h.s;
    peer.lastHeard = now;
    switch (h.t) {
      case "msg": {
        const member = peer.members.get(h.m);
        const prefix = member !== undefined && member.name === h.n
          ? member.prefix
          : encodePrefix(h.n);
        if (member === undefined) this.#askRoster(peer, now);
        return this.#room.relay(prefix, body);
      }
      case "join": {
        peer.version = h.v;
        const member = this.#roster.add(peer, [h.m, h.n, h.j, h.c]);
        const sending = this.#room.notice(`* ${member.name} joined`);
        this.#settleName(member, peer);
        return sending;
      }
      case "leave": {
        peer.version = h.v;
        const member = this.#roster.remove(peer, h.m);
        if (member === undefined) return undefined;
        const suffix = h.r === "left" ? "" : ` (${h.r})`;
        return this.#room.notice(`* ${member.name} left${suffix}`);
      }
      case "nick": {
        peer.version = h.v;
        const member = peer.members.get(h.m);
        if (member === undefined) {
          this.#askRoster(peer, now);
          return undefined;
        }
        const old = this.#roster.rename(member, h.n, h.c);
        const sending = this.#room.notice(`* ${old} is now ${member.name}`);
        this.#settleName(member, peer);
        return sending;
      }
      case "hello":
        peer.host = h.h;
        this.#log.info("Chat room: a daemon is on the bus", {
          room: this.#roomName,
          daemon: h.h,
        });
        this.#scheduleRoster();
        return undefined;
      case "roster": {
        const whole = this.#roster.takePart(peer, h);
        if (whole === "broken") this.#askRoster(peer, now);
        if (whole === "broken" || whole === undefined) return undefined;
        peer.version = whole.version;
        const changes = this.#roster.replace(peer, whole.entries);
        let sending: Promise<unknown> | undefined;
        const notice = (text: string): void => {
          sending = this.#room.notice(text) ?? sending;
        };
        for (const member of changes.left) notice(`* ${member.name} left`);
        for (const [member, old] of changes.renamed) notice(`* ${old} is now ${member.name}`);
        for (const member of changes.joined) notice(`* ${member.name} joined`);
        for (const [member] of changes.renamed) this.#settleName(member, peer);
        for (const member of changes.joined) this.#settleName(member, peer);
        return sending;
      }
      case "beat":
        if (h.v !== peer.version) this.#askRoster(peer, now);
        return undefined;
      case "sync":
        if (h.to === this.#id) this.#scheduleRoster();
        return undefined;
      case "bye": {
        const gone = this.#roster.removePeer(peer);
        this.#log.info("Chat room: a daemon left the bus", {
          room: this.#roomName,
          daemon: peer.host,
          members: gone.length,
        });
        let sending: Promise<unknown> | undefined;
        for (const member of gone) sending = this.#room.notice(`* ${member.name} left`) ?? sending;
        return sending;
      }
    }
  }

  /** A remote member took a name a local one has: the later claim yields. */
  #settleName(remote: RemoteMember, peer: Peer): void {
    const local = this.#room.localByName(remote.folded);
    if (local === undefined) return;
    const localLater = local.claimedAt > remote.claimedAt ||
      (local.claimedAt === remote.claimedAt && this.#id > peer.id);
    if (localLater) this.#room.yieldName(local);
  }
}
