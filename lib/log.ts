/**
 * The daemon's one writer to stderr: leveled, structured log lines as text or
 * JSON, with systemd-journald priority prefixes when running under journald.
 *
 * @module
 */

import { escapeControl } from "./escape.ts";

/** Severity of a log line, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** How log lines are rendered. */
export type LogFormat = "text" | "json";

/** Field values a log line may carry. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Every level, in order of decreasing severity. */
export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
// syslog(3) priorities, as sd-daemon(3) prefixes expect.
const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** Where finished lines go; the default writes to stderr synchronously. */
export type LogSink = (line: string) => void;

/** Options for {@linkcode Logger}. */
export interface LoggerOptions {
  /** Least severe level that is written. @default {"info"} */
  level?: LogLevel;
  /** Line format. @default {"text"} */
  format?: LogFormat;
  /**
   * Prefix lines with `<N>` syslog priorities and omit timestamps (journald
   * adds its own). @default {true when JOURNAL_STREAM is set}
   */
  journal?: boolean;
  /** Receives each finished line (without the trailing newline). @default {stderr} */
  sink?: LogSink;
  /** Clock for timestamps. @default {() => new Date()} */
  now?: () => Date;
}

interface LoggerState {
  level: number;
  format: LogFormat;
  journal: boolean;
  sink: LogSink;
  now: () => Date;
}

const encoder = new TextEncoder();

/**
 * Writes one line to stderr, never throwing (the default sink).
 * @param line the formatted line, without its newline
 */
export function stderrSink(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  try {
    while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
  } catch {
    // A closed or broken stderr must never take the daemon down.
  }
}

function detectJournal(): boolean {
  try {
    return Deno.env.get("JOURNAL_STREAM") !== undefined;
  } catch {
    return false;
  }
}

function renderValue(value: string | number | boolean | null): string {
  const text = String(value);
  // JSON quoting escapes C0 controls; escapeControl then catches DEL and C1.
  const quote = text === "" || /[\s"=\\]/.test(text) || escapeControl(text) !== text;
  return escapeControl(quote ? JSON.stringify(text) : text);
}

/**
 * A structured logger. Child loggers share the parent's level and sink, so
 * changing the level (on reload) affects every child at once.
 *
 * @example
 * ```ts
 * import { Logger } from "./log.ts";
 * const lines: string[] = [];
 * const log = new Logger({ sink: (l) => lines.push(l), journal: false });
 * log.child({ listener: "echo" }).warn("Connection refused", { peer: "127.0.0.1:5000" });
 * if (!lines[0]!.includes("listener=echo peer=127.0.0.1:5000")) throw new Error("missing fields");
 * ```
 */
export class Logger {
  #state: LoggerState;
  #fields: LogFields;

  /**
   * Creates a root logger.
   * @param options level, format, journald mode, sink and clock
   */
  constructor(options: LoggerOptions = {}) {
    this.#state = {
      level: RANK[options.level ?? "info"],
      format: options.format ?? "text",
      journal: options.journal ?? detectJournal(),
      sink: options.sink ?? stderrSink,
      now: options.now ?? (() => new Date()),
    };
    this.#fields = {};
  }

  /**
   * Returns a logger that adds `fields` to every line it writes.
   * @param fields context such as `listener` or `peer`
   * @returns a child sharing this logger's level, format and sink
   */
  child(fields: LogFields): Logger {
    const child = new Logger({ sink: this.#state.sink, journal: this.#state.journal });
    child.#state = this.#state;
    child.#fields = { ...this.#fields, ...fields };
    return child;
  }

  /**
   * Changes the level and format for this logger and all its relatives.
   * @param options the new level and/or format
   */
  configure(options: { level?: LogLevel; format?: LogFormat }): void {
    if (options.level) this.#state.level = RANK[options.level];
    if (options.format) this.#state.format = options.format;
  }

  /**
   * Whether a line at `level` would be written (to skip building costly fields).
   * @param level the level to test
   * @returns true when enabled
   */
  enabled(level: LogLevel): boolean {
    return RANK[level] <= this.#state.level;
  }

  /** Logs at error level. @param message human text @param fields context */
  error(message: string, fields?: LogFields): void {
    this.#write("error", message, fields);
  }

  /** Logs at warn level. @param message human text @param fields context */
  warn(message: string, fields?: LogFields): void {
    this.#write("warn", message, fields);
  }

  /** Logs at info level. @param message human text @param fields context */
  info(message: string, fields?: LogFields): void {
    this.#write("info", message, fields);
  }

  /** Logs at debug level. @param message human text @param fields context */
  debug(message: string, fields?: LogFields): void {
    this.#write("debug", message, fields);
  }

  #write(level: LogLevel, message: string, fields: LogFields | undefined): void {
    const state = this.#state;
    if (RANK[level] > state.level) return;
    const all: LogFields = fields ? { ...this.#fields, ...fields } : this.#fields;
    let line: string;
    if (state.format === "json") {
      const record: Record<string, unknown> = {};
      if (!state.journal) record.ts = state.now().toISOString();
      record.level = level;
      record.msg = message;
      for (const [key, value] of Object.entries(all)) {
        if (value !== undefined) record[key] = value;
      }
      line = JSON.stringify(record);
    } else {
      const parts: string[] = [];
      if (!state.journal) parts.push(state.now().toISOString());
      parts.push(level.toUpperCase().padEnd(5), escapeControl(message));
      for (const [key, value] of Object.entries(all)) {
        if (value !== undefined) parts.push(`${key}=${renderValue(value)}`);
      }
      line = parts.join(" ");
    }
    state.sink(state.journal ? `<${PRIORITY[level]}>${line}` : line);
  }
}
