/**
 * Typed reading of one TOML table of the config, collecting every problem
 * (with file, key path and line) instead of stopping at the first.
 *
 * @module
 */

import { closest, distance } from "fastest-levenshtein";
import { resolve } from "node:path";
import { type KeyLines, lineOf } from "./toml_locate.ts";
import { parseDuration, parseRate, parseSize, type Rate } from "./units.ts";

/** One thing wrong with a config file. */
export interface ConfigProblem {
  /** The config file's path, or `<embedded default>`. */
  file: string;
  /** 1-based line, when the key could be found in the source. */
  line?: number;
  /** Key path such as `listener[1].transform`; empty for the whole file. */
  key: string;
  /** What is wrong, in sentence case. */
  message: string;
}

/**
 * Formats a problem as `file:line: key: message`.
 * @param problem the problem
 * @returns one line of text
 */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return problem.key === ""
    ? `${where}: ${problem.message}`
    : `${where}: ${problem.key}: ${problem.message}`;
}

/** Where a reader's table sits and where its problems go. */
export interface OptionReaderOptions {
  /** The config file's path, for messages. */
  file: string;
  /** Key path of the table, e.g. `listener[0]`. */
  prefix: string;
  /** Line numbers of the source's keys. */
  lines: KeyLines;
  /** Collects problems (shared by every reader of one file). */
  problems: ConfigProblem[];
  /** Directory relative paths are resolved against. */
  baseDir: string;
}

type TomlValue = unknown;

function typeName(value: TomlValue): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (value instanceof Date) return "a date";
  switch (typeof value) {
    case "string":
      return `the string ${JSON.stringify(value)}`;
    case "number":
      return Number.isInteger(value) ? `the integer ${value}` : `the float ${value}`;
    case "boolean":
      return `the boolean ${value}`;
    case "object":
      return "a table";
    default:
      return typeof value;
  }
}

function quoteList(items: readonly string[]): string {
  const quoted = items.map((item) => JSON.stringify(item));
  return quoted.length <= 1
    ? quoted.join("")
    : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/**
 * Reads the keys of one TOML table. Every accessor marks its key as known;
 * {@linkcode OptionReader.reportUnknown} then flags the rest, with a
 * did-you-mean suggestion. Accessors return the default (or undefined) for a
 * bad value after recording the problem, so parsing can go on.
 */
export class OptionReader {
  #table: Record<string, TomlValue>;
  #options: OptionReaderOptions;
  #known = new Set<string>();

  /**
   * @param table the parsed TOML table
   * @param options where the table is and where problems go
   */
  constructor(table: Record<string, TomlValue>, options: OptionReaderOptions) {
    this.#table = table;
    this.#options = options;
  }

  /** The key path of the table this reader reads. */
  get prefix(): string {
    return this.#options.prefix;
  }

  /** Every key an accessor has asked for so far (the keys valid in this table). */
  get knownKeys(): string[] {
    return [...this.#known];
  }

  /** The number of problems recorded so far (by every reader of the file). */
  get problemCount(): number {
    return this.#options.problems.length;
  }

  /**
   * Whether the table has `key` (and marks it known).
   * @param key a key of this table
   * @returns true when present
   */
  has(key: string): boolean {
    this.#known.add(key);
    return Object.hasOwn(this.#table, key);
  }

  /**
   * Records a problem with `key` (or with the table when `key` is empty).
   * @param key a key of this table, possibly with a suffix such as `[2]`
   * @param message what is wrong
   */
  problem(key: string, message: string): void {
    const { file, prefix, lines, problems } = this.#options;
    const path = key === "" ? prefix : prefix === "" ? key : `${prefix}.${key}`;
    problems.push({ file, line: lineOf(lines, path), key: path, message });
  }

  #get(key: string): TomlValue | undefined {
    this.#known.add(key);
    return Object.hasOwn(this.#table, key) ? this.#table[key] : undefined;
  }

  #wrongType(key: string, expected: string, value: TomlValue): undefined {
    this.problem(key, `expected ${expected}, found ${typeName(value)}`);
    return undefined;
  }

  /**
   * Reads a string; with `choices`, it must be one of them.
   * @param key the key
   * @param options default, allowed values, whether required or non-empty
   * @returns the value, the default, or undefined
   */
  string(
    key: string,
    options?: { choices?: readonly string[]; required?: boolean },
  ): string | undefined;
  string(key: string, options: { default: string; choices?: readonly string[] }): string;
  string(
    key: string,
    options: { default?: string; choices?: readonly string[]; required?: boolean } = {},
  ): string | undefined {
    const value = this.#get(key);
    if (value === undefined) {
      if (options.required) this.problem(key, "is required");
      return options.default;
    }
    if (typeof value !== "string") {
      return this.#wrongType(key, "a string", value) ?? options.default;
    }
    if (options.choices && !options.choices.includes(value)) {
      const guess = closest(value, options.choices as string[]);
      const hint = guess && distanceOk(value, guess) ? ` (did you mean "${guess}"?)` : "";
      this.problem(
        key,
        `unknown value ${JSON.stringify(value)}${hint}: expected ${quoteList(options.choices)}`,
      );
      return options.default;
    }
    return value;
  }

  /**
   * Reads a boolean.
   * @param key the key
   * @param fallback the default
   * @returns the value or the default
   */
  boolean(key: string, fallback: boolean): boolean {
    const value = this.#get(key);
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") return this.#wrongType(key, "true or false", value) ?? fallback;
    return value;
  }

  /**
   * Reads an integer within bounds.
   * @param key the key
   * @param options default and inclusive bounds
   * @returns the value or the default
   */
  integer(key: string, options: { default: number; min?: number; max?: number }): number {
    const value = this.#get(key);
    if (value === undefined) return options.default;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      return this.#wrongType(key, "an integer", value) ?? options.default;
    }
    return this.#bounded(key, value, options, String) ?? options.default;
  }

  #bounded(
    key: string,
    value: number,
    bounds: { min?: number; max?: number },
    show: (n: number) => string,
  ): number | undefined {
    if (bounds.min !== undefined && value < bounds.min) {
      this.problem(key, `${show(value)} is below the minimum ${show(bounds.min)}`);
      return undefined;
    }
    if (bounds.max !== undefined && value > bounds.max) {
      this.problem(key, `${show(value)} is over the maximum ${show(bounds.max)}`);
      return undefined;
    }
    return value;
  }

  /**
   * Reads a duration (`"500ms"`, `"10s"`, `"5m"`; `0` for none).
   * @param key the key
   * @param options default (text or ms) and bounds in ms
   * @returns milliseconds
   */
  duration(key: string, options: { default: string | number; min?: number; max?: number }): number {
    const fallback = typeof options.default === "number"
      ? options.default
      : parseDuration(options.default);
    const value = this.#get(key);
    if (value === undefined) return fallback;
    if (value === 0) return this.#bounded(key, 0, options, String) ?? fallback;
    if (typeof value !== "string") {
      return this.#wrongType(key, 'a duration such as "10s"', value) ?? fallback;
    }
    try {
      return this.#bounded(key, parseDuration(value), options, (ms) => `${ms}ms`) ?? fallback;
    } catch (error) {
      this.problem(key, (error as Error).message);
      return fallback;
    }
  }

  /**
   * Reads a byte size (an integer, or `"64KiB"`, `"16MiB"`).
   * @param key the key
   * @param options default (text or bytes) and bounds in bytes
   * @returns bytes
   */
  size(key: string, options: { default: string | number; min?: number; max?: number }): number {
    const fallback = typeof options.default === "number"
      ? options.default
      : parseSize(options.default);
    const value = this.#get(key);
    if (value === undefined) return fallback;
    let bytes: number;
    if (typeof value === "number" && Number.isInteger(value)) {
      bytes = value;
    } else if (typeof value === "string") {
      try {
        bytes = parseSize(value);
      } catch (error) {
        this.problem(key, (error as Error).message);
        return fallback;
      }
    } else {
      return this.#wrongType(key, 'a size such as "64KiB"', value) ?? fallback;
    }
    return this.#bounded(key, bytes, options, (n) => `${n} bytes`) ?? fallback;
  }

  /**
   * Reads a rate such as `"20/s"`.
   * @param key the key
   * @param fallback the default rate text
   * @returns the rate
   */
  rate(key: string, fallback: string): Rate {
    const value = this.#get(key);
    if (value === undefined) return parseRate(fallback);
    if (typeof value !== "string") {
      return this.#wrongType(key, 'a rate such as "20/s"', value) ?? parseRate(fallback);
    }
    try {
      return parseRate(value);
    } catch (error) {
      this.problem(key, (error as Error).message);
      return parseRate(fallback);
    }
  }

  /**
   * Reads an array of strings; `check` may reject items (returning a message).
   * @param key the key
   * @param options default and an item validator
   * @returns the items
   */
  stringArray(
    key: string,
    options: { default?: readonly string[]; check?: (item: string) => string | undefined } = {},
  ): string[] {
    const fallback = [...(options.default ?? [])];
    const value = this.#get(key);
    if (value === undefined) return fallback;
    if (!Array.isArray(value)) {
      return this.#wrongType(key, "an array of strings", value) ?? fallback;
    }
    const items: string[] = [];
    value.forEach((item, index) => {
      if (typeof item !== "string") {
        this.#wrongType(`${key}[${index}]`, "a string", item);
        return;
      }
      const message = options.check?.(item);
      if (message) this.problem(`${key}[${index}]`, message);
      else items.push(item);
    });
    return items;
  }

  /**
   * Reads a table of string values (e.g. `env`).
   * @param key the key
   * @returns the entries (empty when absent)
   */
  stringTable(key: string): Record<string, string> {
    const value = this.#get(key);
    if (value === undefined) return {};
    if (
      typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Date
    ) {
      return this.#wrongType(key, "a table of strings", value) ?? {};
    }
    const entries: Record<string, string> = {};
    for (const [name, item] of Object.entries(value)) {
      if (typeof item === "string") entries[name] = item;
      else this.#wrongType(`${key}.${name}`, "a string", item);
    }
    return entries;
  }

  /**
   * Reads a sub-table (`key = { … }`) with a reader of its own, whose
   * problems carry the key path `prefix.key.…`; call its `reportUnknown`.
   * @param key the key
   * @returns the sub-table's reader, or undefined when absent or not a table
   */
  table(key: string): OptionReader | undefined {
    const value = this.#get(key);
    if (value === undefined) return undefined;
    if (
      typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Date
    ) {
      return this.#wrongType(key, 'a table such as { key = "value" }', value);
    }
    const prefix = this.#options.prefix === "" ? key : `${this.#options.prefix}.${key}`;
    return new OptionReader(value as Record<string, TomlValue>, { ...this.#options, prefix });
  }

  /**
   * Reads a filesystem path, resolved against the config file's directory.
   * @param key the key
   * @param options default (unresolved) and what must exist there
   * @returns the absolute path, or undefined when absent or wrong
   */
  path(
    key: string,
    options: { default?: string; required?: boolean; mustBe?: "dir" | "file" } = {},
  ): string | undefined {
    const text = this.string(key, { required: options.required ?? false }) ?? options.default;
    if (text === undefined || text === "") {
      if (text === "") this.problem(key, "must not be empty");
      return undefined;
    }
    const absolute = resolve(this.#options.baseDir, text);
    if (options.mustBe) {
      try {
        const info = Deno.statSync(absolute);
        const ok = options.mustBe === "dir" ? info.isDirectory : info.isFile;
        if (!ok) {
          this.problem(
            key,
            `"${absolute}" is not a ${options.mustBe === "dir" ? "directory" : "file"}`,
          );
          return undefined;
        }
      } catch (error) {
        const why = error instanceof Deno.errors.NotFound
          ? "does not exist"
          : (error as Error).message;
        this.problem(key, `"${absolute}" ${why}`);
        return undefined;
      }
    }
    return absolute;
  }

  /**
   * Reports every key that no accessor asked for, with a suggestion.
   * @param extraKnown further keys that are valid here but were not read
   */
  reportUnknown(extraKnown: readonly string[] = []): void {
    const known = [...this.#known, ...extraKnown];
    for (const key of Object.keys(this.#table)) {
      if (this.#known.has(key) || extraKnown.includes(key)) continue;
      const guess = known.length > 0 ? closest(key, known) : undefined;
      const hint = guess && distanceOk(key, guess) ? ` (did you mean "${guess}"?)` : "";
      this.problem(key, `unknown key${hint}`);
    }
  }
}

// A suggestion is worth making when it is reasonably close to what was typed.
function distanceOk(typed: string, guess: string): boolean {
  const a = typed.toLowerCase();
  const b = guess.toLowerCase();
  return a.includes(b) || b.includes(a) || distance(a, b) <= Math.max(2, Math.floor(b.length / 3));
}
