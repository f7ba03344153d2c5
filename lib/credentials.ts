/**
 * systemd credentials (`LoadCredential=NAME:/path` in the unit): the service
 * reads `$CREDENTIALS_DIRECTORY/NAME`, a private copy systemd makes readable
 * by the service's (possibly dynamic) user, so a `DynamicUser=yes` daemon
 * can use a secret whose original is a root-owned 0600 file.
 *
 * @module
 */

import { join } from "node:path";

/** A credential cannot be read; the message names the directory and the file. */
export class CredentialError extends Error {
  /**
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "CredentialError";
  }
}

// systemd's rule for credential names: a valid file name, no "/".
const NAME = /^[A-Za-z0-9_.@+-]{1,255}$/;

/**
 * Checks a credential name (what follows `LoadCredential=` up to the colon).
 * @param name the name from the config
 * @returns a message when it cannot be a credential name, else undefined
 */
export function credentialNameProblem(name: string): string | undefined {
  if (!NAME.test(name) || name === "." || name === "..") {
    return `"${name}" is not a credential name: use letters, digits and "._@+-", no "/"`;
  }
  return undefined;
}

/**
 * Reads credential `name` from `$CREDENTIALS_DIRECTORY`.
 *
 * @example
 * ```ts
 * import { readCredential } from "./credentials.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/cmd-token`, "s3cret\n");
 * const env = (name: string) => name === "CREDENTIALS_DIRECTORY" ? dir : undefined;
 * if (readCredential("cmd-token", env) !== "s3cret\n") throw new Error("wrong text");
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @param name the credential's name
 * @param env reads an environment variable @default {Deno.env.get}
 * @returns the credential's text
 * @throws {CredentialError} when the name is invalid, the variable is not set,
 *   or the file cannot be read (the message names both)
 */
export function readCredential(
  name: string,
  env: (name: string) => string | undefined = (variable) => Deno.env.get(variable),
): string {
  const bad = credentialNameProblem(name);
  if (bad) throw new CredentialError(bad);
  const directory = env("CREDENTIALS_DIRECTORY");
  if (!directory) {
    throw new CredentialError(
      `credential "${name}" cannot be read: $CREDENTIALS_DIRECTORY is not set ` +
        `(run under systemd with LoadCredential=${name}:/path/to/file)`,
    );
  }
  const path = join(directory, name);
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : (error as Error).message;
    throw new CredentialError(
      `credential "${name}" cannot be read from $CREDENTIALS_DIRECTORY (${directory}): ` +
        `"${path}" ${why}`,
    );
  }
}
