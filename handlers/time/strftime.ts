/**
 * strftime with C-locale output, matching what Python's `time.strftime`
 * prints on Linux (glibc): `%X` = `%H:%M:%S`, `%x` = `%m/%d/%y`,
 * `%c` = `%a %b %e %H:%M:%S %Y`, `%Z` the zone abbreviation, `%z` `+hhmm`.
 * glibc's flags `_ - 0 ^ #` and its `E`/`O` modifiers are understood; field
 * widths (`%10d`) are not, because glibc's rules for them differ between
 * versions. Unlike glibc, an unknown directive or a lone `%` is an error, not
 * copied through.
 *
 * @module
 */

import { type CompiledTimeFormat, MONTH_NAMES, WEEKDAY_NAMES } from "./dialect.ts";
import type { TimeFields } from "../../lib/zoned_time.ts";

type Piece = (fields: TimeFields) => string;

/** How `^` and `#` change a text directive's case (glibc's rules). */
type CaseRule = "name" | "ampm" | "lower" | "zone" | "none";

type Spec =
  | {
    kind: "number";
    /** Minimum digits when padding. */
    digits: number;
    /** Pads with spaces by default (`%e`, `%k`, `%l`). */
    space?: boolean;
    /** Always prints a sign (`%z`). */
    sign?: boolean;
    /** Longest output in characters, for years 1 to 9999. */
    max: number;
    value: (f: TimeFields) => number;
  }
  | { kind: "text"; max: number; rule: CaseRule; value: (f: TimeFields) => string }
  | { kind: "composite"; format: string }
  | { kind: "literal"; text: string };

// Sunday = 0, as C's tm_wday.
function weekdayIndex(f: TimeFields): number {
  return f.dayOfWeek % 7;
}

const SPECS: Record<string, Spec> = {
  a: {
    kind: "text",
    max: 3,
    rule: "name",
    value: (f) => WEEKDAY_NAMES[weekdayIndex(f)]!.slice(0, 3),
  },
  A: { kind: "text", max: 9, rule: "name", value: (f) => WEEKDAY_NAMES[weekdayIndex(f)]! },
  b: { kind: "text", max: 3, rule: "name", value: (f) => MONTH_NAMES[f.month - 1]!.slice(0, 3) },
  h: { kind: "text", max: 3, rule: "name", value: (f) => MONTH_NAMES[f.month - 1]!.slice(0, 3) },
  B: { kind: "text", max: 9, rule: "name", value: (f) => MONTH_NAMES[f.month - 1]! },
  c: { kind: "composite", format: "%a %b %e %H:%M:%S %Y" },
  C: { kind: "number", digits: 1, max: 2, value: (f) => Math.floor(f.year / 100) },
  d: { kind: "number", digits: 2, max: 2, value: (f) => f.day },
  D: { kind: "composite", format: "%m/%d/%y" },
  e: { kind: "number", digits: 2, space: true, max: 2, value: (f) => f.day },
  F: { kind: "composite", format: "%Y-%m-%d" },
  G: { kind: "number", digits: 1, max: 4, value: (f) => f.yearOfWeek },
  g: { kind: "number", digits: 2, max: 2, value: (f) => mod100(f.yearOfWeek) },
  H: { kind: "number", digits: 2, max: 2, value: (f) => f.hour },
  I: { kind: "number", digits: 2, max: 2, value: (f) => f.hour % 12 || 12 },
  j: { kind: "number", digits: 3, max: 3, value: (f) => f.dayOfYear },
  k: { kind: "number", digits: 2, space: true, max: 2, value: (f) => f.hour },
  l: { kind: "number", digits: 2, space: true, max: 2, value: (f) => f.hour % 12 || 12 },
  m: { kind: "number", digits: 2, max: 2, value: (f) => f.month },
  M: { kind: "number", digits: 2, max: 2, value: (f) => f.minute },
  n: { kind: "literal", text: "\n" },
  p: { kind: "text", max: 2, rule: "ampm", value: (f) => f.hour < 12 ? "AM" : "PM" },
  P: { kind: "text", max: 2, rule: "lower", value: (f) => f.hour < 12 ? "am" : "pm" },
  r: { kind: "composite", format: "%I:%M:%S %p" },
  R: { kind: "composite", format: "%H:%M" },
  s: { kind: "number", digits: 1, max: 13, value: (f) => f.epochSeconds },
  S: { kind: "number", digits: 2, max: 2, value: (f) => f.second },
  t: { kind: "literal", text: "\t" },
  T: { kind: "composite", format: "%H:%M:%S" },
  u: { kind: "number", digits: 1, max: 1, value: (f) => f.dayOfWeek },
  U: {
    kind: "number",
    digits: 2,
    max: 2,
    value: (f) => Math.floor((f.dayOfYear - 1 + 7 - weekdayIndex(f)) / 7),
  },
  V: { kind: "number", digits: 2, max: 2, value: (f) => f.weekOfYear },
  w: { kind: "number", digits: 1, max: 1, value: weekdayIndex },
  W: {
    kind: "number",
    digits: 2,
    max: 2,
    value: (f) => Math.floor((f.dayOfYear - 1 + 7 - (f.dayOfWeek - 1)) / 7),
  },
  x: { kind: "composite", format: "%m/%d/%y" },
  X: { kind: "composite", format: "%H:%M:%S" },
  y: { kind: "number", digits: 2, max: 2, value: (f) => mod100(f.year) },
  Y: { kind: "number", digits: 1, max: 4, value: (f) => f.year },
  z: {
    kind: "number",
    digits: 4,
    sign: true,
    max: 5,
    value: (f) => {
      const abs = Math.abs(f.offsetSeconds);
      const hhmm = Math.floor(abs / 3600) * 100 + Math.floor(abs / 60) % 60;
      return f.offsetSeconds < 0 ? -hhmm : hhmm;
    },
  },
  // tz database abbreviations have at most 6 characters; the numeric
  // fallback with seconds (+053045) has 7.
  Z: { kind: "text", max: 7, rule: "zone", value: (f) => f.abbreviation },
  "%": { kind: "literal", text: "%" },
};

// The conversions glibc accepts after the E and O modifiers (glibc 2.36,
// checked against Python's time.strftime); in the C locale they change nothing.
const WITH_E = new Set("cnprstuxyzCPRTXYZ%");
const WITH_O = new Set("bdeghjklmnprstuwyzBCGHIMPRSTUVWZ%");

function mod100(n: number): number {
  return ((n % 100) + 100) % 100;
}

/** Flags of one directive. */
interface Flags {
  /** `-` no padding, `_` spaces, `0` zeros, undefined the directive's own. */
  pad?: "-" | "_" | "0";
  /** `^`: upper-case the result. */
  upper: boolean;
  /** `#`: swap the case as glibc does (names upper, `%p` and `%Z` lower). */
  swap: boolean;
}

function numberPiece(spec: Extract<Spec, { kind: "number" }>, flags: Flags): Piece {
  const padChar = flags.pad === "-"
    ? ""
    : flags.pad === "_"
    ? " "
    : flags.pad === "0"
    ? "0"
    : spec.space
    ? " "
    : "0";
  const { digits, value, sign } = spec;
  return (f) => {
    const n = value(f);
    let text = String(Math.abs(n));
    if (padChar !== "" && text.length < digits) text = padChar.repeat(digits - text.length) + text;
    return n < 0 ? "-" + text : sign ? "+" + text : text;
  };
}

function textPiece(spec: Extract<Spec, { kind: "text" }>, flags: Flags): Piece {
  const { value, rule } = spec;
  let change: "upper" | "lower" | undefined;
  if (rule === "lower") change = "lower";
  else if (flags.swap && (rule === "ampm" || rule === "zone")) change = "lower";
  else if (flags.upper || (flags.swap && rule === "name")) change = "upper";
  if (change === "upper") return (f) => value(f).toUpperCase();
  if (change === "lower") return (f) => value(f).toLowerCase();
  return value;
}

interface Compiled {
  pieces: (string | Piece)[];
  maxBytes: number;
}

const encoder = new TextEncoder();

function quote(directive: string): string {
  return JSON.stringify(directive);
}

function compileParts(format: string): Compiled {
  const pieces: (string | Piece)[] = [];
  let maxBytes = 0;
  let literal = "";
  const flushLiteral = (): void => {
    if (literal === "") return;
    pieces.push(literal);
    maxBytes += encoder.encode(literal).length;
    literal = "";
  };
  let i = 0;
  while (i < format.length) {
    const percent = format.indexOf("%", i);
    if (percent < 0) {
      literal += format.slice(i);
      break;
    }
    literal += format.slice(i, percent);
    i = percent + 1;
    const flags: Flags = { upper: false, swap: false };
    for (; i < format.length && "_-0^#".includes(format[i]!); i++) {
      const c = format[i]!;
      if (c === "^") flags.upper = true;
      else if (c === "#") flags.swap = true;
      else flags.pad = c as Flags["pad"];
    }
    if (i < format.length && format[i]! >= "1" && format[i]! <= "9") {
      while (i < format.length && format[i]! >= "0" && format[i]! <= "9") i++;
      const end = i < format.length ? i + codePointLength(format, i) : i;
      throw new SyntaxError(
        `field widths such as ${quote(format.slice(percent, end))} are not supported`,
      );
    }
    let modifier = "";
    if (format[i] === "E" || format[i] === "O") modifier = format[i++]!;
    if (i >= format.length) {
      throw new SyntaxError(
        percent === format.length - 1
          ? 'format ends with a lone "%" (write "%%" for a percent sign)'
          : `format ends inside the directive ${quote(format.slice(percent))}`,
      );
    }
    const end = i + codePointLength(format, i);
    const conversion = format.slice(i, end);
    const spec = Object.hasOwn(SPECS, conversion) ? SPECS[conversion] : undefined;
    const allowed = modifier === "" || (modifier === "E" ? WITH_E : WITH_O).has(conversion);
    if (spec === undefined || !allowed) {
      throw new SyntaxError(`unknown directive ${quote(format.slice(percent, end))}`);
    }
    i = end;
    switch (spec.kind) {
      case "literal":
        literal += spec.text;
        break;
      case "number":
        flushLiteral();
        pieces.push(numberPiece(spec, flags));
        maxBytes += spec.max;
        break;
      case "text":
        flushLiteral();
        pieces.push(textPiece(spec, flags));
        maxBytes += spec.max;
        break;
      case "composite": {
        flushLiteral();
        const inner = compileParts(spec.format);
        const run = join(inner.pieces);
        pieces.push(flags.upper ? (f) => run(f).toUpperCase() : run);
        maxBytes += inner.maxBytes;
        break;
      }
    }
  }
  flushLiteral();
  return { pieces, maxBytes };
}

function codePointLength(text: string, index: number): number {
  return text.codePointAt(index)! > 0xffff ? 2 : 1;
}

function join(pieces: (string | Piece)[]): Piece {
  if (pieces.length === 1 && typeof pieces[0] === "function") return pieces[0];
  return (f) => {
    let out = "";
    for (const piece of pieces) out += typeof piece === "string" ? piece : piece(f);
    return out;
  };
}

/**
 * Compiles a strftime format.
 *
 * @example
 * ```ts
 * import { compileStrftime } from "./strftime.ts";
 * import { ZonedClock } from "../../lib/zoned_time.ts";
 * const fields = new ZonedClock("Europe/Berlin").fieldsAt(Date.UTC(2026, 6, 1, 12));
 * const text = compileStrftime("%c %Z %z").format(fields);
 * if (text !== "Wed Jul  1 14:00:00 2026 CEST +0200") throw new Error(text);
 * ```
 *
 * @param format the format, e.g. `%Y-%m-%d %H:%M:%S`
 * @returns the compiled format
 * @throws {SyntaxError} for an unknown directive, a lone or trailing `%`, or a field width
 */
export function compileStrftime(format: string): CompiledTimeFormat {
  const { pieces, maxBytes } = compileParts(format);
  const run = pieces.length === 0 ? () => "" : join(pieces);
  return { format: run, usesMilliseconds: false, maxBytes };
}

/**
 * Formats one instant with a strftime format (compiles every call; cache
 * {@linkcode compileStrftime}'s result on hot paths).
 * @param format the format
 * @param fields the instant's fields
 * @returns the text
 * @throws {SyntaxError} when the format is invalid
 */
export function strftime(format: string, fields: TimeFields): string {
  return compileStrftime(format).format(fields);
}
