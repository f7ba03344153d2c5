/**
 * What the daemons sharing a chat room say to each other on its bus subject:
 * one NATS message per event, a JSON header line and, for a chat message,
 * the message's bytes untouched after it.
 *
 * ```
 * envelope = header "\n" [body]
 * header   = {"t":type,"d":daemon,"s":seq, …fields of the type}
 * ```
 *
 * `d` names the sending daemon's link to the room (fresh for each start),
 * `s` counts that link's envelopes from 1; a receiver drops an `s` it has
 * already seen, so nothing is relayed twice. Types: `msg` (a member's
 * message: member id `m`, name `n`, body), `join` (`m`, `n`, joined at `j`,
 * name claimed at `c`, both ms since the epoch), `leave` (`m`, reason `r`),
 * `nick` (`m`, new name `n`, claimed at `c`); these three carry the sender's
 * membership version `v` after the change. `hello` (a daemon is (back) on
 * the bus: host label `h`; everyone answers with a roster), `roster` (the
 * sender's members `ms` as `[id, name, joined, claimed]`, in parts `p` of
 * `P` for roster `r`, as of membership version `v`), `beat` (a heartbeat
 * with the membership version `v` and member count `c`), `sync` (asks daemon
 * `to` for its roster) and `bye` (the daemon leaves with all its members).
 * Unknown types are ignored, so a newer daemon can add some.
 *
 * @module
 */

/** Why a member left, as carried on the bus. */
export type BusLeaveReason = "left" | "timeout" | "too slow";

/** A member as listed in a roster: `[id, name, joinedAt, claimedAt]`. */
export type RosterEntry = [id: number, name: string, joinedAt: number, claimedAt: number];

/** One envelope's header, by type. */
export type BusEvent =
  | { t: "msg"; m: number; n: string }
  | { t: "join"; m: number; n: string; j: number; c: number; v: number }
  | { t: "leave"; m: number; r: BusLeaveReason; v: number }
  | { t: "nick"; m: number; n: string; c: number; v: number }
  | { t: "hello"; h: string }
  | { t: "roster"; r: number; p: number; P: number; v: number; ms: RosterEntry[] }
  | { t: "beat"; v: number; c: number }
  | { t: "sync"; to: string }
  | { t: "bye" };

/** Who sent an envelope and its place in that sender's sequence. */
export interface BusOrigin {
  /** The sending daemon's link id. */
  d: string;
  /** The envelope's sequence number (from 1). */
  s: number;
}

/** A decoded envelope. */
export type BusEnvelope = BusEvent & BusOrigin;

/** The largest message body relayed from the bus (the largest `max_message`). */
export const MAX_BUS_BODY = 65_000;

const LF = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const REASONS: ReadonlySet<string> = new Set(["left", "timeout", "too slow"]);

/**
 * Encodes an envelope.
 *
 * @example
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "./bus_wire.ts";
 * const bytes = encodeEnvelope(
 *   { t: "msg", d: "a1", s: 7, m: 3, n: "ana" },
 *   new Uint8Array([0xff, 0x0a]),
 * );
 * const [header, body] = decodeEnvelope(bytes)!;
 * if (header.t !== "msg" || header.n !== "ana" || body[0] !== 0xff || body.length !== 2) {
 *   throw new Error("round trip failed");
 * }
 * ```
 *
 * @param header the header
 * @param body a message's bytes (only for `msg`)
 * @returns a fresh array: the header line, then the body
 */
export function encodeEnvelope(header: BusEnvelope, body?: Uint8Array): Uint8Array {
  const head = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(head.length + 1 + (body?.length ?? 0));
  out.set(head);
  out[head.length] = LF;
  if (body) out.set(body, head.length + 1);
  return out;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 256;
}

function isRosterEntry(value: unknown): value is RosterEntry {
  return Array.isArray(value) && value.length === 4 && isCount(value[0]) && isName(value[1]) &&
    isTime(value[2]) && isTime(value[3]);
}

function valid(h: Record<string, unknown>): boolean {
  switch (h.t) {
    case "msg":
      return isCount(h.m) && isName(h.n);
    case "join":
      return isCount(h.m) && isName(h.n) && isTime(h.j) && isTime(h.c) && isCount(h.v);
    case "leave":
      return isCount(h.m) && typeof h.r === "string" && REASONS.has(h.r) && isCount(h.v);
    case "nick":
      return isCount(h.m) && isName(h.n) && isTime(h.c) && isCount(h.v);
    case "hello":
      return typeof h.h === "string";
    case "roster":
      return isCount(h.r) && isCount(h.p) && isCount(h.P) && h.p < h.P && isCount(h.v) &&
        Array.isArray(h.ms) && h.ms.every(isRosterEntry);
    case "beat":
      return isCount(h.v) && isCount(h.c);
    case "sync":
      return typeof h.to === "string";
    case "bye":
      return true;
    default:
      return false;
  }
}

/**
 * Decodes an envelope from the bus. Anything malformed, of an unknown type,
 * or with a body over {@linkcode MAX_BUS_BODY} is refused.
 * @param bytes the NATS message's data
 * @returns the header and a view of the body (empty when there is none), or undefined
 */
export function decodeEnvelope(bytes: Uint8Array): [BusEnvelope, Uint8Array] | undefined {
  const end = bytes.indexOf(LF);
  if (end < 0) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(0, end)));
  } catch {
    return undefined;
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return undefined;
  const h = header as Record<string, unknown>;
  if (typeof h.d !== "string" || h.d === "" || !isCount(h.s) || !valid(h)) return undefined;
  const body = bytes.subarray(end + 1);
  if (body.length > 0 && h.t !== "msg") return undefined;
  if (body.length > MAX_BUS_BODY) return undefined;
  return [h as unknown as BusEnvelope, body];
}
