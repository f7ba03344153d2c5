/**
 * Shared secrets of the framed services: read from `token`, `token_file`
 * (which must not be readable by group or others) or `token_credential`
 * (systemd credentials), compared in constant time.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { CredentialError, credentialNameProblem, readCredential } from "./credentials.ts";
import type { OptionReader } from "./option_reader.ts";
import { PrivateFileError, readPrivateFile } from "./private_file.ts";

/**
 * Reads a listener's `token` / `token_file` / `token_credential` keys (at
 * most one). A token file must be a regular file not readable by group or
 * others (exit 78 otherwise, as ssh does for keys); a credential is read
 * from `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`). Surrounding
 * whitespace is ignored.
 * @param reader the listener's option reader
 * @param env reads an environment variable (for the credentials directory) @default {Deno.env.get}
 * @returns the token, or undefined when no key is set
 */
export function readToken(
  reader: OptionReader,
  env?: (name: string) => string | undefined,
): string | undefined {
  const inline = reader.string("token");
  const file = reader.path("token_file");
  const credential = reader.string("token_credential");
  const given = [
    inline !== undefined && "token",
    file !== undefined && "token_file",
    credential !== undefined && "token_credential",
  ].filter((key): key is string => key !== false);
  if (given.length > 1) {
    reader.problem(
      given[1]!,
      `give only one of "token", "token_file" and "token_credential" (found ${
        given.map((key) => `"${key}"`).join(" and ")
      })`,
    );
    return undefined;
  }
  if (inline !== undefined) {
    if (inline.trim() === "") reader.problem("token", "must not be empty");
    return inline;
  }
  let key: string, where: string, read: () => string;
  if (file !== undefined) {
    [key, where, read] = ["token_file", `"${file}"`, () => readPrivateFile(file)];
  } else if (credential !== undefined) {
    const bad = credentialNameProblem(credential);
    if (bad) {
      reader.problem("token_credential", bad);
      return undefined;
    }
    key = "token_credential";
    where = `credential "${credential}"`;
    read = () => readCredential(credential, env);
  } else {
    return undefined;
  }
  let text: string;
  try {
    text = read().trim();
  } catch (error) {
    if (!(error instanceof PrivateFileError || error instanceof CredentialError)) throw error;
    reader.problem(key, error.message);
    return undefined;
  }
  if (text === "") {
    reader.problem(key, `${where} is empty`);
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

/**
 * Reads a file holding a secret (bus credentials, say): a regular file, not
 * readable by group or others (as ssh requires of keys), and not empty
 * (lib/private_file.ts does the checks). Problems are reported on `key`.
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
    text = readPrivateFile(file).trim();
  } catch (error) {
    if (!(error instanceof PrivateFileError)) throw error;
    reader.problem(key, error.message);
    return undefined;
  }
  if (text === "") {
    reader.problem(key, `"${file}" is empty`);
    return undefined;
  }
  return text;
}
