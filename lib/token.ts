/**
 * Shared secrets of the framed services: read from `token` or `token_file`
 * (which must not be readable by group or others), compared in constant time.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { OptionReader } from "./option_reader.ts";

/**
 * Reads a listener's `token` / `token_file` keys. A token file must be a
 * regular file not readable by group or others (exit 78 otherwise, as ssh
 * does for keys); surrounding whitespace in it is ignored.
 * @param reader the listener's option reader
 * @returns the token, or undefined when neither key is set
 */
export function readToken(reader: OptionReader): string | undefined {
  const inline = reader.string("token");
  const file = reader.path("token_file");
  if (inline !== undefined && file !== undefined) {
    reader.problem("token_file", `give either "token" or "token_file", not both`);
    return undefined;
  }
  if (inline !== undefined) {
    if (inline.trim() === "") reader.problem("token", "must not be empty");
    return inline;
  }
  if (file === undefined) return undefined;
  return readSecretFile(reader, { key: "token_file", file });
}

/**
 * Reads a file holding a secret (a token, bus credentials): it must be a
 * regular file, not readable by group or others (as ssh requires of keys),
 * and not empty. Problems are reported on `key`.
 * @param reader the listener's option reader
 * @param secret the key that named the file (for problems) and the file's path
 * @returns the text without surrounding whitespace, or undefined after a problem
 */
export function readSecretFile(
  reader: OptionReader,
  secret: { key: string; file: string },
): string | undefined {
  const { key, file } = secret;
  let text: string;
  try {
    const info = Deno.statSync(file);
    if (!info.isFile) {
      reader.problem(key, `"${file}" is not a regular file`);
      return undefined;
    }
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      reader.problem(key, `"${file}" is readable by others (mode ${mode}): chmod 600 it`);
      return undefined;
    }
    text = Deno.readTextFileSync(file).trim();
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : (error as Error).message;
    reader.problem(key, `"${file}" ${why}`);
    return undefined;
  }
  if (text === "") {
    reader.problem(key, `"${file}" is empty`);
    return undefined;
  }
  return text;
}

/**
 * Compares a presented token with the expected one in constant time (both
 * are hashed first, so their lengths leak nothing either).
 * @param expected the listener's token
 * @param presented what the request carried (any JSON value)
 * @returns true only when `presented` is a string equal to `expected`
 */
export function tokenMatches(expected: string, presented: unknown): boolean {
  if (typeof presented !== "string") return false;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(presented).digest();
  return timingSafeEqual(a, b);
}
