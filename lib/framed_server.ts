/**
 * The request loop shared by the framed services (`cmd`, `file`): reads one
 * header at a time, checks `op` and the token, dispatches to the service's
 * operation, and applies the protocol's error rules (docs/protocol.md) — `bad_frame` closes the
 * connection; a request-level error keeps it usable, discarding a refused
 * body of at most 1 MiB (a larger one closes the connection).
 *
 * @module
 */

import { encodeFrame, FrameError, type FrameHeader, FrameReader } from "./header_codec.ts";
import { LogThrottle } from "./log_throttle.ts";
import { describeError, isDisconnect } from "./net_errors.ts";
import type { Connection, ConnectionContext } from "./service.ts";
import { tokenMatches } from "./token.ts";

/** The machine-readable error codes (docs/protocol.md, "Errors"). */
export type ErrorCode =
  | "bad_frame"
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "exists"
  | "too_large"
  | "checksum_mismatch"
  | "busy"
  | "io_error";

/** Options for {@linkcode RequestError}. */
export interface RequestErrorOptions {
  /**
   * Close the connection after the error frame (lingering), for errors after
   * which the stream cannot be trusted to be in step (e.g. a request that
   * sent more than its limit mid-stream). @default {false}
   */
  close?: boolean;
}

/** A refused request: the client gets `{"op":"error","code":…,"message":…}`. */
export class RequestError extends Error {
  /** The error code sent to the client. */
  readonly code: ErrorCode;
  /** Whether the connection is closed after the error frame. */
  readonly close: boolean;

  /**
   * @param code the error code
   * @param message human text for the client (no paths outside the root, no stack)
   * @param options whether to close the connection afterwards
   */
  constructor(code: ErrorCode, message: string, options: RequestErrorOptions = {}) {
    super(message);
    this.name = "RequestError";
    this.code = code;
    this.close = options.close ?? false;
  }
}

/** The largest refused body that is read and discarded to keep the connection. */
export const MAX_DISCARDED_BODY = 1024 * 1024;

// After a fatal error, how long (and how much) unread input is drained before
// closing, so that the error frame is not destroyed by a TCP reset.
const LINGER_MS = 2000;
const LINGER_BYTES = 4 * 1024 * 1024;

/** One request as an operation handler sees it. */
export interface FramedRequest {
  /** The request's header (`op` is a string; `token` already checked). */
  header: FrameHeader & { op: string };
  /** The connection's frame reader: the body (if any) is next. */
  frames: FrameReader;
  /** The connection, for writing replies and streaming bodies. */
  conn: Connection;
  /** The connection's context (signal, log, peer, busy marking). */
  context: ConnectionContext;
  /** Writes one frame (header plus optional body). */
  send(header: Record<string, unknown>, body?: Uint8Array): Promise<void>;
}

/** Serves one operation; throws {@linkcode RequestError} to refuse it. */
export type OperationHandler = (request: FramedRequest) => Promise<void>;

/** Options for {@linkcode serveFrames}. */
export interface ServeFramesOptions {
  /** The operations by `op` name. */
  operations: Readonly<Record<string, OperationHandler>>;
  /** When set, every request must carry it as `"token"`. */
  token?: string;
  /** Longest header accepted. @default {65536} */
  maxHeaderLength?: number;
  /**
   * The frame reader's buffer (it grows for a longer header; bodies are read
   * straight into the operation's array). Small for small requests: every
   * connection allocates one. @default {16384}
   */
  bufferSize?: number;
  /**
   * Called when the loop itself refuses a request (missing or unknown op,
   * missing or wrong token) before any operation runs, e.g. to log it.
   */
  onRefused?: (header: FrameHeader, error: RequestError) => void;
  /**
   * Throttles the "Malformed frame" log lines (at most one a second, with a
   * count): pass one throttle shared by all of a listener's connections, so
   * a fuzzing client cannot flood the log. @default {one per connection}
   */
  malformedLog?: LogThrottle;
}

/**
 * Encodes an error frame.
 * @param code the error code
 * @param message human text
 * @returns the frame's bytes
 */
export function errorFrame(code: ErrorCode, message: string): Uint8Array {
  return encodeFrame({ op: "error", code, message });
}

/**
 * Serves framed requests on a connection until the peer closes, a frame is
 * malformed, or the daemon stops between requests.
 * @param conn the connection
 * @param context the connection's context
 * @param options operations, token and header limit
 */
export async function serveFrames(
  conn: Connection,
  context: ConnectionContext,
  options: ServeFramesOptions,
): Promise<void> {
  const frames = new FrameReader(conn, {
    maxHeaderLength: options.maxHeaderLength,
    bufferSize: options.bufferSize,
    onPartialHeader: (pending) => context.setHeaderPending(pending),
  });
  const malformed = options.malformedLog ?? new LogThrottle();
  const send = (header: Record<string, unknown>, body?: Uint8Array): Promise<void> =>
    conn.writeAll(encodeFrame(header, body));
  for (;;) {
    let header: FrameHeader | null;
    try {
      header = await frames.readHeader();
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      await refuseFrame(conn, context, error, malformed);
      return;
    }
    if (header === null) return;
    context.setBusy(true);
    let dispatched = false;
    try {
      const op = header.op;
      if (op === undefined || op === "") {
        throw new RequestError("bad_request", 'Missing "op": every request names its operation');
      }
      if (typeof op !== "string") {
        throw new RequestError("bad_request", '"op" must be a string naming the operation');
      }
      if (options.token !== undefined && !tokenMatches(options.token, header.token)) {
        throw new RequestError("unauthorized", "Missing or wrong token");
      }
      const operation = Object.hasOwn(options.operations, op) ? options.operations[op] : undefined;
      if (!operation) {
        const known = Object.keys(options.operations).map((name) => `"${name}"`).join(", ");
        throw new RequestError("bad_request", `Unknown op "${op}" (expected ${known})`);
      }
      dispatched = true;
      await operation({
        header: header as FrameHeader & { op: string },
        frames,
        conn,
        context,
        send,
      });
      if (frames.bodyRemaining > 0) await frames.skipBody();
    } catch (error) {
      if (error instanceof RequestError) {
        if (!dispatched) options.onRefused?.(header, error);
        const remaining = frames.bodyRemaining;
        await send({ op: "error", code: error.code, message: error.message });
        if (remaining > MAX_DISCARDED_BODY || error.close) {
          await lingeringClose(conn);
          return;
        }
        if (remaining > 0) {
          // A refused body that never arrives whole (the client gave up or
          // lied about its size) is a malformed frame, not our failure.
          try {
            await frames.skipBody();
          } catch (cause) {
            if (!(cause instanceof FrameError)) throw cause;
            await refuseFrame(conn, context, cause, malformed);
            return;
          }
        }
      } else if (error instanceof FrameError) {
        await refuseFrame(conn, context, error, malformed);
        return;
      } else if (isDisconnect(error) || context.signal.aborted) {
        return;
      } else {
        context.log.warn(`Request failed: ${describeError(error)}`);
        await send({ op: "error", code: "io_error", message: "Internal error" }).catch(() => {});
        return;
      }
    } finally {
      context.setBusy(false);
    }
  }
}

async function refuseFrame(
  conn: Connection,
  context: ConnectionContext,
  error: FrameError,
  throttle: LogThrottle,
): Promise<void> {
  const count = throttle.hit(performance.now());
  if (count > 0) context.log.info(`Malformed frame: ${error.message}`, { count });
  if (error.reason === "truncated") return;
  try {
    await conn.writeAll(errorFrame("bad_frame", error.message));
    await lingeringClose(conn);
  } catch (cause) {
    if (!isDisconnect(cause)) throw cause;
  }
}

/**
 * Half-closes, then reads and discards what the peer is still sending (for a
 * bounded time and amount), so that closing does not send a reset that
 * would destroy the last frame before the peer reads it.
 * @param conn the connection
 */
export async function lingeringClose(conn: Connection): Promise<void> {
  try {
    await conn.closeWrite();
  } catch {
    return;
  }
  const buffer = new Uint8Array(16384);
  let drained = 0;
  const deadline = performance.now() + LINGER_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), LINGER_MS);
  });
  try {
    while (drained < LINGER_BYTES && performance.now() < deadline) {
      const n = await Promise.race([conn.read(buffer), timeout]);
      if (n === null) break;
      drained += n;
    }
  } catch {
    // The peer reset or went away: nothing left to protect.
  } finally {
    clearTimeout(timer);
  }
}
