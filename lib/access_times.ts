/**
 * `access_times` on TCP listeners (xinetd's attribute): windows of the day
 * written `HH:MM-HH:MM`, both ends inclusive to the minute, in the daemon's
 * time zone (`TZ`, else the system zone). A window whose end is before its
 * start wraps past midnight. Outside every window a new connection is closed
 * at once; connections already open are kept.
 *
 * @module
 */

import type { OptionReader } from "./option_reader.ts";
import type { Transport } from "./service.ts";
import { systemTimeZone, ZonedClock } from "./zoned_time.ts";

/** One window: minutes of the day (0–1439), both inclusive. */
export interface TimeWindow {
  /** First minute inside the window. */
  start: number;
  /** Last minute inside the window (before `start` when it wraps midnight). */
  end: number;
}

const WINDOW = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/;

/**
 * Parses one window such as `08:00-18:00` or `22:30-06:00`.
 *
 * @example
 * ```ts
 * import { parseTimeWindow, windowContains } from "./access_times.ts";
 * const night = parseTimeWindow("22:00-06:00");
 * if (!windowContains(night, 23 * 60) || !windowContains(night, 6 * 60)) throw new Error();
 * if (windowContains(night, 6 * 60 + 1)) throw new Error("06:01 is outside");
 * ```
 *
 * @param text the window
 * @returns its first and last minute
 * @throws {SyntaxError} when it is not `HH:MM-HH:MM` with hours 0–23 and minutes 0–59
 */
export function parseTimeWindow(text: string): TimeWindow {
  const match = WINDOW.exec(text);
  const numbers = match?.slice(1).map(Number);
  if (!numbers || numbers[0]! > 23 || numbers[2]! > 23 || numbers[1]! > 59 || numbers[3]! > 59) {
    throw new SyntaxError(
      `"${text}" is not a window of the day: write "HH:MM-HH:MM" (00:00 to 23:59), ` +
        `e.g. "08:00-18:00"`,
    );
  }
  return { start: numbers[0]! * 60 + numbers[1]!, end: numbers[2]! * 60 + numbers[3]! };
}

/**
 * Whether a minute of the day is inside a window (ends inclusive; a window
 * with `end < start` wraps past midnight).
 * @param window the window
 * @param minute minutes since local midnight, 0–1439
 * @returns true when inside
 */
export function windowContains(window: TimeWindow, minute: number): boolean {
  return window.start <= window.end
    ? minute >= window.start && minute <= window.end
    : minute >= window.start || minute <= window.end;
}

/** Options for {@linkcode AccessTimes}. */
export interface AccessTimesOptions {
  /** The zone windows are read in. @default {systemTimeZone()} */
  zone?: string;
  /** The wall clock, ms since the Unix epoch (tests inject one). @default {Date.now} */
  now?: () => number;
}

/** The windows of one listener, checked against a wall clock in one zone. */
export class AccessTimes {
  #windows: TimeWindow[];
  #clock: ZonedClock;
  #now: () => number;

  /**
   * @param windows the `access_times` values (already validated)
   * @param options zone and clock
   * @throws {SyntaxError} for a value that is not a window
   */
  constructor(windows: readonly string[], options: AccessTimesOptions = {}) {
    this.#windows = windows.map(parseTimeWindow);
    this.#clock = new ZonedClock(options.zone ?? systemTimeZone());
    this.#now = options.now ?? Date.now;
  }

  /** The zone the windows are read in. */
  get zone(): string {
    return this.#clock.zone;
  }

  /**
   * Whether a connection may start now.
   * @returns true when the current local minute is inside a window
   */
  allows(): boolean {
    return this.allowsAt(this.#now());
  }

  /**
   * Whether a connection may start at an instant.
   * @param epochMilliseconds the instant
   * @returns true when its local minute is inside a window
   */
  allowsAt(epochMilliseconds: number): boolean {
    const { hour, minute } = this.#clock.fieldsAt(epochMilliseconds);
    const local = hour * 60 + minute;
    return this.#windows.some((window) => windowContains(window, local));
  }
}

/**
 * Reads a listener's `access_times` (TCP only; at least one window).
 * @param reader the listener's option reader (problems go there)
 * @param transport the listener's transport
 * @returns the windows as written, or undefined when the key is absent
 */
export function readAccessTimes(
  reader: OptionReader,
  transport: Transport | undefined,
): string[] | undefined {
  if (!reader.has("access_times")) return undefined;
  const before = reader.problemCount;
  const windows = reader.stringArray("access_times", {
    check: (item) => {
      try {
        parseTimeWindow(item);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  if (transport === "udp") {
    reader.problem("access_times", "has no effect on a udp listener");
  } else if (reader.problemCount === before && windows.length === 0) {
    reader.problem(
      "access_times",
      "must list at least one window (leave it out to accept connections at any time)",
    );
  }
  return windows;
}
