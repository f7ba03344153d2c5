/**
 * Finds the line on which each key of a TOML document is defined, so config
 * errors found after parsing can still name a line.
 *
 * @module
 */

/** Key paths such as `daemon.log_level` or `listener[1].allow`, mapped to 1-based lines. */
export type KeyLines = Map<string, number>;

const BARE = /^[A-Za-z0-9_-]+/;

/** Reads a dotted TOML key at `text[start]`; returns its parts and the index after it. */
function readKey(text: string, start: number): { parts: string[]; end: number } | null {
  const parts: string[] = [];
  let i = start;
  for (;;) {
    while (text[i] === " " || text[i] === "\t") i++;
    const char = text[i];
    if (char === '"' || char === "'") {
      const close = findStringEnd(text, i + 1, char);
      if (close < 0) return null;
      const raw = text.slice(i + 1, close);
      parts.push(char === '"' ? unescapeBasic(raw) : raw);
      i = close + 1;
    } else {
      const bare = BARE.exec(text.slice(i));
      if (!bare) return null;
      parts.push(bare[0]);
      i += bare[0].length;
    }
    while (text[i] === " " || text[i] === "\t") i++;
    if (text[i] !== ".") return { parts, end: i };
    i++;
  }
}

function findStringEnd(text: string, from: number, quote: string): number {
  for (let i = from; i < text.length; i++) {
    if (quote === '"' && text[i] === "\\") {
      i++;
      continue;
    }
    if (text[i] === quote) return i;
  }
  return -1;
}

function unescapeBasic(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

function render(parts: readonly string[]): string {
  return parts.join(".");
}

/**
 * Scans a value starting at `text[start]` (possibly spanning lines) and
 * returns the index just past it, reporting keys of inline tables.
 */
function skipValue(
  text: string,
  start: number,
  onInlineKey: (parts: string[], index: number) => void,
): number {
  // Open containers: `[` arrays and `{` inline tables; `expectKey` is true
  // right after `{` or after a comma inside an inline table.
  const open: string[] = [];
  let expectKey = false;
  let i = start;
  while (i < text.length) {
    const char = text[i]!;
    if (char === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (char === "\n" && open.length === 0) return i;
    if (expectKey && /[A-Za-z0-9_"'-]/.test(char)) {
      expectKey = false;
      const key = readKey(text, i);
      if (key && text[key.end] === "=") {
        onInlineKey(key.parts, i);
        i = key.end + 1;
        continue;
      }
    }
    if (char === '"' || char === "'") {
      if (text.startsWith(char.repeat(3), i)) {
        const close = text.indexOf(char.repeat(3), i + 3);
        i = close < 0 ? text.length : close + 3;
        while (text[i] === char) i++;
      } else {
        const close = findStringEnd(text, i + 1, char);
        i = close < 0 ? text.length : close + 1;
      }
      continue;
    }
    if (char === "[" || char === "{") {
      open.push(char);
      expectKey = char === "{";
    } else if (char === "]" || char === "}") {
      open.pop();
      expectKey = false;
    } else if (char === ",") {
      expectKey = open.at(-1) === "{";
    }
    i++;
  }
  return i;
}

/**
 * Maps every key path in a TOML document to the line that defines it. Array
 * tables are indexed (`listener[0]`), table headers map to their own line,
 * and keys inside inline tables map to the line they appear on.
 *
 * @example
 * ```ts
 * import { locateKeys } from "./toml_locate.ts";
 * const lines = locateKeys('[daemon]\nlog_level = "info"\n[[listener]]\nservice = "echo"\n');
 * if (lines.get("listener[0].service") !== 4) throw new Error("wrong line");
 * ```
 *
 * @param text the TOML source
 * @returns key paths and their 1-based line numbers
 */
export function locateKeys(text: string): KeyLines {
  const lines: KeyLines = new Map();
  const arrayCounts = new Map<string, number>();
  let table = "";
  let i = 0;
  // Keys are found in increasing order, so lines are counted incrementally.
  let counted = 0;
  let line = 1;
  const lineOf = (index: number): number => {
    for (; counted < index; counted++) if (text.charCodeAt(counted) === 10) line++;
    return line;
  };
  // Resolve `[listener.env]` against the latest `[[listener]]` element.
  const resolve = (parts: readonly string[]): string => {
    let path = "";
    for (const part of parts) {
      const plain = path === "" ? part : `${path}.${part}`;
      const count = arrayCounts.get(plain);
      path = count === undefined ? plain : `${plain}[${count - 1}]`;
    }
    return path;
  };
  while (i < text.length) {
    while (i < text.length && /[ \t\r\n]/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const char = text[i]!;
    if (char === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (char === "[") {
      const isArray = text[i + 1] === "[";
      const key = readKey(text, i + (isArray ? 2 : 1));
      if (key) {
        const plain = render(key.parts);
        if (isArray) {
          const parent = resolve(key.parts.slice(0, -1));
          const base = parent === "" ? key.parts.at(-1)! : `${parent}.${key.parts.at(-1)}`;
          arrayCounts.set(plain, (arrayCounts.get(plain) ?? 0) + 1);
          table = `${base}[${arrayCounts.get(plain)! - 1}]`;
        } else {
          table = resolve(key.parts);
        }
        if (!lines.has(table)) lines.set(table, lineOf(i));
      }
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const key = readKey(text, i);
    if (!key || text[key.end] !== "=") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const path = table === "" ? render(key.parts) : `${table}.${render(key.parts)}`;
    if (!lines.has(path)) lines.set(path, lineOf(i));
    i = skipValue(text, key.end + 1, (inner, index) => {
      const innerPath = `${path}.${render(inner)}`;
      if (!lines.has(innerPath)) lines.set(innerPath, lineOf(index));
    });
  }
  return lines;
}

/**
 * Finds the line for a key path, falling back to its nearest located parent
 * (e.g. an item of an array maps to the array's key), and locating a table
 * by its first header or child (an array of tables, `a.b = 1`).
 * @param lines the result of {@linkcode locateKeys}
 * @param path a key path such as `listener[0].allow[2]`
 * @returns a 1-based line, or undefined when no part of the path is located
 */
export function lineOf(lines: KeyLines, path: string): number | undefined {
  let current = path;
  for (;;) {
    // An array of tables is located by its first `[[header]]`, a table
    // defined only through its children (`a.b = 1`, `[a.b]`) by the first.
    const line = lines.get(current) ?? lines.get(`${current}[0]`) ?? firstChild(lines, current);
    if (line !== undefined) return line;
    const cut = Math.max(current.lastIndexOf("."), current.lastIndexOf("["));
    if (cut <= 0) return undefined;
    current = current.slice(0, cut);
  }
}

function firstChild(lines: KeyLines, path: string): number | undefined {
  let first: number | undefined;
  for (const [key, line] of lines) {
    if (key.startsWith(`${path}.`) || key.startsWith(`${path}[`)) {
      first = first === undefined ? line : Math.min(first, line);
    }
  }
  return first;
}
