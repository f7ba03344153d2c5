/**
 * Parsers for the unit-carrying values of the config file: durations
 * (`500ms`, `10s`, `5m`), byte sizes (`64KiB`, `16MiB`) and rates (`20/s`).
 *
 * @module
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const RATE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `500ms`, `10s`, `1.5m`, `2h` or a compound
 * `1m30s`. A bare `0` means zero.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./units.ts";
 * if (parseDuration("1m30s") !== 90_000) throw new Error("wrong");
 * ```
 *
 * @param text the duration text
 * @returns milliseconds
 * @throws {SyntaxError} when the text is not a duration
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let end = 0;
  for (const match of trimmed.matchAll(part)) {
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    end = match.index + match[0].length;
  }
  if (end === 0 || end !== trimmed.length) {
    throw new SyntaxError(
      `Cannot parse duration "${text}": expected a number with a unit (ms, s, m, h, d), e.g. "10s"`,
    );
  }
  return Math.round(total);
}

/**
 * Parses a byte size such as `65536`, `64KiB`, `16MiB`, `1GiB` or `10MB`
 * (binary units are powers of 1024, decimal ones powers of 1000).
 *
 * @example
 * ```ts
 * import { parseSize } from "./units.ts";
 * if (parseSize("64KiB") !== 65536) throw new Error("wrong");
 * ```
 *
 * @param text the size text
 * @returns bytes (an integer)
 * @throws {SyntaxError} when the text is not a size
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? SIZE_UNITS[(match[2] || "b").toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new SyntaxError(
      `Cannot parse size "${text}": expected bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB), e.g. "64KiB"`,
    );
  }
  return Math.floor(Number(match[1]) * unit);
}

/** A rate limit: `count` events per `perMs` milliseconds. */
export interface Rate {
  /** Events allowed per period. */
  count: number;
  /** Length of the period in milliseconds. */
  perMs: number;
}

/**
 * Parses a rate such as `20/s`, `600/m` or `5/10s`.
 *
 * @example
 * ```ts
 * import { parseRate } from "./units.ts";
 * const rate = parseRate("20/s");
 * if (rate.count !== 20 || rate.perMs !== 1000) throw new Error("wrong");
 * ```
 *
 * @param text the rate text
 * @returns the count and period
 * @throws {SyntaxError} when the text is not a rate
 */
export function parseRate(text: string): Rate {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\S+)\s*$/.exec(text);
  if (match) {
    const count = Number(match[1]);
    const per = match[2]!;
    const perMs = RATE_UNITS[per] ?? (/^\d/.test(per) ? safeDuration(per) : undefined);
    if (perMs !== undefined && perMs > 0 && count > 0) return { count, perMs };
  }
  throw new SyntaxError(
    `Cannot parse rate "${text}": expected a count per period, e.g. "20/s" or "600/m"`,
  );
}

function safeDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/**
 * Formats milliseconds compactly for humans (`1500` → `1.5s`, `600000` → `10m`).
 * @param ms milliseconds
 * @returns a duration text that {@linkcode parseDuration} reads back
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]]) {
    if (ms >= (size as number) && ms % ((size as number) / 10) === 0) {
      return `${ms / (size as number)}${unit}`;
    }
  }
  return `${ms}ms`;
}

/**
 * Formats a byte count with binary units (`65536` → `64KiB`, `1500` → `1.5KiB`).
 * @param bytes a non-negative byte count
 * @returns a short human-readable size
 */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  if (index === 0) return `${bytes}B`;
  const text = value >= 100 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1);
  return `${text.replace(/\.0$/, "")}${units[index]}`;
}

/**
 * Formats a rate for messages: `20/s`, `600/m`, `5/10s`.
 *
 * @example
 * ```ts
 * import { formatRate } from "./units.ts";
 * if (formatRate({ count: 600, perMs: 60_000 }) !== "600/m") throw new Error("wrong");
 * ```
 *
 * @param rate the rate
 * @returns its text, which {@linkcode parseRate} reads back
 */
export function formatRate(rate: Rate): string {
  const unit = rate.perMs === 1000
    ? "s"
    : rate.perMs === 60_000
    ? "m"
    : rate.perMs === 3_600_000
    ? "h"
    : formatDuration(rate.perMs);
  return `${rate.count}/${unit}`;
}
