/**
 * Helpers for the cmd tests: a listener config, and reading one command's
 * reply (output frames, then exit or error) off a framed connection.
 *
 * @module
 */

import { encodeFrame, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { liveGroupMembers } from "../lib/process_group.ts";
import { concatBytes, waitFor } from "./_helpers.ts";

/** The token the test listeners use. */
export const TOKEN = "test-token-7f3a";

/**
 * A config with one cmd listener named `cmd` on 127.0.0.1 port 0.
 * @param extra more keys for the listener (TOML lines)
 * @returns the TOML text
 */
export function cmdConfig(extra = ""): string {
  return `[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:0"
token = "${TOKEN}"
${extra}
`;
}

/** One output frame. */
export interface Output {
  /** `stdout` or `stderr`. */
  op: string;
  /** Its body. */
  bytes: Uint8Array;
}

/** A command's whole reply. */
export interface Reply {
  /** Output frames in arrival order. */
  outputs: Output[];
  /** The exit frame, if one came. */
  exit?: FrameHeader;
  /** The error frame, if one came. */
  error?: FrameHeader;
  /** The connection ended before exit or error. */
  closed: boolean;
}

/** A framed test connection. */
export class CmdConn {
  readonly conn: Deno.TcpConn;
  readonly frames: FrameReader;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.frames = new FrameReader(conn);
  }

  /**
   * Connects to the server's `cmd` listener.
   * @param port the port
   * @returns the connection
   */
  static async open(port: number): Promise<CmdConn> {
    return new CmdConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /**
   * Sends one frame (the token is added unless the header has one or `null`).
   * @param header the header
   * @param body the body
   */
  async send(header: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    const withToken = header.token === null
      ? Object.fromEntries(Object.entries(header).filter(([k]) => k !== "token"))
      : { token: TOKEN, ...header };
    await this.writeAll(encodeFrame(withToken, body));
  }

  /**
   * Writes raw bytes.
   * @param bytes the bytes
   */
  async writeAll(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(await this.conn.write(rest));
  }

  /**
   * Reads frames until an exit or error frame (or the end), bounded in time.
   * @param timeoutMs give up after this long (the connection is closed)
   * @returns the reply
   */
  async reply(timeoutMs = 20_000): Promise<Reply> {
    const reply: Reply = { outputs: [], closed: false };
    const timer = setTimeout(() => this.close(), timeoutMs);
    try {
      for (;;) {
        const header = await this.frames.readHeader();
        if (header === null) {
          reply.closed = true;
          return reply;
        }
        const bytes = new Uint8Array(header.size ?? 0);
        for (let got = 0; got < bytes.length;) {
          got += (await this.frames.readBody(bytes.subarray(got)))!;
        }
        if (header.op === "exit") {
          reply.exit = header;
          return reply;
        }
        if (header.op === "error") {
          reply.error = header;
          return reply;
        }
        reply.outputs.push({ op: String(header.op), bytes });
      }
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        throw new Error("No complete reply in time");
      }
      reply.closed = true;
      return reply;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends an exec request and reads its reply.
   * @param header the request (op is added)
   * @param body stdin as a body
   * @returns the reply
   */
  async exec(header: Record<string, unknown>, body?: Uint8Array): Promise<Reply> {
    await this.send({ op: "exec", ...header }, body);
    return await this.reply();
  }

  /** Closes the connection (idempotent). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Joins the bytes of the outputs of one stream.
 * @param reply the reply
 * @param op `stdout` or `stderr`
 * @returns the bytes
 */
export function joined(reply: Reply, op: string): Uint8Array {
  return concatBytes(reply.outputs.filter((o) => o.op === op).map((o) => o.bytes));
}

/**
 * The text of one stream.
 * @param reply the reply
 * @param op `stdout` or `stderr`
 * @returns the decoded text
 */
export function text(reply: Reply, op = "stdout"): string {
  return new TextDecoder().decode(joined(reply, op));
}

/**
 * Waits until no live process is left in a process group.
 * @param pgid the group
 * @param timeoutMs how long to wait
 */
export async function waitGroupGone(pgid: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(() => liveGroupMembers(pgid).length === 0, timeoutMs);
}
