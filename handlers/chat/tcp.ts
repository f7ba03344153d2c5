/**
 * The stream side of the chat relay: a TCP connection is a member for as
 * long as it is open. Each line it sends (without `\n` or `\r\n`) goes to the
 * room; the room's lines reach it through a bounded send queue, so fan-out
 * never waits for a slow reader: a member whose queue overflows is dropped
 * (`* name left (too slow)`).
 *
 * @module
 */

import { formatHostPort, normalizeHost } from "../../lib/address.ts";
import type { ChatMember, ChatRoom, LeaveReason, MemberLimits, MemberSink } from "./room.ts";
import type { Connection, ConnectionContext } from "../../lib/service.ts";

/** Options for {@linkcode serveChatConnection}. */
export interface ChatConnectionOptions {
  /** The room. */
  room: ChatRoom;
  /** The member's limits (max_message also caps a line). */
  limits: MemberLimits;
  /** The room cap for this newcomer. */
  maxMembers: number;
  /** Bytes queued for the member before it is dropped as too slow. */
  maxQueue: number;
}

const LF = 0x0a;
const CR = 0x0d;
// An idle member holds a small buffer; a member sending in bulk grows it.
const INITIAL_READ = 2048;
const MAX_READ = 16384;
/** Queued lines are written together, up to this many bytes per write. */
const MAX_WRITE = 65536;
const ROOM_FULL = new TextEncoder().encode("error: room full\n");
const STOP = Symbol("stop");

/** Queues a member's lines and writes them in order, without blocking the room. */
class LineSink implements MemberSink {
  readonly framing = "line" as const;
  #conn: Connection;
  #maxQueue: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  #dead = false;
  #room?: ChatRoom;
  #member?: ChatMember;
  #onRemoved: () => void;

  constructor(conn: Connection, maxQueue: number, onRemoved: () => void) {
    this.#conn = conn;
    this.#maxQueue = maxQueue;
    this.#onRemoved = onRemoved;
  }

  attach(room: ChatRoom, member: ChatMember): void {
    this.#room = room;
    this.#member = member;
  }

  deliver(bytes: Uint8Array): undefined {
    if (this.#dead) return undefined;
    if (this.#queued + bytes.length > this.#maxQueue) {
      this.#dead = true;
      this.#queue = [];
      // After the current fan-out: the room is iterating its members now.
      queueMicrotask(() => this.#room!.leave(this.#member!, "too slow"));
      return undefined;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    if (!this.#writing) {
      // Written once the current fan-out and the rest of the sender's read
      // are done: every line of one read goes out in one write (a sender's
      // read of 4 lines costs each member 1 send, not 2).
      this.#writing = true;
      flushSoon(this);
    }
    return undefined;
  }

  removed(_reason: LeaveReason): void {
    this.#dead = true;
    this.#queue = [];
    this.#onRemoved();
  }

  /**
   * Writes the queue now as far as the socket takes it (no promise, no
   * await: `writeNow`); what it does not take is written in the background.
   */
  flushNow(): void {
    const conn = this.#conn;
    while (this.#queue.length > 0 && !this.#dead) {
      const chunk = this.#take();
      const sent = conn.writeNow?.(chunk) ?? 0;
      if (sent < chunk.length) {
        void this.#flush(chunk, sent);
        return;
      }
      this.#queued -= chunk.length;
    }
    this.#writing = false;
  }

  /** Writes the rest of `chunk` (`sent` bytes of it went), then the queue, waiting for the socket. */
  async #flush(chunk: Uint8Array, sent: number): Promise<void> {
    try {
      await this.#conn.writeAll(sent === 0 ? chunk : chunk.subarray(sent));
      this.#queued -= chunk.length;
      while (this.#queue.length > 0 && !this.#dead) {
        const next = this.#take();
        await this.#conn.writeAll(next);
        this.#queued -= next.length;
      }
    } catch {
      // The peer is gone; the read side ends the membership.
      this.#dead = true;
      this.#queue = [];
      this.#room!.leave(this.#member!, "left");
    } finally {
      this.#writing = false;
    }
  }

  /** Takes the queued lines for one write, joined when there are several. */
  #take(): Uint8Array {
    const queue = this.#queue;
    const first = queue[0]!;
    if (queue.length === 1 || first.length >= MAX_WRITE) {
      queue.shift();
      return first;
    }
    let count = 0;
    let total = 0;
    while (count < queue.length && total + queue[count]!.length <= MAX_WRITE) {
      total += queue[count]!.length;
      count++;
    }
    const out = joinLines(queue, count, total);
    queue.splice(0, count);
    return out;
  }
}

// The members with lines to write, flushed together in one microtask after
// the fan-outs that queued them (not one microtask and promise each).
let due: LineSink[] = [];

function flushSoon(sink: LineSink): void {
  if (due.length === 0) queueMicrotask(flushDue);
  due.push(sink);
}

function flushDue(): void {
  const sinks = due;
  due = [];
  for (const sink of sinks) sink.flushNow();
}

// The last join, shared: the room gives every member the same byte arrays,
// so the members flushing after one fan-out join the same lines; the first
// builds the bytes, the others reuse them (they are never changed). Dropped
// once the flushes queued by that fan-out have run.
let lastParts: Uint8Array[] = [];
let lastJoined: Uint8Array | undefined;
const forgetJoin = (): void => {
  lastParts = [];
  lastJoined = undefined;
};

/** The first `count` lines of `queue` (`total` bytes) as one array. */
function joinLines(queue: readonly Uint8Array[], count: number, total: number): Uint8Array {
  if (lastJoined !== undefined && lastParts.length === count && lastJoined.length === total) {
    let same = true;
    for (let i = 0; i < count && same; i++) same = lastParts[i] === queue[i];
    if (same) return lastJoined;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    out.set(queue[i]!, offset);
    offset += queue[i]!.length;
  }
  if (lastJoined === undefined) queueMicrotask(forgetJoin);
  lastParts = queue.slice(0, count);
  lastJoined = out;
  return out;
}

/**
 * Serves one TCP chat member until it leaves, its connection ends, it is
 * dropped, or the listener stops. A line longer than `max_message` is
 * refused (the sender is told) and skipped up to its newline.
 * @param conn the connection
 * @param context signal (the listener stopping) and logger
 * @param options room, limits, cap and queue size
 */
export async function serveChatConnection(
  conn: Connection,
  context: ConnectionContext,
  options: ChatConnectionOptions,
): Promise<void> {
  const { room, limits } = options;
  let stop!: () => void;
  const stopped = new Promise<typeof STOP>((resolve) => {
    stop = () => resolve(STOP);
  });
  const sink = new LineSink(conn, options.maxQueue, () => stop());
  const { hostname, port } = conn.remoteAddr;
  const member = room.join(sink, {
    name: formatHostPort(normalizeHost(hostname), port),
    limits,
    maxMembers: options.maxMembers,
  });
  if (member === undefined) {
    await conn.writeAll(ROOM_FULL).catch(() => {});
    return;
  }
  sink.attach(room, member);
  const onAbort = (): void => stop();
  context.signal.addEventListener("abort", onAbort, { once: true });
  if (context.signal.aborted) stop();
  try {
    await readMemberLines(conn, room, member, {
      maxMessage: limits.maxMessage,
      stopped,
      setLinePending: (pending) => context.setHeaderPending(pending),
    });
  } finally {
    context.signal.removeEventListener("abort", onAbort);
    room.leave(member, "left");
  }
}

interface ReadLinesOptions {
  maxMessage: number;
  stopped: Promise<typeof STOP>;
  /** Told when a line has begun arriving (true) and when none is half-read (false). */
  setLinePending: (pending: boolean) => void;
}

async function readMemberLines(
  conn: Connection,
  room: ChatRoom,
  member: ChatMember,
  options: ReadLinesOptions,
): Promise<void> {
  const { maxMessage, stopped, setLinePending } = options;
  let linePending = false;
  let buffer = new Uint8Array(INITIAL_READ);
  // A line split across reads collects here (made when first needed); one
  // extra byte for a "\r".
  let partial: Uint8Array | undefined;
  let partialLength = 0;
  let discarding = false;
  while (member.present) {
    const reading = conn.read(buffer);
    const n = await Promise.race([reading, stopped]);
    if (n === STOP) {
      // The supervisor closes the connection once we return; that read then fails.
      reading.catch(() => {});
      return;
    }
    if (n === null) {
      // A last line without a newline still counts (`printf hi | nc`).
      if (partial !== undefined && partialLength > 0 && !discarding) {
        let line = partial.subarray(0, partialLength);
        if (line[line.length - 1] === CR) line = line.subarray(0, -1);
        if (line.length <= maxMessage) await room.receive(member, line);
        else room.tooLong(member, line.length);
      }
      return;
    }
    const chunk = buffer.subarray(0, n);
    let pending: Promise<unknown> | undefined;
    let start = 0;
    while (start < n) {
      const newline = chunk.indexOf(LF, start);
      const end = newline < 0 ? n : newline;
      if (discarding) {
        if (newline >= 0) discarding = false;
      } else if (partialLength + end - start > maxMessage + 1) {
        room.tooLong(member, partialLength + end - start);
        partialLength = 0;
        discarding = newline < 0;
      } else if (newline < 0) {
        partial ??= new Uint8Array(maxMessage + 1);
        partial.set(chunk.subarray(start, end), partialLength);
        partialLength += end - start;
      } else {
        let line: Uint8Array;
        if (partial !== undefined && partialLength > 0) {
          partial.set(chunk.subarray(start, end), partialLength);
          line = partial.subarray(0, partialLength + end - start);
          partialLength = 0;
        } else {
          line = chunk.subarray(start, end);
        }
        if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, -1);
        if (line.length > maxMessage) {
          room.tooLong(member, line.length);
        } else {
          pending = room.receive(member, line) ?? pending;
        }
        if (!member.present) return;
      }
      start = end + 1;
    }
    // Datagram members' sends finish before reading on: a fast TCP sender
    // cannot pile up unbounded sends.
    if (pending !== undefined) await pending;
    if ((partialLength > 0 || discarding) !== linePending) {
      linePending = !linePending;
      setLinePending(linePending);
    }
    if (n === buffer.length && buffer.length < MAX_READ) buffer = new Uint8Array(MAX_READ);
  }
}
