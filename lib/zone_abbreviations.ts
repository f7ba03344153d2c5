/**
 * Time-zone abbreviations as glibc prints them for `%Z` ("CET", "EDT",
 * "JST", "+0530"…), read from the TZif file glibc itself reads
 * (`$TZDIR/<zone>`, default `/usr/share/zoneinfo/<zone>`).
 *
 * Why not Intl: its short names come from CLDR, not from the tz database,
 * and for most zones outside the Americas they are `GMT+1` instead of `CET`.
 *
 * This module does no time-zone arithmetic: the caller gives the UTC offset
 * that Temporal computed for the instant, and the TZif data only supplies the
 * name. The name in effect at the instant is the one of the latest
 * transition (a table lookup); after the last transition the POSIX TZ footer
 * names the standard and daylight abbreviations, and the one whose offset
 * equals Temporal's offset is used. When the TZif data disagrees with
 * Temporal (a different tzdata version) or no file is found, the name falls
 * back to Intl's short name when it is alphabetic (`EST`, `UTC`), else to the
 * tz database's numeric style (`+05`, `+0530`).
 *
 * @module
 */

import { join } from "node:path";

/** One local time type of a TZif file. */
export interface LocalTimeType {
  /** Seconds east of UTC. */
  utoff: number;
  /** The abbreviation. */
  abbreviation: string;
}

/** What a TZif file says about names. */
export interface ZoneTable {
  /** Transition times in seconds since the epoch, ascending. */
  transitions: number[];
  /** The type index in effect from each transition on. */
  typeIndexes: number[];
  /** The local time types. */
  types: LocalTimeType[];
  /** The footer's names with their offsets (east of UTC), if any. */
  footer: LocalTimeType[];
}

/** The default directory of compiled zone files (glibc's default). */
export const DEFAULT_ZONEINFO = "/usr/share/zoneinfo";

/**
 * Parses a TZif file (RFC 8536, versions 1 to 4) far enough to name times.
 * @param bytes the file's content
 * @returns the transitions, types and footer names
 * @throws {SyntaxError} when the bytes are not a TZif file
 */
export function parseTzif(bytes: Uint8Array): ZoneTable {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = (at: number) => {
    if (at + 44 > bytes.length || view.getUint32(at) !== 0x545a6966) { // "TZif"
      throw new SyntaxError("Cannot parse TZif data: bad header");
    }
    const counts = [0, 1, 2, 3, 4, 5].map((i) => view.getUint32(at + 20 + 4 * i));
    const [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt] = counts as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return { version: bytes[at + 4]!, isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt };
  };
  const first = header(0);
  const v1Length = first.timecnt * 5 + first.typecnt * 6 + first.charcnt + first.leapcnt * 8 +
    first.isstdcnt + first.isutcnt;
  // Version 2 and later repeat the data with 64-bit times, then a footer.
  const wide = first.version >= 0x32;
  const at = wide ? 44 + v1Length : 0;
  const h = wide ? header(at) : first;
  const timeSize = wide ? 8 : 4;
  let offset = at + 44;
  const need = h.timecnt * (timeSize + 1) + h.typecnt * 6 + h.charcnt;
  if (h.typecnt === 0 || offset + need > bytes.length) {
    throw new SyntaxError("Cannot parse TZif data: truncated");
  }
  const transitions: number[] = [];
  for (let i = 0; i < h.timecnt; i++, offset += timeSize) {
    transitions.push(wide ? Number(view.getBigInt64(offset)) : view.getInt32(offset));
  }
  const typeIndexes = Array.from(bytes.subarray(offset, offset + h.timecnt));
  offset += h.timecnt;
  const raw: { utoff: number; index: number }[] = [];
  for (let i = 0; i < h.typecnt; i++, offset += 6) {
    raw.push({ utoff: view.getInt32(offset), index: bytes[offset + 5]! });
  }
  const chars = bytes.subarray(offset, offset + h.charcnt);
  offset += h.charcnt;
  const latin1 = new TextDecoder("latin1");
  const types = raw.map(({ utoff, index }) => {
    const end = chars.indexOf(0, index);
    return { utoff, abbreviation: latin1.decode(chars.subarray(index, end < 0 ? undefined : end)) };
  });
  if (typeIndexes.some((index) => index >= types.length)) {
    throw new SyntaxError("Cannot parse TZif data: bad type index");
  }
  let footer: LocalTimeType[] = [];
  if (wide) {
    offset += h.leapcnt * 12 + h.isstdcnt + h.isutcnt;
    const rest = latin1.decode(bytes.subarray(offset));
    const match = /^\n([^\n]*)\n/.exec(rest);
    if (match) footer = parsePosixTzNames(match[1]!);
  }
  return { transitions, typeIndexes, types, footer };
}

/**
 * Reads the names and offsets of a POSIX TZ string such as
 * `CET-1CEST,M3.5.0,M10.5.0/3` or `<+1030>-10:30<+11>-11,M10.1.0,M4.1.0`
 * (the rules after the comma are not needed and not read).
 * @param text the TZ string
 * @returns the standard name, then the daylight name if any, with offsets
 *   east of UTC; empty when the text cannot be read
 */
export function parsePosixTzNames(text: string): LocalTimeType[] {
  const pattern =
    /^(?:<([A-Za-z0-9+-]+)>|([A-Za-z]{3,}))([+-]?\d{1,3}(?::\d{1,2}){0,2})(?:(?:<([A-Za-z0-9+-]+)>|([A-Za-z]{3,}))([+-]?\d{1,3}(?::\d{1,2}){0,2})?)?(?:,|$)/;
  const match = pattern.exec(text);
  if (!match) return [];
  const std = { abbreviation: match[1] ?? match[2]!, utoff: 0 - posixOffset(match[3]!) };
  const dstName = match[4] ?? match[5];
  if (dstName === undefined) return [std];
  const dstOffset = match[6] === undefined ? std.utoff + 3600 : 0 - posixOffset(match[6]);
  return [std, { abbreviation: dstName, utoff: dstOffset }];
}

// POSIX offsets count hours west of UTC: "-5:30" is 5½ hours east.
function posixOffset(text: string): number {
  const sign = text.startsWith("-") ? -1 : 1;
  const [h = 0, m = 0, s = 0] = text.replace(/^[+-]/, "").split(":").map(Number);
  return sign * (h * 3600 + m * 60 + s);
}

/**
 * The tz database's name for a zone without an abbreviation: `+05`,
 * `-0330`, `+053045`.
 * @param utoff seconds east of UTC
 * @returns the numeric abbreviation
 */
export function numericAbbreviation(utoff: number): string {
  const sign = utoff < 0 ? "-" : "+";
  const abs = Math.abs(utoff);
  const hours = String(Math.floor(abs / 3600)).padStart(2, "0");
  const minutes = Math.floor(abs / 60) % 60;
  const seconds = abs % 60;
  if (seconds !== 0) {
    return `${sign}${hours}${String(minutes).padStart(2, "0")}${String(seconds).padStart(2, "0")}`;
  }
  return minutes === 0 ? `${sign}${hours}` : `${sign}${hours}${String(minutes).padStart(2, "0")}`;
}

/** Options for {@linkcode ZoneAbbreviations.load}. */
export interface LoadZoneOptions {
  /** Directory of TZif files. @default {$TZDIR or /usr/share/zoneinfo} */
  zoneinfo?: string;
}

/** Names the instants of one time zone. */
export class ZoneAbbreviations {
  #zone: string;
  #table: ZoneTable | undefined;
  #fallback = new Map<number, string>();
  #intl: Intl.DateTimeFormat | undefined;

  /**
   * @param zone the IANA zone name (for the Intl fallback)
   * @param table the parsed TZif data, or undefined when none was found
   */
  constructor(zone: string, table: ZoneTable | undefined) {
    this.#zone = zone;
    this.#table = table;
  }

  /**
   * Loads the TZif file of `zone`; a missing or unreadable file leaves only
   * the fallback (check {@linkcode ZoneAbbreviations.fromTzif}).
   * @param zone an IANA name Temporal accepts
   * @param options where the TZif files are
   * @returns the names of the zone
   */
  static load(zone: string, options: LoadZoneOptions = {}): ZoneAbbreviations {
    const dir = options.zoneinfo ?? envTzdir() ?? DEFAULT_ZONEINFO;
    // Temporal accepts names case-insensitively and keeps links ("US/Eastern");
    // the file may only exist under the canonical spelling. That spelling
    // comes from Intl, asked only when the name as given has no file:
    // Intl.DateTimeFormat loads ICU's locale data, megabytes of idle RSS.
    const candidates = [() => zone, () => canonicalName(zone)];
    for (const candidate of candidates) {
      const name = candidate();
      if (name === undefined || name.includes("..") || name.startsWith("/")) continue;
      try {
        return new ZoneAbbreviations(zone, parseTzif(Deno.readFileSync(join(dir, name))));
      } catch {
        // Try the next spelling, then fall back to Intl.
      }
    }
    return new ZoneAbbreviations(zone, undefined);
  }

  /** Whether the names come from a TZif file (else from the fallback). */
  get fromTzif(): boolean {
    return this.#table !== undefined;
  }

  /**
   * The abbreviation in effect at an instant.
   * @param epochSeconds the instant, in seconds since the epoch
   * @param utoff the zone's offset at that instant (from Temporal), seconds east of UTC
   * @returns the abbreviation, as glibc's `%Z` prints it
   */
  at(epochSeconds: number, utoff: number): string {
    const table = this.#table;
    if (table) {
      const named = inEffect(table, epochSeconds, utoff) ??
        table.footer.find((type) => type.utoff === utoff) ??
        table.types.findLast((type) => type.utoff === utoff);
      if (named) return named.abbreviation;
    }
    return this.#fallbackName(epochSeconds, utoff);
  }

  #fallbackName(epochSeconds: number, utoff: number): string {
    let name = this.#fallback.get(utoff);
    if (name === undefined) {
      this.#intl ??= new Intl.DateTimeFormat("en-US", {
        timeZone: this.#zone,
        timeZoneName: "short",
      });
      const part = this.#intl.formatToParts(epochSeconds * 1000)
        .find((p) => p.type === "timeZoneName")?.value ?? "";
      name = /^[A-Z]{3,5}$/.test(part) && (part !== "GMT" || utoff === 0)
        ? part
        : numericAbbreviation(utoff);
      this.#fallback.set(utoff, name);
    }
    return name;
  }
}

// The type of the latest transition at or before the instant, when its
// offset agrees with Temporal's.
function inEffect(table: ZoneTable, t: number, utoff: number): LocalTimeType | undefined {
  const { transitions, typeIndexes, types, footer } = table;
  let type: LocalTimeType;
  const last = transitions.length - 1;
  if (last < 0 || t < transitions[0]!) {
    type = types[0]!;
  } else if (t >= transitions[last]! && footer.length > 0) {
    return footer.find((candidate) => candidate.utoff === utoff);
  } else {
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (transitions[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    type = types[typeIndexes[lo]!]!;
  }
  return type.utoff === utoff ? type : undefined;
}

function envTzdir(): string | undefined {
  try {
    return Deno.env.get("TZDIR") || undefined;
  } catch {
    return undefined; // no --allow-env: glibc's default
  }
}

function canonicalName(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}
