/**
 * Supervising one command in its process group, whatever the service (cmd's
 * framed and line protocols, exec): stdout and stderr are read in chunks as
 * they come and handed to the caller (who writes them to the client; waiting
 * for that write is the back-pressure), the output budget and the timeout
 * are enforced, and the whole group is ended — SIGTERM, then SIGKILL — on
 * timeout, on a full budget, when the client goes away, or when the caller
 * asks.
 *
 * @module
 */

import { isDisconnect } from "./net_errors.ts";
import type { InputPipe, OutputPipe, ProcessGroup } from "./process_group.ts";

const INITIAL_CHUNK = 1024;

/** How long a process group gets after SIGTERM before SIGKILL, in ms. */
export const KILL_GRACE_MS = 2000;
/**
 * After SIGKILL, how long output pipes are still read: only a process that
 * left the group (setsid) can hold them open longer, and it is not waited for.
 */
export const PIPE_LINGER_MS = 500;

/** Which output stream a chunk came from. */
export type OutputStream = "stdout" | "stderr";

/** Byte counts of one run. */
export interface RunStats {
  /** Bytes of stdin received from the client. */
  stdin: number;
  /** Bytes of stdout sent to the client. */
  stdout: number;
  /** Bytes of stderr sent to the client. */
  stderr: number;
}

/** What the protocol side can tell a run. */
export interface RunControl {
  /** The client went away: end the group, stop sending. */
  lost(): void;
  /** The client broke the protocol: end the group; `error` is the run's outcome. */
  fatal(error: Error): void;
  /**
   * Ends the group (SIGTERM, then SIGKILL) for `reason`, e.g. `eof_grace`;
   * output it still writes meanwhile is passed on as usual.
   */
  stop(reason: string): void;
  /** Resolves when the command and its group are done (stdin may still be arriving). */
  readonly ended: Promise<void>;
  /** Whether the command and its group are done. */
  isEnded(): boolean;
  /** The run's byte counts (the stdin feeder adds to `stdin`). */
  readonly stats: RunStats;
}

/** The protocol side of a run. */
export interface RunHooks {
  /**
   * Sends one chunk to the client; the next chunk of that stream is read only
   * after it resolves. The chunk is only valid until then.
   * @throws disconnect errors (the run then ends the group)
   */
  output(stream: OutputStream, chunk: Uint8Array): Promise<void>;
  /** Feeds the child's stdin (piped runs only); may go on after the run ended. */
  feed?(sink: StdinSink, control: RunControl): Promise<void>;
  /** Watches the client, calling `control.lost()` when it goes away. */
  watch?(control: RunControl): Promise<void>;
}

/** Limits of a run. */
export interface RunLimits {
  /** Longest run in ms before the group is ended; 0 for no limit. */
  timeoutMs: number;
  /** Most bytes of stdout plus stderr passed on; beyond, the group is ended. */
  maxOutput: number;
  /** SIGTERM → SIGKILL grace in ms. @default {KILL_GRACE_MS} */
  graceMs?: number;
  /** How long pipes are read after SIGKILL, in ms. @default {PIPE_LINGER_MS} */
  lingerMs?: number;
  /** Largest chunk handed to `output`. @default {65536} */
  chunkSize?: number;
}

/** How a run ended. Fields settle when {@linkcode runCommand} resolves, except `fatal`. */
export interface RunResult {
  /** The leader's exit status. */
  status: Deno.CommandStatus;
  /** The timeout fired. */
  timedOut: boolean;
  /** Output was cut at the budget. */
  truncated: boolean;
  /** The client went away. */
  disconnected: boolean;
  /** Why the group was ended early (`timeout`, `max_output`, …), if it was. */
  stopReason?: string;
  /** A protocol error from the client (may be set until `rest` resolves). */
  fatal?: Error;
  /** Byte counts. */
  stats: RunStats;
  /** Wall time from start until the group was done, in ms. */
  ms: number;
  /** Resolves when stdin feeding and client watching are over too. */
  rest: Promise<void>;
}

/**
 * Feeds a child's stdin, tolerating a child that stops reading: after a
 * failed write, or once abandoned, further bytes are dropped.
 */
export class StdinSink {
  #pipe: InputPipe | undefined;
  #broken = false;
  #abandon!: () => void;
  #abandoned: Promise<void>;

  /**
   * @param pipe the child's stdin
   */
  constructor(pipe: InputPipe) {
    this.#pipe = pipe;
    this.#abandoned = new Promise((resolve) => this.#abandon = resolve);
  }

  /**
   * Writes a chunk (waits while the pipe is full: back-pressure).
   * @param chunk the bytes; may be reused once this resolves
   */
  async write(chunk: Uint8Array): Promise<void> {
    if (!this.#pipe || this.#broken) return;
    const writing = this.#pipe.write(chunk).catch(() => {
      this.#broken = true;
    });
    // A process outside the group may hold the pipe without reading it.
    await Promise.race([writing, this.#abandoned]);
  }

  /** Ends the child's stdin (end of file). */
  async close(): Promise<void> {
    const pipe = this.#pipe;
    if (!pipe) return;
    this.#pipe = undefined;
    if (this.#broken) {
      pipe.abort();
      return;
    }
    await Promise.race([pipe.close().catch(() => {}), this.#abandoned]);
  }

  /** Stops feeding for good (the run is over or the client is gone). */
  abandon(): void {
    this.#broken = true;
    this.#abandon();
    const pipe = this.#pipe;
    this.#pipe = undefined;
    pipe?.abort();
  }
}

/**
 * Runs a started process group to its end under the limits.
 * @param group the started command (stdout and stderr piped)
 * @param limits timeout, output budget, grace periods
 * @param hooks where output goes, how stdin comes, how the client is watched
 * @returns how it ended, once the group is done
 */
export async function runCommand(
  group: ProcessGroup,
  limits: RunLimits,
  hooks: RunHooks,
): Promise<RunResult> {
  const started = performance.now();
  const graceMs = limits.graceMs ?? KILL_GRACE_MS;
  const lingerMs = limits.lingerMs ?? PIPE_LINGER_MS;
  const chunkSize = limits.chunkSize ?? 65536;
  const stats: RunStats = { stdin: 0, stdout: 0, stderr: 0 };
  const result = {
    timedOut: false,
    truncated: false,
    disconnected: false,
    stopReason: undefined as string | undefined,
    fatal: undefined as Error | undefined,
  };
  let budget = limits.maxOutput;
  let stopping: Promise<void> | undefined;
  let pumpsDone = false;
  let cutTimer: ReturnType<typeof setTimeout> | undefined;
  let ended = false;
  let markEnded!: () => void;
  const endedPromise = new Promise<void>((resolve) => markEnded = resolve);
  const readers: OutputPipe[] = [];

  const cutPipes = (): void => {
    for (const reader of readers) reader.cancel();
  };
  const stop = (reason: string): void => {
    if (stopping) return;
    result.stopReason = reason;
    stopping = group.terminate({ graceMs }).then(() => {
      if (!pumpsDone) cutTimer = setTimeout(cutPipes, lingerMs);
    });
  };
  const control: RunControl = {
    lost: () => {
      if (ended || result.disconnected) return;
      result.disconnected = true;
      stop("client disconnected");
      cutPipes();
    },
    fatal: (error) => {
      result.fatal ??= error;
      if (ended) return;
      stop("protocol error");
      cutPipes();
    },
    stop: (reason) => {
      if (!ended) stop(reason);
    },
    ended: endedPromise,
    isEnded: () => ended,
    stats,
  };
  const timer = limits.timeoutMs > 0
    ? setTimeout(() => {
      result.timedOut = true;
      stop("timeout");
    }, limits.timeoutMs)
    : undefined;

  const pump = async (reader: OutputPipe, name: OutputStream): Promise<void> => {
    readers.push(reader);
    // Most commands print little: start small, grow to chunkSize once a read fills it.
    let buffer = new ArrayBuffer(Math.min(INITIAL_CHUNK, chunkSize));
    try {
      for (;;) {
        const value = await reader.read(new Uint8Array(buffer));
        if (value === null) break;
        buffer = value.length === value.buffer.byteLength && value.length < chunkSize
          ? new ArrayBuffer(chunkSize)
          : value.buffer as ArrayBuffer;
        if (result.disconnected || result.truncated || result.fatal) break;
        let chunk: Uint8Array = value;
        if (chunk.length > budget) {
          chunk = chunk.subarray(0, budget);
          result.truncated = true;
        }
        budget -= chunk.length;
        stats[name] += chunk.length;
        if (chunk.length > 0) await hooks.output(name, chunk);
        if (result.truncated) {
          stop("max_output");
          cutPipes();
          break;
        }
      }
    } catch (error) {
      if (isDisconnect(error)) control.lost();
      else control.fatal(error as Error);
    } finally {
      reader.cancel();
    }
  };

  // Both are awaited only at the end: an unexpected error becomes the run's
  // outcome at once instead of an unhandled rejection.
  const sink = hooks.feed && group.stdin ? new StdinSink(group.stdin) : undefined;
  const feeding = sink
    ? hooks.feed!(sink, control).catch((error) => control.fatal(error as Error))
    : Promise.resolve();
  const watching = hooks.watch
    ? hooks.watch(control).catch((error) => control.fatal(error as Error))
    : Promise.resolve();

  let status: Deno.CommandStatus;
  try {
    [status] = await Promise.all([
      group.status,
      pump(group.stdout, "stdout"),
      group.stderr ? pump(group.stderr, "stderr") : undefined,
    ]);
  } finally {
    pumpsDone = true;
    clearTimeout(timer);
    // Leftovers of a finished command (`sleep 30 >/dev/null &`) are ended too.
    await (stopping ?? group.terminate({ graceMs }));
    clearTimeout(cutTimer);
    ended = true;
    markEnded();
    sink?.abandon();
  }
  const rest = Promise.all([feeding, watching]).then(() => {});
  return {
    status,
    get timedOut() {
      return result.timedOut;
    },
    get truncated() {
      return result.truncated;
    },
    get disconnected() {
      return result.disconnected;
    },
    get stopReason() {
      return result.stopReason;
    },
    get fatal() {
      return result.fatal;
    },
    stats,
    ms: Math.round(performance.now() - started),
    rest,
  };
}
