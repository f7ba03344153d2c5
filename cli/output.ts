/**
 * Writing to the terminal: whole-buffer writes to stdout/stderr and the
 * one-line failure messages of the client verbs.
 *
 * @module
 */

import { escapeControl } from "../lib/escape.ts";

const encoder = new TextEncoder();

function writeAllSync(target: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(target.writeSync(rest));
}

/**
 * Writes text or bytes to stdout, completely.
 * @param data text (UTF-8 encoded) or raw bytes
 */
export function writeOut(data: string | Uint8Array): void {
  writeAllSync(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data);
}

/**
 * Writes text to stderr, completely.
 * @param text the text
 */
export function writeErr(text: string): void {
  writeAllSync(Deno.stderr, encoder.encode(text));
}

/**
 * Prints `switchboard VERB: reason` on stderr (control characters escaped).
 * @param verb the verb that failed
 * @param reason one line saying why
 * @returns exit code 1, for `return fail(…)`
 */
export function fail(verb: string, reason: string): 1 {
  writeErr(`switchboard ${verb}: ${escapeControl(reason)}\n`);
  return 1;
}
