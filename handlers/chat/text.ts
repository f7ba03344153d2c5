/**
 * The chat relay's text rules, free of any transport: which lines are
 * commands, what a valid name is, how a datagram's trailing newline is
 * stripped, and how a relayed message is framed for datagram and line
 * (TCP) members. Message bodies stay bytes: they are never decoded.
 *
 * @module
 */

/** The longest name `/nick` accepts, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 32;

const LF = 0x0a;
const CR = 0x0d;
const SLASH = 0x2f;
const SPACE = 0x20;
const TAB = 0x09;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Drops one trailing `\n` or `\r\n` (what `nc` adds to a line).
 *
 * @example
 * ```ts
 * import { stripNewline } from "./text.ts";
 * const text = new TextDecoder().decode(stripNewline(new TextEncoder().encode("hi\r\n\n")));
 * if (text !== "hi\r\n") throw new Error(JSON.stringify(text));
 * ```
 *
 * @param bytes a datagram or a line
 * @returns a view without the newline (the same bytes when there is none)
 */
export function stripNewline(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n === 0 || bytes[n - 1] !== LF) return bytes;
  return bytes.subarray(0, n >= 2 && bytes[n - 2] === CR ? n - 2 : n - 1);
}

/** A chat command, or a message to relay. */
export type ChatCommand =
  | { kind: "message"; body: Uint8Array }
  | { kind: "nick"; name: string | undefined; error?: string }
  | { kind: "who" }
  | { kind: "leave" }
  | { kind: "unknown"; command: string };

const NICK = encoder.encode("/nick");
const WHO = encoder.encode("/who");
const LEAVE = encoder.encode("/leave");

function startsWithWord(body: Uint8Array, word: Uint8Array): boolean {
  if (body.length < word.length) return false;
  for (let i = 0; i < word.length; i++) if (body[i] !== word[i]) return false;
  return body.length === word.length || body[word.length] === SPACE ||
    body[word.length] === TAB;
}

function onlyBlanksAfter(body: Uint8Array, start: number): boolean {
  for (let i = start; i < body.length; i++) {
    if (body[i] !== SPACE && body[i] !== TAB) return false;
  }
  return true;
}

/**
 * Reads a line as a command or a message. Commands are `/nick NAME`, `/who`
 * and `/leave`; a line starting with `//` is a message whose first `/` is
 * dropped (how to say something that starts with a slash); any other line
 * starting with `/` is an unknown command.
 * @param body the line, newline already stripped
 * @returns what the line asks for; a message's body is a view of `body`
 */
export function parseCommand(body: Uint8Array): ChatCommand {
  if (body[0] !== SLASH) return { kind: "message", body };
  if (body[1] === SLASH) return { kind: "message", body: body.subarray(1) };
  if (startsWithWord(body, WHO) && onlyBlanksAfter(body, WHO.length)) return { kind: "who" };
  if (startsWithWord(body, LEAVE) && onlyBlanksAfter(body, LEAVE.length)) {
    return { kind: "leave" };
  }
  if (startsWithWord(body, NICK)) {
    let start = NICK.length;
    let end = body.length;
    while (start < end && (body[start] === SPACE || body[start] === TAB)) start++;
    while (end > start && (body[end - 1] === SPACE || body[end - 1] === TAB)) end--;
    if (start === end) return { kind: "nick", name: undefined };
    try {
      return { kind: "nick", name: strictDecoder.decode(body.subarray(start, end)) };
    } catch {
      return { kind: "nick", name: undefined, error: "a name must be valid UTF-8" };
    }
  }
  let end = 0;
  while (end < body.length && end < 32 && body[end] !== SPACE && body[end] !== TAB) end++;
  return { kind: "unknown", command: new TextDecoder().decode(body.subarray(0, end)) };
}

// Whitespace, ":" (reserved: default names are addresses) and every "other"
// code point: controls, format characters (bidi overrides, zero-width
// joiners), surrogates, private use and unassigned ones.
const BAD_NAME_CHAR = /[\s:\p{C}]/u;

/**
 * Checks a name asked for with `/nick`.
 *
 * @example
 * ```ts
 * import { checkName } from "./text.ts";
 * if (checkName("ana_ñ") !== undefined) throw new Error("valid name refused");
 * if (checkName("a b") === undefined) throw new Error("space accepted");
 * ```
 *
 * @param name the requested name
 * @returns why the name is not acceptable, or undefined when it is
 */
export function checkName(name: string): string | undefined {
  if (name.length === 0) return "a name must not be empty";
  if (encoder.encode(name).length > MAX_NAME_BYTES) {
    return `a name must be at most ${MAX_NAME_BYTES} bytes`;
  }
  const bad = BAD_NAME_CHAR.exec(name);
  if (bad) {
    const char = bad[0];
    if (char === ":") return 'a name must not contain ":" (addresses are reserved)';
    if (/\s/u.test(char)) return "a name must not contain spaces";
    return "a name must not contain control or invisible characters";
  }
  return undefined;
}

/**
 * The key names are compared by: `Ana`, `ana` and `ａｎａ` are one name.
 * @param name a name
 * @returns its case- and width-folded form
 */
export function foldName(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/**
 * Encodes the prefix every message of a member starts with.
 * @param name the member's name
 * @returns the bytes of `[name] `
 */
export function encodePrefix(name: string): Uint8Array {
  return encoder.encode(`[${name}] `);
}

/**
 * Frames a relayed message as one datagram: `[name] text`, with no newline
 * unless asked for (`append_newline`, for people reading with `nc -u`).
 * @param prefix the sender's encoded `[name] `
 * @param body the message bytes, untouched
 * @param newline whether to end the datagram with `\n` @default {false}
 * @returns a fresh array holding both
 */
export function frameDatagram(
  prefix: Uint8Array,
  body: Uint8Array,
  newline: boolean = false,
): Uint8Array {
  const out = new Uint8Array(prefix.length + body.length + (newline ? 1 : 0));
  out.set(prefix);
  out.set(body, prefix.length);
  if (newline) out[out.length - 1] = LF;
  return out;
}

/** What starts each continuation line of a multi-line message sent to a line member. */
const CONTINUATION = encoder.encode("  ");

/**
 * Frames a relayed message for a line member: `[name] text\n`. A message
 * from a datagram member may hold newlines; each further line is indented by
 * two spaces, so no line can pass for a server line or another member's
 * message, and the framed message grows by at most two bytes per line.
 *
 * @example
 * ```ts
 * import { encodePrefix, frameLine } from "./text.ts";
 * const enc = new TextEncoder();
 * const out = frameLine(encodePrefix("ana"), enc.encode("hi\n* bob left"));
 * if (new TextDecoder().decode(out) !== "[ana] hi\n  * bob left\n") throw new Error();
 * ```
 *
 * @param prefix the sender's encoded `[name] ` (empty for a server line)
 * @param body the message bytes, untouched but for the indentation
 * @returns a fresh array ending with `\n`
 */
export function frameLine(prefix: Uint8Array, body: Uint8Array): Uint8Array {
  let newlines = 0;
  for (let i = body.indexOf(LF); i >= 0; i = body.indexOf(LF, i + 1)) newlines++;
  const out = new Uint8Array(prefix.length + body.length + newlines * CONTINUATION.length + 1);
  out.set(prefix);
  let offset = prefix.length;
  if (newlines === 0) {
    out.set(body, offset);
    offset += body.length;
  } else {
    let start = 0;
    for (let i = body.indexOf(LF); i >= 0; i = body.indexOf(LF, start)) {
      out.set(body.subarray(start, i + 1), offset);
      offset += i + 1 - start;
      out.set(CONTINUATION, offset);
      offset += CONTINUATION.length;
      start = i + 1;
    }
    out.set(body.subarray(start), offset);
    offset += body.length - start;
  }
  out[offset] = LF;
  return out;
}

/**
 * Formats the `/who` reply, shortened to fit `maxBytes` when needed:
 * `* members: a, b, c (+5 more)`.
 * @param names the members' names in join order
 * @param maxBytes the longest reply allowed, in UTF-8 bytes (Infinity: no cap)
 * @returns the reply text (no newline)
 */
export function formatMembers(names: readonly string[], maxBytes: number): string {
  const full = `* members: ${names.join(", ")}`;
  if (encoder.encode(full).length <= maxBytes) return full;
  let text = "* members:";
  let bytes = encoder.encode(text).length;
  for (let i = 0; i < names.length; i++) {
    const piece = `${i === 0 ? " " : ", "}${names[i]}`;
    const pieceBytes = encoder.encode(piece).length;
    const left = names.length - i - 1;
    const suffix = left > 0 ? ` (+${left} more)` : "";
    // The previous round made sure "(+N more)" for this name still fits.
    if (bytes + pieceBytes + suffix.length > maxBytes) return `${text} (+${left + 1} more)`;
    text += piece;
    bytes += pieceBytes;
  }
  return text;
}
