/**
 * What one daemon knows of a shared room's members on the other daemons:
 * the peers (daemons) it has heard on the bus, each with its members, when
 * it was last heard, the last sequence number taken from it and the
 * membership version it is known at. Pure bookkeeping: no I/O, no timers.
 *
 * @module
 */

import type { RosterEntry } from "./bus_wire.ts";
import { encodePrefix, foldName } from "./text.ts";

/** A member of the room on another daemon. */
export interface RemoteMember {
  /** Its id on its daemon. */
  readonly id: number;
  /** Its current name. */
  name: string;
  /** `name` folded for comparisons. */
  folded: string;
  /** The encoded `[name] ` its messages start with. */
  prefix: Uint8Array;
  /** When it joined, ms since the epoch (orders `/who`). */
  readonly joinedAt: number;
  /** When it claimed its current name (the earlier claim keeps a contested name). */
  claimedAt: number;
}

/** A roster being received in parts. */
interface PartialRoster {
  id: number;
  parts: number;
  next: number;
  version: number;
  entries: RosterEntry[];
}

/** Another daemon in the room. */
export interface Peer {
  /** Its link id. */
  readonly id: string;
  /** Its host label (from its hello), for logs. */
  host: string;
  /** Its members by id. */
  readonly members: Map<number, RemoteMember>;
  /** The last sequence number taken from it. */
  lastSeq: number;
  /** Its membership version as we know it (-1: unknown). */
  version: number;
  /** When it was last heard (monotonic ms). */
  lastHeard: number;
  /** When a roster was last asked of it (monotonic ms). */
  syncAskedAt: number;
  /** A roster arriving in parts. */
  partial?: PartialRoster;
}

/** What a roster changed, for the announcements. */
export interface RosterChanges {
  /** Members that were not known before. */
  joined: RemoteMember[];
  /** Members that are gone. */
  left: RemoteMember[];
  /** Members whose name changed, with the old name. */
  renamed: [RemoteMember, string][];
}

/** The room's members on other daemons. */
export class RemoteRoster {
  #peers = new Map<string, Peer>();
  #names = new Map<string, number>();
  #size = 0;

  /** How many members the other daemons have. */
  get size(): number {
    return this.#size;
  }

  /** The peers heard so far. */
  get peers(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  /**
   * Whether a member of another daemon has this name.
   * @param folded the name, folded with `foldName`
   * @returns true when one has
   */
  hasName(folded: string): boolean {
    return this.#names.has(folded);
  }

  /**
   * Every remote member (for `/who`).
   * @returns the members, grouped by peer
   */
  *members(): IterableIterator<RemoteMember> {
    for (const peer of this.#peers.values()) yield* peer.members.values();
  }

  /**
   * The peer with this id, if it is known.
   * @param id a link id
   * @returns the peer
   */
  peer(id: string): Peer | undefined {
    return this.#peers.get(id);
  }

  /**
   * Adds a peer heard for the first time.
   * @param id its link id
   * @param now the monotonic time
   * @returns the new peer (no members, version unknown)
   */
  addPeer(id: string, now: number): Peer {
    const peer: Peer = {
      id,
      host: id,
      members: new Map(),
      lastSeq: 0,
      version: -1,
      lastHeard: now,
      syncAskedAt: -Infinity,
    };
    this.#peers.set(id, peer);
    return peer;
  }

  /**
   * Forgets a peer and its members.
   * @param peer the peer
   * @returns its members, for the announcements
   */
  removePeer(peer: Peer): RemoteMember[] {
    const gone = [...peer.members.values()];
    for (const member of gone) this.#unindex(member);
    peer.members.clear();
    this.#peers.delete(peer.id);
    return gone;
  }

  /**
   * Adds (or replaces) a member of a peer.
   * @param peer the peer
   * @param entry the member's id, name, join and claim times
   * @returns the member
   */
  add(peer: Peer, entry: RosterEntry): RemoteMember {
    const [id, name, joinedAt, claimedAt] = entry;
    const old = peer.members.get(id);
    if (old) this.remove(peer, id);
    const member: RemoteMember = {
      id,
      name,
      folded: foldName(name),
      prefix: encodePrefix(name),
      joinedAt,
      claimedAt,
    };
    peer.members.set(id, member);
    this.#index(member);
    return member;
  }

  /**
   * Removes a member of a peer.
   * @param peer the peer
   * @param id the member's id
   * @returns the member, if it was known
   */
  remove(peer: Peer, id: number): RemoteMember | undefined {
    const member = peer.members.get(id);
    if (member === undefined) return undefined;
    peer.members.delete(id);
    this.#unindex(member);
    return member;
  }

  /**
   * Renames a member of a peer.
   * @param member the member
   * @param name the new name
   * @param claimedAt when it was claimed
   * @returns the old name
   */
  rename(member: RemoteMember, name: string, claimedAt: number): string {
    const old = member.name;
    this.#unindex(member);
    member.name = name;
    member.folded = foldName(name);
    member.prefix = encodePrefix(name);
    member.claimedAt = claimedAt;
    this.#index(member);
    return old;
  }

  /**
   * Makes a peer's members exactly those of a roster.
   * @param peer the peer
   * @param entries its full roster
   * @returns who joined, left or was renamed compared with what was known
   */
  replace(peer: Peer, entries: readonly RosterEntry[]): RosterChanges {
    const changes: RosterChanges = { joined: [], left: [], renamed: [] };
    const seen = new Set<number>();
    for (const entry of entries) {
      const [id, name, , claimedAt] = entry;
      seen.add(id);
      const known = peer.members.get(id);
      if (known === undefined) {
        changes.joined.push(this.add(peer, entry));
      } else if (known.name !== name) {
        changes.renamed.push([known, this.rename(known, name, claimedAt)]);
      }
    }
    for (const member of [...peer.members.values()]) {
      if (!seen.has(member.id)) {
        this.remove(peer, member.id);
        changes.left.push(member);
      }
    }
    return changes;
  }

  /**
   * Takes one part of a roster; returns the whole roster once its last part is in.
   * @param peer the sender
   * @param part the part's roster id, index, count, version and entries
   * @returns the full roster and its version when complete; `"broken"` when a part was missed
   */
  takePart(
    peer: Peer,
    part: { r: number; p: number; P: number; v: number; ms: RosterEntry[] },
  ): { version: number; entries: RosterEntry[] } | "broken" | undefined {
    if (part.p === 0) {
      peer.partial = { id: part.r, parts: part.P, next: 0, version: part.v, entries: [] };
    }
    const partial = peer.partial;
    if (
      partial === undefined || partial.id !== part.r || partial.next !== part.p ||
      partial.parts !== part.P
    ) {
      peer.partial = undefined;
      return "broken";
    }
    partial.entries.push(...part.ms);
    partial.next++;
    if (partial.next < partial.parts) return undefined;
    peer.partial = undefined;
    return { version: partial.version, entries: partial.entries };
  }

  #index(member: RemoteMember): void {
    this.#names.set(member.folded, (this.#names.get(member.folded) ?? 0) + 1);
    this.#size++;
  }

  #unindex(member: RemoteMember): void {
    const count = this.#names.get(member.folded) ?? 0;
    if (count <= 1) this.#names.delete(member.folded);
    else this.#names.set(member.folded, count - 1);
    this.#size--;
  }
}
