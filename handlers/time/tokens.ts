/**
 * Moment/Day.js format tokens (`YYYY-MM-DD HH:mm:ss`, `[literal]`), English
 * names. At each position the longest token wins; every other character is
 * copied as it is (so `T` in `YYYY-MM-DDTHH:mm` stays), and text in square
 * brackets is copied without its brackets. A `[` without a closing `]` is an
 * error; a lone `]` is literal text, as in Moment and Day.js.
 *
 * Tokens: `YYYY YY Q Qo M Mo MM MMM MMMM D Do DD DDD DDDo DDDD d do dd ddd
 * dddd e E W Wo WW GGGG GG H HH h hh k kk m mm s ss S SS SSS A a Z ZZ z X x`.
 * Moment's locale-week tokens (`w`, `gggg`), eras and expanded years are not
 * supported: their letters print as they are.
 *
 * @module
 */

import { type CompiledTimeFormat, MONTH_NAMES, WEEKDAY_NAMES } from "./dialect.ts";
import type { TimeFields } from "../../lib/zoned_time.ts";

type Piece = (fields: TimeFields) => string;

interface Token {
  /** Longest output in characters, for years 1 to 9999. */
  max: number;
  /** Whether it shows milliseconds. */
  ms?: boolean;
  piece: Piece;
}

function pad(n: number, width: number): string {
  const text = String(Math.abs(n)).padStart(width, "0");
  return n < 0 ? "-" + text : text;
}

function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return n + (["th", "st", "nd", "rd"][n % 10] ?? "th");
}

function offset(seconds: number, colon: boolean): string {
  const abs = Math.abs(seconds);
  const hh = pad(Math.floor(abs / 3600), 2);
  const mm = pad(Math.floor(abs / 60) % 60, 2);
  return (seconds < 0 ? "-" : "+") + hh + (colon ? ":" : "") + mm;
}

const hour12 = (f: TimeFields): number => f.hour % 12 || 12;
const weekday = (f: TimeFields): string => WEEKDAY_NAMES[f.dayOfWeek % 7]!;
const month = (f: TimeFields): string => MONTH_NAMES[f.month - 1]!;

const TOKENS: Record<string, Token> = {
  YYYY: { max: 4, piece: (f) => pad(f.year, 4) },
  YY: { max: 2, piece: (f) => pad(((f.year % 100) + 100) % 100, 2) },
  Q: { max: 1, piece: (f) => String(Math.ceil(f.month / 3)) },
  Qo: { max: 3, piece: (f) => ordinal(Math.ceil(f.month / 3)) },
  M: { max: 2, piece: (f) => String(f.month) },
  Mo: { max: 4, piece: (f) => ordinal(f.month) },
  MM: { max: 2, piece: (f) => pad(f.month, 2) },
  MMM: { max: 3, piece: (f) => month(f).slice(0, 3) },
  MMMM: { max: 9, piece: month },
  D: { max: 2, piece: (f) => String(f.day) },
  DD: { max: 2, piece: (f) => pad(f.day, 2) },
  Do: { max: 4, piece: (f) => ordinal(f.day) },
  DDD: { max: 3, piece: (f) => String(f.dayOfYear) },
  DDDo: { max: 5, piece: (f) => ordinal(f.dayOfYear) },
  DDDD: { max: 3, piece: (f) => pad(f.dayOfYear, 3) },
  d: { max: 1, piece: (f) => String(f.dayOfWeek % 7) },
  do: { max: 3, piece: (f) => ordinal(f.dayOfWeek % 7) },
  // Moment's locale weekday; in English it is d (Sunday = 0).
  e: { max: 1, piece: (f) => String(f.dayOfWeek % 7) },
  dd: { max: 2, piece: (f) => weekday(f).slice(0, 2) },
  ddd: { max: 3, piece: (f) => weekday(f).slice(0, 3) },
  dddd: { max: 9, piece: weekday },
  E: { max: 1, piece: (f) => String(f.dayOfWeek) },
  W: { max: 2, piece: (f) => String(f.weekOfYear) },
  Wo: { max: 4, piece: (f) => ordinal(f.weekOfYear) },
  WW: { max: 2, piece: (f) => pad(f.weekOfYear, 2) },
  GGGG: { max: 4, piece: (f) => pad(f.yearOfWeek, 4) },
  GG: { max: 2, piece: (f) => pad(((f.yearOfWeek % 100) + 100) % 100, 2) },
  H: { max: 2, piece: (f) => String(f.hour) },
  HH: { max: 2, piece: (f) => pad(f.hour, 2) },
  h: { max: 2, piece: (f) => String(hour12(f)) },
  hh: { max: 2, piece: (f) => pad(hour12(f), 2) },
  k: { max: 2, piece: (f) => String(f.hour || 24) },
  kk: { max: 2, piece: (f) => pad(f.hour || 24, 2) },
  m: { max: 2, piece: (f) => String(f.minute) },
  mm: { max: 2, piece: (f) => pad(f.minute, 2) },
  s: { max: 2, piece: (f) => String(f.second) },
  ss: { max: 2, piece: (f) => pad(f.second, 2) },
  S: { max: 1, ms: true, piece: (f) => String(Math.floor(f.millisecond / 100)) },
  SS: { max: 2, ms: true, piece: (f) => pad(Math.floor(f.millisecond / 10), 2) },
  SSS: { max: 3, ms: true, piece: (f) => pad(f.millisecond, 3) },
  A: { max: 2, piece: (f) => f.hour < 12 ? "AM" : "PM" },
  a: { max: 2, piece: (f) => f.hour < 12 ? "am" : "pm" },
  Z: { max: 6, piece: (f) => offset(f.offsetSeconds, true) },
  ZZ: { max: 5, piece: (f) => offset(f.offsetSeconds, false) },
  z: { max: 7, piece: (f) => f.abbreviation },
  X: { max: 13, piece: (f) => String(f.epochSeconds) },
  x: { max: 16, ms: true, piece: (f) => String(f.epochMilliseconds) },
};

const LONGEST = Math.max(...Object.keys(TOKENS).map((token) => token.length));

const encoder = new TextEncoder();

/**
 * Compiles a Moment/Day.js token format.
 *
 * @example
 * ```ts
 * import { compileTokens } from "./tokens.ts";
 * import { ZonedClock } from "../../lib/zoned_time.ts";
 * const fields = new ZonedClock("Asia/Kolkata").fieldsAt(Date.UTC(2026, 0, 5, 12, 0, 0, 42));
 * const text = compileTokens("ddd D MMM YYYY, h:mm:ss.SSS A Z [IST]").format(fields);
 * if (text !== "Mon 5 Jan 2026, 5:30:00.042 PM +05:30 IST") throw new Error(text);
 * ```
 *
 * @param format the format, e.g. `YYYY-MM-DD HH:mm:ss`
 * @returns the compiled format
 * @throws {SyntaxError} when a `[` has no closing `]`
 */
export function compileTokens(format: string): CompiledTimeFormat {
  const pieces: (string | Piece)[] = [];
  let literal = "";
  let maxBytes = 0;
  let usesMilliseconds = false;
  let i = 0;
  while (i < format.length) {
    if (format[i] === "[") {
      const close = format.indexOf("]", i + 1);
      if (close < 0) {
        const byte = encoder.encode(format.slice(0, i)).length;
        throw new SyntaxError(`"[" at byte ${byte} has no closing "]"`);
      }
      literal += format.slice(i + 1, close);
      i = close + 1;
      continue;
    }
    let token: Token | undefined;
    let length = Math.min(LONGEST, format.length - i);
    for (; length > 0; length--) {
      const candidate = format.slice(i, i + length);
      if (Object.hasOwn(TOKENS, candidate)) {
        token = TOKENS[candidate];
        break;
      }
    }
    if (token === undefined) {
      literal += format[i];
      i++;
      continue;
    }
    if (literal !== "") {
      pieces.push(literal);
      maxBytes += encoder.encode(literal).length;
      literal = "";
    }
    pieces.push(token.piece);
    maxBytes += token.max;
    usesMilliseconds ||= token.ms === true;
    i += length;
  }
  if (literal !== "") {
    pieces.push(literal);
    maxBytes += encoder.encode(literal).length;
  }
  const format_ = (f: TimeFields): string => {
    let out = "";
    for (const piece of pieces) out += typeof piece === "string" ? piece : piece(f);
    return out;
  };
  return { format: format_, usesMilliseconds, maxBytes };
}
