/**
 * Writing to the terminal: whole-buffer writes to stdout/stderr and the
 * one-line failure messages of the client verbs.
 *
 * A closed stdout (`switchboard ls host | head -1`) is not an error to
 * report: like a coreutils program killed by SIGPIPE, the verb stops
 * quietly and exits 141. Writes to stdout throw {@linkcode OutputClosed}
 * once the reader is gone, `fail` says nothing more from then on, and
 * `main` turns it into exit 141.
 *
 * @module
 */

import { escapeControl } from "../lib/escape.ts";
import { writeAll } from "../lib/write_all.ts";

const encoder = new TextEncoder();

let stdoutClosed = false;

/** Standard output was closed by its reader: the verb stops quietly (exit 141). */
export class OutputClosed extends Error {
  constructor() {
    super("Standard output was closed");
    this.name = "OutputClosed";
  }
}

/**
 * Whether a write to stdout found it closed (the verb then exits 141).
 * @returns true once stdout's reader has gone
 */
export function outputClosed(): boolean {
  return stdoutClosed;
}

function closedError(error: unknown): unknown {
  if (!(error instanceof Deno.errors.BrokenPipe)) return error;
  stdoutClosed = true;
  return new OutputClosed();
}

function writeAllSync(target: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(target.writeSync(rest));
}

/**
 * Writes text or bytes to stdout, completely.
 * @param data text (UTF-8 encoded) or raw bytes
 * @throws {OutputClosed} when stdout's reader has gone (a closed pipe)
 */
export function writeOut(data: string | Uint8Array): void {
  if (stdoutClosed) throw new OutputClosed();
  try {
    writeAllSync(Deno.stdout, typeof data === "string" ? encoder.encode(data) : data);
  } catch (error) {
    throw closedError(error);
  }
}

/**
 * Writes bytes to stdout without blocking the event loop (for streams that
 * run while the network is read: `cmd`, `get … -`).
 * @param bytes the bytes
 * @throws {OutputClosed} when stdout's reader has gone
 */
export async function writeOutAsync(bytes: Uint8Array): Promise<void> {
  if (stdoutClosed) throw new OutputClosed();
  try {
    await writeAll(Deno.stdout, bytes);
  } catch (error) {
    throw closedError(error);
  }
}

/**
 * Writes text to stderr, completely; a closed or broken stderr is ignored
 * (there is nowhere left to say anything).
 * @param text the text
 */
export function writeErr(text: string): void {
  try {
    writeAllSync(Deno.stderr, encoder.encode(text));
  } catch {
    // Nowhere to report it.
  }
}

/**
 * Prints `switchboard VERB: reason` on stderr (control characters escaped),
 * unless stdout was closed: then the verb is ending quietly anyway.
 * @param verb the verb that failed
 * @param reason one line saying why
 * @returns exit code 1, for `return fail(…)`
 */
export function fail(verb: string, reason: string): 1 {
  if (!stdoutClosed) writeErr(`switchboard ${verb}: ${escapeControl(reason)}\n`);
  return 1;
}
