/**
 * The calendar fields of an instant in one time zone, as the time formatters
 * need them. All calendar and time-zone arithmetic is Temporal's; only the
 * zone abbreviation comes from the TZif data (see `zone_abbreviations.ts`).
 *
 * @module
 */

import { closest, distance } from "fastest-levenshtein";
import { type LoadZoneOptions, ZoneAbbreviations } from "./zone_abbreviations.ts";

/** An instant broken down in a time zone (ISO calendar). */
export interface TimeFields {
  /** Milliseconds since the Unix epoch. */
  epochMilliseconds: number;
  /** Whole seconds since the Unix epoch (floored). */
  epochSeconds: number;
  /** Year, e.g. 2026. */
  year: number;
  /** Month, 1–12. */
  month: number;
  /** Day of the month, 1–31. */
  day: number;
  /** Hour, 0–23. */
  hour: number;
  /** Minute, 0–59. */
  minute: number;
  /** Second, 0–59. */
  second: number;
  /** Millisecond, 0–999. */
  millisecond: number;
  /** ISO day of the week: 1 = Monday … 7 = Sunday. */
  dayOfWeek: number;
  /** Day of the year, 1–366. */
  dayOfYear: number;
  /** ISO 8601 week number, 1–53. */
  weekOfYear: number;
  /** The year the ISO week belongs to. */
  yearOfWeek: number;
  /** Offset from UTC, in seconds east. */
  offsetSeconds: number;
  /** The zone abbreviation glibc prints for `%Z`, e.g. `CET`. */
  abbreviation: string;
}

/**
 * Checks a time-zone name and returns the spelling Temporal uses.
 * @param name an IANA name such as `Europe/Berlin` (links like `US/Eastern` too)
 * @returns the zone's identifier
 * @throws {RangeError} when the name is not a known zone (with a suggestion)
 */
export function resolveTimeZone(name: string): string {
  // Temporal also takes fixed offsets ("+05:30"); the config promises IANA names.
  if (/^[+\-\u2212]/.test(name) || name.trim() === "") {
    throw new RangeError(`"${name}" is not an IANA time zone name such as "Europe/Berlin"`);
  }
  try {
    return new Temporal.ZonedDateTime(0n, name).timeZoneId;
  } catch {
    const known = Intl.supportedValuesOf("timeZone");
    const guess = closest(name, known);
    const near = distance(name.toLowerCase(), guess.toLowerCase()) <= Math.max(2, guess.length / 3);
    throw new RangeError(
      `unknown time zone "${name}"${near ? ` (did you mean "${guess}"?)` : ""}`,
    );
  }
}

/**
 * The system's time zone, as Temporal sees it (`$TZ`, else /etc/localtime).
 * @returns the zone's identifier
 */
export function systemTimeZone(): string {
  return Temporal.Now.timeZoneId();
}

/** Breaks instants down in one time zone, remembering the last one. */
export class ZonedClock {
  #zone: string;
  #names: ZoneAbbreviations;
  #last: TimeFields | undefined;

  /**
   * @param zone a zone identifier accepted by Temporal (see {@linkcode resolveTimeZone})
   * @param options where the TZif files for `%Z` names are
   */
  constructor(zone: string, options: LoadZoneOptions = {}) {
    this.#zone = zone;
    this.#names = ZoneAbbreviations.load(zone, options);
  }

  /** The zone's identifier. */
  get zone(): string {
    return this.#zone;
  }

  /** Whether zone abbreviations come from TZif data (else a fallback). */
  get abbreviationsFromTzif(): boolean {
    return this.#names.fromTzif;
  }

  /**
   * The fields of an instant in this zone (the last result is reused when
   * the instant repeats, as it does within one second at second resolution).
   * @param epochMilliseconds the instant
   * @returns its fields
   */
  fieldsAt(epochMilliseconds: number): TimeFields {
    const last = this.#last;
    if (last !== undefined && last.epochMilliseconds === epochMilliseconds) return last;
    const zoned = Temporal.Instant.fromEpochMilliseconds(epochMilliseconds)
      .toZonedDateTimeISO(this.#zone);
    const epochSeconds = Math.floor(epochMilliseconds / 1000);
    const offsetSeconds = Math.trunc(zoned.offsetNanoseconds / 1e9);
    const fields: TimeFields = {
      epochMilliseconds,
      epochSeconds,
      year: zoned.year,
      month: zoned.month,
      day: zoned.day,
      hour: zoned.hour,
      minute: zoned.minute,
      second: zoned.second,
      millisecond: zoned.millisecond,
      dayOfWeek: zoned.dayOfWeek,
      dayOfYear: zoned.dayOfYear,
      weekOfYear: zoned.weekOfYear!,
      yearOfWeek: zoned.yearOfWeek!,
      offsetSeconds,
      abbreviation: this.#names.at(epochSeconds, offsetSeconds),
    };
    this.#last = fields;
    return fields;
  }
}
