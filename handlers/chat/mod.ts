/**
 * The chat relay: remembers members and forwards each message to every other
 * member as `[name] text`. UDP (a member is a source address) or TCP (a
 * member is a connection, line based). Listeners with the same `room` share
 * one room through the supervisor's shared map (`chat:room:<name>`, with the
 * bus when there is one); a room lives while any listener uses it, so a
 * reload keeps its members. With `bus`, the room spans every daemon naming
 * it on that NATS server (see room_bus.ts).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type BusOptions, readBusOptions } from "./bus_options.ts";
import type { RoomBus } from "./room_bus.ts";
import { ChatRoom, formatRate, type MemberLimits } from "./room.ts";
import { serveChatConnection } from "./tcp.ts";
import { ChatDatagramPort } from "./udp.ts";
import { formatHostPort } from "../../lib/address.ts";
import { defineService, type ListenerContext, type Service } from "../../lib/service.ts";
import { formatDuration, type Rate } from "../../lib/units.ts";

/** Options of a chat listener. */
export interface ChatOptions {
  /** The room's name; listeners naming the same room share it. Default: the listener's name. */
  room: string | undefined;
  /** The NATS bus the room is shared on, with `room`. */
  bus: BusOptions | undefined;
  /** A member silent this long is removed, in ms. */
  memberTtlMs: number;
  /** Most members the room takes (newcomers through this listener). */
  maxMembers: number;
  /** Longest message in bytes (after one trailing newline is stripped). */
  maxMessage: number;
  /** Each member's sustained message rate. */
  memberRate: Rate;
  /** Messages a member may send at once. */
  memberBurst: number;
  /** TCP: bytes queued for a member before it is dropped as too slow. */
  memberQueue: number;
  /** UDP: end every datagram sent with `\n` (for people using `nc -u`). */
  appendNewline: boolean;
}

/** The largest `max_message`: `[name] ` plus the message must fit one UDP datagram. */
export const MAX_MESSAGE_LIMIT = 65_000;

const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** What the shared map holds for a room. */
interface RoomEntry {
  room: ChatRoom;
  /** The room's side on the bus, when it has one. */
  bus: RoomBus | undefined;
  /** Open service instances using the room. */
  refs: number;
  /** One per UDP socket, by bound address. */
  ports: Map<string, { port: ChatDatagramPort; refs: number }>;
}

function limitsOf(options: ChatOptions): MemberLimits {
  return {
    maxMessage: options.maxMessage,
    rate: options.memberRate,
    burst: options.memberBurst,
    ttlMs: options.memberTtlMs,
  };
}

// A room on a bus is a different room from a local one of the same name,
// and so is one on another bus or with other credentials (hashed: keys are
// not secret).
function roomKey(name: string, bus: BusOptions | undefined): string {
  if (bus === undefined) return `chat:room:${name}`;
  const login = createHash("sha256").update(JSON.stringify(bus.auth)).digest("hex").slice(0, 16);
  return `chat:room:${name} ${bus.target} ${login}`;
}

// The bus side and its NATS client are loaded when a listener first names a
// bus: a daemon without one never has them in memory.
let busClass: typeof RoomBus | undefined;

function acquireRoom(
  name: string,
  bus: BusOptions | undefined,
  context: ListenerContext,
): [RoomEntry, () => Promise<void>] {
  const key = roomKey(name, bus);
  const held = context.shared.obtain<RoomEntry>(key, () => {
    const room = new ChatRoom({ name, now: context.now, log: context.log });
    return {
      room,
      bus: bus && new busClass!({
        room,
        roomName: name,
        bus,
        links: context.links,
        log: context.log,
        now: context.now,
      }),
      refs: 0,
      ports: new Map(),
    };
  });
  held.refs++;
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    if (--held.refs > 0) return;
    context.shared.forget(key, held);
    // The other daemons hear "bye" while the members are still listed.
    await held.bus?.close();
    held.room.close();
  };
  return [held, release];
}

/** The chat service's entry in the service table. */
export const chatService: Service = defineService<ChatOptions>({
  name: "chat",
  // A room is one set of members in one process: with workers, the supervisor serves chat.
  perProcess: true,
  transports: ["udp", "tcp"],
  defaultPort: 7008,
  embeddedDefault: () => ({ listeners: [{ name: "chat", transport: "udp" }] }),
  // Silent members are removed by member_ttl, with an announcement.
  defaultIdleTimeoutMs: 0,
  parseOptions(reader, transport) {
    const room = reader.string("room");
    if (room !== undefined && !ROOM_NAME.test(room)) {
      reader.problem(
        "room",
        `"${room}" is not a valid room name: use letters, digits, ".", "_" and "-" (at most 64)`,
      );
    }
    const bus = readBusOptions(reader, room);
    if (transport === "udp" && reader.has("member_queue")) {
      reader.problem("member_queue", "has no effect on a udp listener");
    }
    if (transport === "tcp" && reader.boolean("append_newline", false)) {
      reader.problem(
        "append_newline",
        "has no effect on a tcp listener (every line ends with \\n)",
      );
    }
    return {
      room,
      bus,
      memberTtlMs: reader.duration("member_ttl", {
        default: "10m",
        min: 1000,
        max: 7 * 86_400_000,
      }),
      maxMembers: reader.integer("max_members", { default: 100, min: 1, max: 100_000 }),
      maxMessage: reader.size("max_message", { default: 1400, min: 1, max: MAX_MESSAGE_LIMIT }),
      memberRate: reader.rate("member_rate", "20/s"),
      memberBurst: reader.integer("member_burst", { default: 40, min: 1, max: 1_000_000 }),
      memberQueue: reader.size("member_queue", {
        default: "256KiB",
        min: 4096,
        max: 64 * 1024 * 1024,
      }),
      appendNewline: reader.boolean("append_newline", false),
    };
  },
  describe(options) {
    const parts = options.room === undefined ? [] : [`room=${options.room}`];
    if (options.bus !== undefined) parts.push(`bus=${options.bus.target}`);
    if (options.bus?.credsPath !== undefined) parts.push(`bus_creds=${options.bus.credsPath}`);
    parts.push(
      `max_members=${options.maxMembers}`,
      `max_message=${options.maxMessage}`,
      `member_ttl=${formatDuration(options.memberTtlMs)}`,
      `member_rate=${formatRate(options.memberRate)}`,
      `member_burst=${options.memberBurst}`,
    );
    if (options.appendNewline) parts.push("append_newline");
    return parts.join(" ");
  },
  open(options, context) {
    if (options.bus !== undefined && busClass === undefined) {
      return import("./room_bus.ts").then(({ RoomBus }) => {
        busClass = RoomBus;
        return chatService.open(options, context);
      });
    }
    const [entry, release] = acquireRoom(options.room ?? context.name, options.bus, context);
    const limits = limitsOf(options);
    if (context.transport === "tcp") {
      const connection = {
        room: entry.room,
        limits,
        maxMembers: options.maxMembers,
        maxQueue: options.memberQueue,
      };
      return {
        stream: (conn, connectionContext) =>
          serveChatConnection(conn, connectionContext, connection),
        close: release,
        status: () => ({ members: entry.room.size }),
      };
    }
    // A reload keeps the socket and opens a new instance before closing the
    // old one: the socket's members carry over, with the new limits.
    const socketKey = formatHostPort(context.addr.hostname, context.addr.port);
    const settings = {
      send: context.send,
      limits,
      maxMembers: options.maxMembers,
      appendNewline: options.appendNewline,
    };
    let slot = entry.ports.get(socketKey);
    if (slot === undefined) {
      const port = new ChatDatagramPort({ room: entry.room, log: context.log, ...settings });
      slot = { port, refs: 0 };
      entry.ports.set(socketKey, slot);
    } else {
      slot.port.reconfigure(settings);
    }
    slot.refs++;
    const held = slot;
    let closed = false;
    return {
      datagram: (data, from) => held.port.handle(data, from) as Promise<void> | undefined,
      status: () => ({ members: entry.room.size }),
      close: () => {
        if (closed) return Promise.resolve();
        closed = true;
        if (--held.refs === 0) {
          held.port.removeAll();
          if (entry.ports.get(socketKey) === held) entry.ports.delete(socketKey);
        }
        return release();
      },
    };
  },
});
