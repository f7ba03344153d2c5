/**
 * A one-line progress bar with rate and ETA, drawn on stderr only when
 * stderr is a terminal (and redrawn at most every 100 ms), so that piped or
 * logged output stays clean.
 *
 * @module
 */

import { escapeControl } from "../lib/escape.ts";
import { formatSize } from "../lib/units.ts";

/** Where a progress bar is drawn. */
export interface ProgressTarget {
  /** Writes some bytes synchronously. */
  writeSync(p: Uint8Array): number;
}

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** What is moving (a file name), shown first. */
  label: string;
  /** Total bytes. */
  total: number;
  /** Bytes already there (a resumed download); not counted in the rate. */
  start?: number;
  /** Where to draw. @default {Deno.stderr} */
  target?: ProgressTarget;
  /** The terminal's width in columns. @default {from Deno.consoleSize(), else 80} */
  columns?: number;
  /** A ms clock. @default {performance.now} */
  now?: () => number;
}

const REDRAW_MS = 100;
const encoder = new TextEncoder();

/**
 * Formats a rate in binary units per second.
 * @param bytesPerSecond the rate
 * @returns e.g. `312MiB/s`
 */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return "-- B/s";
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/**
 * Formats a duration as `m:ss` or `h:mm:ss`.
 * @param seconds the duration; not finite shows `--:--`
 * @returns the text
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** What one line of the bar shows. */
export interface ProgressState {
  /** The label. */
  label: string;
  /** Bytes done. */
  done: number;
  /** Total bytes. */
  total: number;
  /** Bytes per second. */
  rate: number;
  /** The terminal's width. */
  columns: number;
  /** Whether this is the final line (shows elapsed time instead of ETA). */
  finished?: boolean;
  /** Elapsed seconds (for the final line). */
  elapsed?: number;
}

/**
 * Renders one line of the bar, fitted to the terminal's width.
 * @param state what to show
 * @returns e.g. `big.iso  42% [########          ] 1.2GiB/2.9GiB  310MiB/s  ETA 0:06`
 */
export function renderProgress(state: ProgressState): string {
  const percent = state.total > 0
    ? Math.min(100, Math.floor((state.done / state.total) * 100))
    : 100;
  const eta = state.finished
    ? `in ${formatEta(state.elapsed ?? 0)}`
    : `ETA ${formatEta((state.total - state.done) / state.rate)}`;
  const tail = ` ${formatSize(state.done)}/${formatSize(state.total)}  ${
    formatRate(state.rate)
  }  ${eta}`;
  const pct = `${String(percent).padStart(3)}%`;
  const room = state.columns - 1 - tail.length - pct.length - 2;
  // The label gets up to a third of the line; the bar what is left.
  let label = escapeControl(state.label);
  const labelRoom = Math.max(0, Math.min(label.length, Math.floor(room / 3)));
  if (label.length > labelRoom) label = labelRoom > 1 ? `${label.slice(0, labelRoom - 1)}…` : "";
  const barWidth = room - label.length - 4;
  let bar = "";
  if (barWidth >= 5) {
    const filled = state.total > 0
      ? Math.round((barWidth * Math.min(state.done, state.total)) / state.total)
      : barWidth;
    bar = ` [${"#".repeat(filled)}${" ".repeat(barWidth - filled)}]`;
  }
  return `${label}${label ? "  " : ""}${pct}${bar}${tail}`.slice(0, Math.max(0, state.columns - 1));
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/** A progress bar on a terminal. */
export class Progress {
  #label: string;
  #total: number;
  #start: number;
  #done: number;
  #target: ProgressTarget;
  #columns: number;
  #now: () => number;
  #began: number;
  #lastDraw = -Infinity;
  #visible = false;

  /**
   * @param options label, total, starting point, target, width and clock
   */
  constructor(options: ProgressOptions) {
    this.#label = options.label;
    this.#total = options.total;
    this.#start = options.start ?? 0;
    this.#done = this.#start;
    this.#target = options.target ?? Deno.stderr;
    this.#columns = options.columns ?? terminalColumns();
    this.#now = options.now ?? (() => performance.now());
    this.#began = this.#now();
  }

  /**
   * A progress bar when stderr is a terminal, else undefined (quiet).
   * @param label what is moving
   * @param total total bytes
   * @param start bytes already there
   * @returns the bar or undefined
   */
  static forTerminal(label: string, total: number, start = 0): Progress | undefined {
    return Deno.stderr.isTerminal() ? new Progress({ label, total, start }) : undefined;
  }

  #rate(): number {
    const seconds = (this.#now() - this.#began) / 1000;
    return seconds > 0 ? (this.#done - this.#start) / seconds : 0;
  }

  #draw(line: string): void {
    const bytes = encoder.encode(`\r${line}\x1b[K`);
    let rest = bytes;
    try {
      while (rest.length > 0) rest = rest.subarray(this.#target.writeSync(rest));
    } catch {
      // A closed terminal must not fail the transfer.
    }
    this.#visible = true;
  }

  /**
   * Counts bytes moved; redraws when the last draw is old enough.
   * @param bytes how many more are done
   */
  add(bytes: number): void {
    this.#done += bytes;
    const now = this.#now();
    if (now - this.#lastDraw < REDRAW_MS && this.#done < this.#total) return;
    this.#lastDraw = now;
    this.#draw(this.#line(false));
  }

  #line(finished: boolean): string {
    return renderProgress({
      label: this.#label,
      done: this.#done,
      total: this.#total,
      rate: this.#rate(),
      columns: this.#columns,
      finished,
      elapsed: (this.#now() - this.#began) / 1000,
    });
  }

  /** Draws the final line (average rate, elapsed time) and ends it. */
  finish(): void {
    this.#draw(this.#line(true));
    this.#end();
  }

  /** Ends the line as it is (before an error message). */
  stop(): void {
    if (this.#visible) this.#end();
  }

  #end(): void {
    try {
      this.#target.writeSync(encoder.encode("\n"));
    } catch {
      // As above.
    }
    this.#visible = false;
  }
}
