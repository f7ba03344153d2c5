/**
 * `switchboard time ADDR [FORMAT]`: asks a time service for the current time
 * in a format (strftime `%Y-%m-%d` or tokens `YYYY-MM-DD`), over UDP with a
 * few retries, or over TCP. `--rfc868` reads an RFC 868 listener's 4 bytes.
 *
 * @module
 */

import { durationOption, parseClientAddress, parseVerbArgs, UsageError } from "./args.ts";
import type { ClientAddress } from "./args.ts";
import { ConnectError, connectTcp, formatAddress, networkReason } from "./connect.ts";
import { fail, OutputClosed, writeOut } from "./output.ts";
import { networkPrinter } from "./stream_output.ts";
import { TLS_OPTIONS, type TlsChoice, tlsChoice, tlsHelp } from "./tls_client.ts";
import { NoReplyError, UdpClient } from "./udp_client.ts";
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { MAX_REPLY_BYTES, stripLineEnd } from "../handlers/time/replies.ts";
import { decodeRfc868 } from "../handlers/time/wire.ts";
import { writeAll } from "../lib/write_all.ts";
import { timeService } from "../handlers/time/mod.ts";

const DEFAULT_PORT = timeService.defaultPort;
const ATTEMPTS = 3;

const HELP = `Usage: switchboard time ADDR [FORMAT...] [--tcp] [--rfc868] [--timeout DURATION]

Asks a time service for the current time. ADDR is host:port, [v6]:port or a
bare host (port ${DEFAULT_PORT}). FORMAT (several words are joined with spaces) is
strftime when it contains "%" ("%Y-%m-%d %H:%M:%S %Z"), otherwise Moment/Day.js
tokens ("YYYY-MM-DD HH:mm:ss", "[literal]"); without it the listener's
default_format is used. The reply is printed on one line.

Options:
      --tcp              use TCP (one line in, one line out) instead of UDP
      --rfc868           the listener is in rfc868 mode: decode its 4 bytes and
                         print the time as ISO 8601 UTC
      --timeout DURATION how long to wait for each reply (default 2s; UDP
                         sends up to ${ATTEMPTS} times)
${tlsHelp(25)}                         (TLS implies --tcp)
  -h, --help             show this help

Without --tcp, a port that stays silent over UDP but accepts TCP gets a hint
after the first try; a 4-byte reply that reads as an RFC 868 time gets one
to use --rfc868.

Exit codes: 0 ok, 1 no reply or an error reply (one-line reason on stderr),
64 usage, 141 stdout was closed.
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const YEAR_MS = 366 * 86_400_000;

async function runTime(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, timeVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, ...words] = positionals;
  if (addrText === undefined) throw new UsageError("missing ADDR");
  const address = parseClientAddress(addrText, DEFAULT_PORT);
  const timeoutMs = durationOption(values.timeout, "timeout") ?? 2000;
  const format = words.join(" ");
  if (values.rfc868 && format !== "") {
    throw new UsageError("--rfc868 takes no FORMAT (the listener sends a fixed 4 bytes)");
  }
  const tls = tlsChoice(values, "time");
  let reply: Uint8Array;
  try {
    reply = values.tcp || tls
      ? await askTcp(address, values.rfc868 ? undefined : format, timeoutMs, tls)
      : await askUdp(address, format, timeoutMs);
  } catch (error) {
    if (error instanceof NoReplyError) return fail("time", error.message);
    if (error instanceof ConnectError) {
      // Nothing on TCP there: the common case is a UDP listener (the default).
      const hint = values.tcp && error.message.endsWith("connection refused")
        ? " (time services listen on UDP unless configured for TCP: try without --tcp)"
        : "";
      return fail("time", error.message + hint);
    }
    if (error instanceof OutputClosed) throw error;
    return fail("time", `${formatAddress(address)}: ${networkReason(error, address.hostname)}`);
  }
  if (values.rfc868) return printRfc868(reply);
  const seen = rfc868Time(reply);
  if (seen !== undefined) {
    return fail(
      "time",
      `got 4 bytes that read as the RFC 868 time ${seen}, not a line: the listener is in ` +
        `rfc868 mode; try --rfc868`,
    );
  }
  return printReply(reply, format);
}

/**
 * The reply as an RFC 868 time, when it is 4 bytes with no line end that
 * decode to within a year of our clock: what an rfc868 listener sends.
 */
function rfc868Time(reply: Uint8Array): string | undefined {
  if (reply.length !== 4 || reply.includes(10)) return undefined;
  const now = Date.now();
  const ms = decodeRfc868(reply, now);
  return Math.abs(ms - now) <= YEAR_MS ? isoSeconds(ms) : undefined;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/**
 * Asks over UDP. When the first attempt gets no reply, a TCP connection to
 * the same port is tried: if TCP answers, the listener is most likely a TCP
 * one, and more attempts would not help.
 */
async function askUdp(
  address: ClientAddress,
  format: string,
  timeoutMs: number,
): Promise<Uint8Array> {
  using client = await UdpClient.open(address);
  const request = encoder.encode(format);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    await client.send(request);
    const reply = await client.receive(timeoutMs);
    if (reply) return reply;
    if (attempt === 1 && await probeTcp(address, timeoutMs)) {
      throw new NoReplyError(
        `no reply over UDP from ${formatAddress(address)} within ${timeoutMs}ms, but it accepts ` +
          `TCP connections: is it a TCP listener? Try --tcp`,
      );
    }
  }
  throw new NoReplyError(`no reply from ${formatAddress(address)} after ${ATTEMPTS} attempt(s)`);
}

/** Whether a TCP connection to the address succeeds (closed at once). */
async function probeTcp(address: ClientAddress, timeoutMs: number): Promise<boolean> {
  try {
    const conn = await connectTcp(address, { timeoutMs });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends the format as one line (unless `format` is undefined: an rfc868 or
 * daytime listener speaks first) and reads one line, or everything until
 * the server closes.
 */
async function askTcp(
  address: ClientAddress,
  format: string | undefined,
  timeoutMs: number,
  tls: TlsChoice | undefined,
): Promise<Uint8Array> {
  const conn = await connectTcp(address, { timeoutMs, tls });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const received = new Uint8Array(MAX_REPLY_BYTES + 1);
  let length = 0;
  try {
    if (format !== undefined) {
      try {
        await writeAll(conn, encoder.encode(format + "\n"));
      } catch {
        // A daytime or rfc868 listener may have answered and closed already: read it.
      }
    }
    while (length < received.length) {
      let n: number | null;
      try {
        n = await conn.read(received.subarray(length));
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          throw new NoReplyError(`no reply from ${formatAddress(address)} within ${timeoutMs}ms`);
        }
        // A reset right after the reply (the server closed with our line unread).
        if (length > 0 && error instanceof Deno.errors.ConnectionReset) break;
        throw error;
      }
      if (n === null) break;
      length += n;
      if (format !== undefined && received.subarray(0, length).includes(10)) break;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
  if (length === 0) {
    throw new NoReplyError(`${formatAddress(address)} closed without replying`);
  }
  const reply = received.subarray(0, length);
  if (format === undefined) return reply;
  const newline = reply.indexOf(10);
  return newline < 0 ? reply : reply.subarray(0, newline + 1);
}

function printReply(reply: Uint8Array, format: string): number {
  const line = stripLineEnd(reply);
  const text = decoder.decode(line);
  // A format that itself starts with "error: " makes such a reply legitimately.
  if (text.startsWith("error: ") && !format.startsWith("error: ")) {
    return fail("time", `the server refused the request: ${text.slice("error: ".length)}`);
  }
  const printer = networkPrinter();
  printer.write(line);
  printer.flush();
  writeOut("\n");
  return ExitCode.Ok;
}

function printRfc868(reply: Uint8Array): number {
  if (reply.length !== 4) {
    const shown = escapeControl(decoder.decode(reply.subarray(0, 40)));
    return fail(
      "time",
      `expected the 4 bytes of an rfc868 listener, got ${reply.length} bytes ("${shown}"): ` +
        "the listener is in another mode; try without --rfc868",
    );
  }
  writeOut(isoSeconds(decodeRfc868(reply, Date.now())) + "\n");
  return ExitCode.Ok;
}

/** The `time` verb. */
export const timeVerb: Verb = {
  name: "time",
  usage: "ADDR [FORMAT] [--tcp]",
  summary: "ask a time service",
  help: HELP,
  options: {
    tcp: { type: "boolean" },
    rfc868: { type: "boolean" },
    timeout: { type: "string", value: "DURATION" },
    ...TLS_OPTIONS,
  },
  run: runTime,
};
