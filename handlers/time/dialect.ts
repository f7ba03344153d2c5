/**
 * What both time format dialects (strftime and tokens) share: the shape of a
 * compiled format and the C locale's month and weekday names. A leaf, so the
 * dialects depend on it and not on each other or on the dispatcher.
 *
 * @module
 */

import type { TimeFields } from "../../lib/zoned_time.ts";

/** A format string parsed once, ready to format many instants. */
export interface CompiledTimeFormat {
  /**
   * Formats an instant's fields.
   * @param fields the instant in the listener's zone
   * @returns the text
   */
  format(fields: TimeFields): string;
  /** Whether the output changes within a second (it shows milliseconds). */
  readonly usesMilliseconds: boolean;
  /** An upper bound of the output's length in UTF-8 bytes, for years 1 to 9999. */
  readonly maxBytes: number;
}

/** Full English weekday names, Sunday first (C locale). */
export const WEEKDAY_NAMES: readonly string[] = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];

/** Full English month names, January first (C locale). */
export const MONTH_NAMES: readonly string[] = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
