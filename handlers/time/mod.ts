/**
 * The time service. In `format` mode each request is a format string and
 * gets exactly one reply: the current time in the listener's zone, or
 * `error: <why>` (UDP: one datagram in, one out; TCP: one line in, one line
 * out, the connection stays open). `daytime` (RFC 867) sends one ASCII line
 * and `rfc868` (RFC 868) four bytes: on UDP in answer to any datagram, on TCP
 * at connect, then the connection closes. `append_newline` ends each UDP
 * reply of a format listener with `\n`, for people reading with `nc -u`.
 *
 * @module
 */

import type { Connection, ConnectionContext, Service, Transport } from "../../lib/service.ts";
import { defineService } from "../../lib/service.ts";
import { LineSplitter, OVER_LIMIT } from "./line_splitter.ts";
import { compileStrftime } from "./strftime.ts";
import {
  checkDefaultFormat,
  DEFAULT_TIME_FORMAT,
  MAX_FORMAT_BYTES,
  MAX_REPLY_BYTES,
  stripLineEnd,
  TimeReplier,
} from "./replies.ts";
import { DAYTIME_FORMAT, encodeRfc868 } from "./wire.ts";
import { resolveTimeZone, systemTimeZone, ZonedClock } from "../../lib/zoned_time.ts";
import { DEFAULT_ZONEINFO } from "../../lib/zone_abbreviations.ts";

/** What a time listener answers with. */
export type TimeMode = "format" | "daytime" | "rfc868";

/** Options of a time listener. */
export interface TimeOptions {
  /** `format`, `daytime` (RFC 867) or `rfc868`. */
  mode: TimeMode;
  /** The IANA zone replies are in (the system zone by default). */
  timezone: string;
  /** The format an empty request gets. */
  defaultFormat: string;
  /** The largest reply in bytes (one less with a `\n` to add: on TCP, or `append_newline`). */
  maxReply: number;
  /** UDP: end each reply with `\n` (format mode; a daytime line ends with CRLF already). */
  appendNewline: boolean;
}

/** Test seams of {@linkcode createTimeService}. */
export interface TimeServiceOptions {
  /** The wall clock in ms since the epoch. @default {Date.now} */
  now?: () => number;
  /** Directory of TZif files for `%Z` names. @default {$TZDIR or /usr/share/zoneinfo} */
  zoneinfo?: string;
}

// Bytes read per TCP read, and replies gathered before a write.
const TCP_READ_BUFFER = 4096;
const TCP_WRITE_BATCH = 16384;

const encoder = new TextEncoder();

/**
 * Serves format requests on a TCP connection, one line in, one line out,
 * until the peer closes or the daemon stops. Lines over the format limit get
 * an error reply and are discarded up to their newline; memory stays bounded.
 * @param conn the connection
 * @param context signal and busy marking
 * @param replier answers one format
 */
export async function serveTimeLines(
  conn: Connection,
  context: ConnectionContext,
  replier: TimeReplier,
): Promise<void> {
  const input = new Uint8Array(TCP_READ_BUFFER);
  const output = new Uint8Array(TCP_WRITE_BATCH + MAX_REPLY_BYTES);
  let used = 0;
  const add = (reply: Uint8Array): void => {
    output.set(reply, used);
    output[used + reply.length] = 10;
    used += reply.length + 1;
  };
  const flush = async (): Promise<void> => {
    if (used === 0) return;
    const batch = output.subarray(0, used);
    used = 0;
    await conn.writeAll(batch);
  };
  const splitter = new LineSplitter(MAX_FORMAT_BYTES);
  // A line split across reads is a request header still arriving.
  let partial = false;
  // While stopping, the supervisor closes the connection once it is quiet.
  for (;;) {
    const n = await conn.read(input);
    if (n === null) break;
    context.setBusy(true);
    splitter.feed(input.subarray(0, n));
    for (let line = splitter.next(); line !== undefined; line = splitter.next()) {
      add(line === OVER_LIMIT ? replier.tooLong : replier.reply(line));
      if (used >= TCP_WRITE_BATCH) await flush();
    }
    await flush();
    context.setBusy(false);
    if (splitter.pending !== partial) {
      partial = !partial;
      context.setHeaderPending(partial);
    }
  }
  const last = splitter.finish();
  if (last !== null) {
    context.setBusy(true);
    add(last === OVER_LIMIT ? replier.tooLong : replier.reply(last));
    await flush();
    context.setBusy(false);
  }
}

/** The reply of a daytime or rfc868 listener, made at most once a second. */
function fixedReply(options: TimeOptions, clock: ZonedClock, now: () => number): () => Uint8Array {
  if (options.mode === "rfc868") return () => encodeRfc868(now());
  const daytime = compileStrftime(DAYTIME_FORMAT);
  let second = NaN;
  let bytes = new Uint8Array(0);
  return () => {
    const current = Math.floor(now() / 1000);
    if (current !== second) {
      bytes = encoder.encode(daytime.format(clock.fieldsAt(current * 1000)) + "\r\n");
      second = current;
    }
    return bytes;
  };
}

function maxReplyFor(transport: Transport, appendNewline: boolean): number {
  // A TCP reply is a line: with its "\n" it stays within the limit too.
  return transport === "tcp" || appendNewline ? MAX_REPLY_BYTES - 1 : MAX_REPLY_BYTES;
}

/**
 * Appends `\n` to replies, making each distinct reply array once: the
 * replier hands out the same bytes for a format all through a second, so
 * the copy is made once a second per format, not once per request.
 */
function newlineAppender(): (reply: Uint8Array) => Uint8Array {
  const lines = new WeakMap<Uint8Array, Uint8Array>();
  return (reply) => {
    let line = lines.get(reply);
    if (line === undefined) {
      line = new Uint8Array(reply.length + 1);
      line.set(reply);
      line[reply.length] = 10;
      lines.set(reply, line);
    }
    return line;
  };
}

/**
 * Builds the time service's table entry (tests inject a wall clock).
 * @param seams the wall clock and the TZif directory
 * @returns the service
 */
export function createTimeService(seams: TimeServiceOptions = {}): Service {
  const now = seams.now ?? Date.now;
  return defineService<TimeOptions>({
    name: "time",
    transports: ["udp", "tcp"],
    defaultPort: 7037,
    embeddedDefault: () => ({ listeners: [{ name: "time", transport: "udp" }] }),
    parseOptions(reader, transport) {
      const mode = reader.string("mode", {
        default: "format",
        choices: ["format", "daytime", "rfc868"],
      }) as TimeMode;
      let timezone = systemTimeZone();
      const zoneText = reader.string("timezone");
      if (zoneText !== undefined) {
        try {
          timezone = resolveTimeZone(zoneText);
        } catch (error) {
          reader.problem("timezone", (error as Error).message);
        }
      }
      const appendNewline = reader.boolean("append_newline", false);
      if (appendNewline) {
        if (transport === "tcp") {
          reader.problem("append_newline", "has no effect on a tcp listener (a reply is a line)");
        } else if (mode === "rfc868") {
          reader.problem(
            "append_newline",
            'cannot be used with mode = "rfc868": its reply is 4 binary bytes',
          );
        }
        // A daytime line already ends with CRLF: nothing to add.
      }
      const maxReply = maxReplyFor(transport, appendNewline && mode === "format");
      const defaultFormat = reader.string("default_format", { default: DEFAULT_TIME_FORMAT });
      if (reader.has("default_format")) {
        const problem = checkDefaultFormat(defaultFormat, maxReply);
        if (problem) reader.problem("default_format", problem);
      }
      return { mode, timezone, defaultFormat, maxReply, appendNewline };
    },
    describe(options) {
      const parts = [`mode=${options.mode}`];
      // RFC 868 counts seconds in UTC: the zone plays no part there.
      if (options.mode !== "rfc868") parts.push(`timezone=${options.timezone}`);
      if (options.mode === "format" && options.defaultFormat !== DEFAULT_TIME_FORMAT) {
        parts.push(`default_format=${JSON.stringify(options.defaultFormat)}`);
      }
      if (options.appendNewline) parts.push("append_newline");
      return parts.join(" ");
    },
    open(options, listener) {
      const clock = new ZonedClock(
        options.timezone,
        seams.zoneinfo === undefined ? {} : { zoneinfo: seams.zoneinfo },
      );
      if (!clock.abbreviationsFromTzif) {
        listener.log.warn(
          `No TZif data for "${options.timezone}" (looked in $TZDIR or ${DEFAULT_ZONEINFO}): ` +
            "%Z uses Intl's short names or numeric offsets",
        );
      }
      if (options.mode !== "format") {
        const reply = fixedReply(options, clock, now);
        return {
          datagram: (_data, from) => listener.send(reply(), from),
          stream: async (conn, context) => {
            context.setBusy(true);
            await conn.writeAll(reply());
            context.setBusy(false);
          },
        };
      }
      const replier = new TimeReplier({
        clock,
        defaultFormat: options.defaultFormat,
        now,
        maxReply: options.maxReply,
      });
      const line = options.appendNewline ? newlineAppender() : undefined;
      return {
        datagram: line
          ? (data, from) => listener.send(line(replier.reply(stripLineEnd(data))), from)
          : (data, from) => listener.send(replier.reply(stripLineEnd(data)), from),
        stream: (conn, context) => serveTimeLines(conn, context, replier),
      };
    },
  });
}

/** The time service's entry in the service table. */
export const timeService: Service = createTimeService();
