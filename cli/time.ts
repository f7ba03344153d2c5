/**
 * `switchboard time ADDR [FORMAT]`: asks a time service for the current time
 * in a format (strftime `%Y-%m-%d` or tokens `YYYY-MM-DD`), over UDP with a
 * few retries, or over TCP. `--rfc868` reads an RFC 868 listener's 4 bytes.
 *
 * @module
 */

import { durationOption, parseClientAddress, parseVerbArgs, UsageError } from "./args.ts";
import type { ClientAddress } from "./args.ts";
import { fail, writeOut } from "./output.ts";
import { networkPrinter } from "./stream_output.ts";
import {
  type ClientConn,
  connectClient,
  TLS_OPTIONS,
  type TlsChoice,
  tlsChoice,
  tlsHelp,
} from "./tls_client.ts";
import { NoReplyError, UdpClient } from "./udp_client.ts";
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { describeError } from "../lib/net_errors.ts";
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

Exit codes: 0 ok, 1 no reply or an error reply (one-line reason on stderr),
64 usage.
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function runTime(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, {
    tcp: { type: "boolean" },
    rfc868: { type: "boolean" },
    timeout: { type: "string" },
    ...TLS_OPTIONS,
  });
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
    return fail("time", describeError(error));
  }
  return values.rfc868 ? printRfc868(reply) : printReply(reply, format);
}

async function askUdp(
  address: ClientAddress,
  format: string,
  timeoutMs: number,
): Promise<Uint8Array> {
  using client = new UdpClient(address);
  return await client.request(encoder.encode(format), { timeoutMs, attempts: ATTEMPTS });
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
  const conn = await connectWithin(address, timeoutMs, tls);
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const received = new Uint8Array(MAX_REPLY_BYTES + 1);
  let length = 0;
  try {
    if (format !== undefined) {
      try {
        await writeAll(conn, encoder.encode(format + "\n"));
      } catch {
        // A daytime listener may have answered and closed already: read it.
      }
    }
    while (length < received.length) {
      let n: number | null;
      try {
        n = await conn.read(received.subarray(length));
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          throw new NoReplyError(
            `no reply from ${address.hostname}:${address.port} within ${timeoutMs}ms`,
          );
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
    throw new NoReplyError(`${address.hostname}:${address.port} closed without replying`);
  }
  const reply = received.subarray(0, length);
  if (format === undefined) return reply;
  const newline = reply.indexOf(10);
  return newline < 0 ? reply : reply.subarray(0, newline + 1);
}

async function connectWithin(
  address: ClientAddress,
  timeoutMs: number,
  tls: TlsChoice | undefined,
): Promise<ClientConn> {
  const connecting = connectClient(address, tls);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NoReplyError(`could not connect within ${timeoutMs}ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([connecting, timeout]);
  } catch (error) {
    connecting.then((conn) => conn.close(), () => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
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
      `expected the 4 bytes of an rfc868 listener, got ${reply.length} bytes ("${shown}")`,
    );
  }
  const ms = decodeRfc868(reply, Date.now());
  writeOut(new Date(ms).toISOString().replace(".000Z", "Z") + "\n");
  return ExitCode.Ok;
}

/** The `time` verb. */
export const timeVerb: Verb = {
  name: "time",
  synopsis: "time  ADDR [FORMAT] [--tcp]          ask a time service",
  help: HELP,
  run: runTime,
};
