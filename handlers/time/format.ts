/**
 * The rule that picks the dialect: a format containing `%` is strftime
 * (C/Python directives), any other is Moment/Day.js tokens.
 *
 * @module
 */

import { compileStrftime } from "./strftime.ts";
import { compileTokens } from "./tokens.ts";
import type { CompiledTimeFormat } from "./dialect.ts";

/**
 * Compiles a format in the dialect its text asks for.
 *
 * @example
 * ```ts
 * import { compileTimeFormat } from "./format.ts";
 * import { ZonedClock } from "../../lib/zoned_time.ts";
 * const fields = new ZonedClock("UTC").fieldsAt(Date.UTC(2026, 10, 22, 10, 30));
 * const strftime = compileTimeFormat("%Y年%m月%d日 %X").format(fields);
 * const tokens = compileTimeFormat("YYYY-MM-DD[T]HH:mm").format(fields);
 * if (strftime !== "2026年11月22日 10:30:00" || tokens !== "2026-11-22T10:30") throw new Error();
 * ```
 *
 * @param format the format text (already decoded, newline stripped)
 * @returns the compiled format
 * @throws {SyntaxError} with a message fit for an `error: ` reply
 */
export function compileTimeFormat(format: string): CompiledTimeFormat {
  return format.includes("%") ? compileStrftime(format) : compileTokens(format);
}
