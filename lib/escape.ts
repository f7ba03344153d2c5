/**
 * Escaping of terminal control characters in text that came from the network,
 * so that a peer cannot forge log lines or drive the user's terminal.
 *
 * @module
 */

/** Options for {@linkcode escapeControl}. */
export interface EscapeOptions {
  /** Keep `\n` and `\t` as they are (for printing messages to a terminal). @default {false} */
  keepLayout?: boolean;
}

// C0 controls, DEL and C1 controls (U+0080–U+009F, which some terminals obey).
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

function replace(code: number): string {
  switch (code) {
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    default:
      return "\\x" + code.toString(16).padStart(2, "0");
  }
}

/**
 * Replaces control characters with visible escapes (`\n`, `\r`, `\t`, `\xNN`).
 *
 * @example
 * ```ts
 * import { escapeControl } from "./escape.ts";
 * if (escapeControl("a\x1b[2Jb") !== "a\\x1b[2Jb") throw new Error("not escaped");
 * ```
 *
 * @param text any string, e.g. decoded from network bytes
 * @param options whether to keep newlines and tabs
 * @returns the text with every control character escaped
 */
export function escapeControl(text: string, options: EscapeOptions = {}): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isControl(code) || (options.keepLayout && (code === 0x0a || code === 0x09))) continue;
    out += text.slice(start, i) + replace(code);
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}
