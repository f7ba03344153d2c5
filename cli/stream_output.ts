/**
 * Prints bytes from the network: raw when stdout is a file or pipe, decoded
 * and with control characters escaped when it is a terminal (so a peer
 * cannot drive the user's terminal).
 *
 * @module
 */

import { escapeControl } from "../lib/escape.ts";
import { writeOut } from "./output.ts";

/** Writes network bytes to stdout safely; `flush` at the end. */
export interface NetworkPrinter {
  /** Prints a chunk (UTF-8 split across chunks is handled). */
  write(bytes: Uint8Array): void;
  /** Prints what a split UTF-8 sequence left pending. */
  flush(): void;
}

/**
 * Creates a printer for stdout.
 * @param terminal whether stdout is a terminal @default {Deno.stdout.isTerminal()}
 * @returns the printer
 */
export function networkPrinter(terminal: boolean = Deno.stdout.isTerminal()): NetworkPrinter {
  if (!terminal) return { write: (bytes) => writeOut(bytes), flush: () => {} };
  const decoder = new TextDecoder();
  return {
    write: (bytes) =>
      writeOut(escapeControl(decoder.decode(bytes, { stream: true }), { keepLayout: true })),
    flush: () => writeOut(escapeControl(decoder.decode(), { keepLayout: true })),
  };
}
