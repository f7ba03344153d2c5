/**
 * The cmd service's optional `protocol = "line"`, for nc users: each line
 * received is run by the listener's shell and its raw output (stdout and
 * stderr mixed, as they come) is sent back. There is no framing and no exit
 * status; with a token, the first line must be the token.
 *
 * @module
 */

import { KILL_GRACE_MS, PIPE_LINGER_MS, runCommand } from "../../lib/command_run.ts";
import { RequestError } from "../../lib/framed_server.ts";
import { isDisconnect } from "../../lib/net_errors.ts";
import type { Connection, ConnectionContext } from "../../lib/service.ts";
import { tokenMatches } from "../../lib/token.ts";
import { type CmdState, OUTPUT_CHUNK, startCommand, takeSlot } from "./launch.ts";

/** The longest line accepted; a longer one ends the connection. */
export const MAX_LINE = 65536;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads lines (without `\n` / `\r\n`) from a connection, one at a time. */
class LineReader {
  #conn: Connection;
  #buf = new Uint8Array(MAX_LINE + 2);
  #start = 0;
  #end = 0;
  #eof = false;
  #setLinePending: (pending: boolean) => void;
  #linePending = false;

  /**
   * @param conn the connection
   * @param setLinePending told when a line has begun arriving and when it is complete
   */
  constructor(conn: Connection, setLinePending: (pending: boolean) => void) {
    this.#conn = conn;
    this.#setLinePending = setLinePending;
  }

  #pending(pending: boolean): void {
    if (pending === this.#linePending) return;
    this.#linePending = pending;
    this.#setLinePending(pending);
  }

  /** The next line, null at end of input, or "too long". */
  async next(): Promise<Uint8Array | null | "too long"> {
    for (;;) {
      const newline = this.#buf.subarray(this.#start, this.#end).indexOf(10);
      if (newline >= 0) {
        const end = this.#start + newline;
        const line = this.#buf.slice(
          this.#start,
          end > this.#start && this.#buf[end - 1] === 13 ? end - 1 : end,
        );
        this.#start = end + 1;
        this.#pending(false);
        return line;
      }
      if (this.#eof) {
        this.#pending(false);
        if (this.#end === this.#start) return null;
        const line = this.#buf.slice(this.#start, this.#end);
        this.#start = this.#end;
        return line;
      }
      if (this.#end - this.#start > MAX_LINE) {
        this.#pending(false);
        return "too long";
      }
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      this.#pending(this.#end > this.#start);
      const n = await this.#conn.read(this.#buf.subarray(this.#end));
      if (n === null) this.#eof = true;
      else this.#end += n;
    }
  }
}

/**
 * Serves the line protocol on one connection until the client stops sending
 * (running commands finish first) or goes away.
 * @param conn the connection
 * @param context signal, log and busy marking
 * @param state the listener's state
 */
export async function serveLines(
  conn: Connection,
  context: ConnectionContext,
  state: CmdState,
): Promise<void> {
  const lines = new LineReader(conn, (pending) => context.setHeaderPending(pending));
  const say = (text: string): Promise<void> => conn.writeAll(encoder.encode(text));
  try {
    if (state.options.token !== undefined) {
      const first = await lines.next();
      if (first === null) return;
      if (first === "too long" || !tokenMatches(state.options.token, decoder.decode(first))) {
        context.log.info("Line client refused: missing or wrong token");
        await say("error: unauthorized (send the token as the first line)\n");
        return;
      }
    }
    // While stopping, the supervisor closes the connection once it is quiet.
    for (;;) {
      const line = await lines.next();
      if (line === null) return;
      if (line === "too long") {
        await say(`error: line too long (over ${MAX_LINE} bytes)\n`);
        return;
      }
      const text = decoder.decode(line);
      if (text.trim() === "") continue;
      context.setBusy(true);
      try {
        const alive = await runLine(text, conn, context, state);
        if (!alive) return;
      } finally {
        context.setBusy(false);
      }
    }
  } catch (error) {
    if (!isDisconnect(error)) throw error;
  }
}

/** Runs one line; false when the client went away. */
async function runLine(
  text: string,
  conn: Connection,
  context: ConnectionContext,
  state: CmdState,
): Promise<boolean> {
  if (text.includes("\0")) {
    await conn.writeAll(encoder.encode("error: a command must not contain NUL\n"));
    return true;
  }
  let release: () => void;
  try {
    release = await takeSlot(state);
  } catch (error) {
    if (!(error instanceof RequestError)) throw error;
    context.log.info("Command refused", { code: error.code, command: text });
    await conn.writeAll(encoder.encode(`error: busy (${error.message})\n`));
    return true;
  }
  try {
    const cwd = state.options.workdir ?? Deno.cwd();
    const launched = await startCommand({ argv: [...state.options.shell, text], text }, {
      cwd,
      stdin: "null",
      state,
    });
    if ("problem" in launched) {
      await conn.writeAll(encoder.encode(`switchboard: ${launched.problem.message}\n`));
      context.log.info("Command finished", { command: text, code: launched.problem.code });
      return true;
    }
    const group = launched.group;
    state.groups.add(group);
    const running = runCommand(group, {
      timeoutMs: state.options.timeoutMs,
      maxOutput: state.options.maxOutput,
      graceMs: KILL_GRACE_MS,
      lingerMs: PIPE_LINGER_MS,
      chunkSize: OUTPUT_CHUNK,
    }, {
      // Both streams go to the connection as they come: the raw output nc shows.
      output: (_stream, chunk) => conn.writeAll(chunk),
    });
    state.runs.add(running);
    let result;
    try {
      result = await running;
    } finally {
      state.runs.delete(running);
      state.groups.delete(group);
    }
    state.pool?.replenish();
    const { status } = result;
    context.log.info("Command finished", {
      command: text,
      pid: group.pid,
      code: status.signal ? null : status.code,
      signal: status.signal ?? null,
      timed_out: result.timedOut,
      truncated: result.truncated,
      ms: result.ms,
      stdout: result.stats.stdout,
      stderr: result.stats.stderr,
      outcome: result.disconnected ? "client disconnected" : result.stopReason ?? "exited",
    });
    return !result.disconnected;
  } finally {
    release();
  }
}
