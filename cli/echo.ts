/**
 * `switchboard echo ADDR [TEXT…] [--udp]`: talks to an echo service. With
 * TEXT it sends it once and prints the reply; on a terminal it sends each line
 * typed and shows the replies; otherwise it copies stdin to the server and the
 * replies to stdout until end of input.
 *
 * @module
 */

import {
  type ClientAddress,
  durationOption,
  parseClientAddress,
  parseVerbArgs,
  UsageError,
} from "./args.ts";
import { ConnectError, connectTcp, formatAddress, networkReason } from "./connect.ts";
import { readLines } from "./lines.ts";
import { fail, OutputClosed, writeErr, writeOut } from "./output.ts";
import { networkPrinter } from "./stream_output.ts";
import { type ClientConn, TLS_OPTIONS, type TlsChoice, tlsChoice, tlsHelp } from "./tls_client.ts";
import { NoReplyError, UdpClient } from "./udp_client.ts";
import type { Verb } from "./verb.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { writeAll } from "../lib/write_all.ts";
import { echoService } from "../handlers/echo/mod.ts";

const HELP = `Usage: switchboard echo ADDR [TEXT...] [--udp] [--timeout DURATION]

Talks to an echo service. ADDR is host:port, [v6]:port or a bare host
(port ${echoService.defaultPort}).

  With TEXT      sends the words (and a newline on TCP) and prints the reply.
  On a terminal  sends each line you type and shows each reply; Ctrl-D ends.
  Otherwise      copies stdin to the server and the replies to stdout until
                 end of input (UDP: one datagram per line).

Options:
      --udp              use UDP instead of TCP
      --timeout DURATION how long to wait for a reply (default 2s)
${tlsHelp(25)}  -h, --help             show this help

Exit codes: 0 ok, 1 failure (one-line reason on stderr), 64 usage,
141 stdout was closed.
`;

const encoder = new TextEncoder();

async function runEcho(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, echoVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, ...words] = positionals;
  if (addrText === undefined) throw new UsageError("missing ADDR");
  const address = parseClientAddress(addrText, echoService.defaultPort);
  const timeoutMs = durationOption(values.timeout, "timeout") ?? 2000;
  const text = words.length > 0 ? words.join(" ") : undefined;
  if (values.udp && (values.tls || values.ca !== undefined || values.insecure)) {
    throw new UsageError("TLS needs TCP: --tls, --ca and --insecure do not go with --udp");
  }
  const tls = values.udp ? undefined : tlsChoice(values, "echo");
  try {
    return values.udp
      ? await echoUdp(address, text, timeoutMs)
      : await echoTcp(address, text, timeoutMs, tls);
  } catch (error) {
    if (error instanceof ConnectError || error instanceof NoReplyError) {
      return fail("echo", error.message);
    }
    if (error instanceof OutputClosed) throw error;
    return fail("echo", `${formatAddress(address)}: ${networkReason(error, address.hostname)}`);
  }
}

async function echoUdp(
  address: ClientAddress,
  text: string | undefined,
  timeoutMs: number,
): Promise<number> {
  using client = await UdpClient.open(address);
  const printer = networkPrinter();
  const ask = async (payload: Uint8Array): Promise<void> => {
    const reply = await client.request(payload, { timeoutMs });
    printer.write(reply);
    printer.flush();
    writeOut("\n");
  };
  if (text !== undefined) {
    await ask(encoder.encode(text));
    return ExitCode.Ok;
  }
  if (Deno.stdin.isTerminal()) {
    writeErr(`Talking to ${formatAddress(address)}/udp; one datagram per line, Ctrl-D ends\n`);
  }
  for await (const line of readLines(Deno.stdin)) await ask(line);
  return ExitCode.Ok;
}

async function echoTcp(
  address: ClientAddress,
  text: string | undefined,
  timeoutMs: number,
  tls: TlsChoice | undefined,
): Promise<number> {
  using conn = await connectTcp(address, { timeoutMs, tls });
  const printer = networkPrinter();
  if (text !== undefined) {
    const payload = encoder.encode(text + "\n");
    await writeAll(conn, payload);
    const received = await readAtLeast(conn, payload.length, timeoutMs, printer.write);
    printer.flush();
    if (received < payload.length) {
      return fail("echo", `the server closed after ${received} of ${payload.length} bytes`);
    }
    return ExitCode.Ok;
  }
  if (Deno.stdin.isTerminal()) {
    writeErr(`Connected to ${formatAddress(address)}/tcp; type lines, Ctrl-D ends\n`);
  }
  // Replies are printed while input is still being sent: a large input never
  // deadlocks against the server's echo filling our receive buffer.
  const replies = (async () => {
    const buffer = new Uint8Array(65536);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      printer.write(buffer.subarray(0, n));
    }
    printer.flush();
  })();
  const input = new Uint8Array(65536);
  for (let n = await Deno.stdin.read(input); n !== null; n = await Deno.stdin.read(input)) {
    await writeAll(conn, input.subarray(0, n));
  }
  await conn.closeWrite();
  await replies;
  return ExitCode.Ok;
}

/** Reads until `count` bytes arrived, the peer closed, or the timeout passed. */
async function readAtLeast(
  conn: ClientConn,
  count: number,
  timeoutMs: number,
  onData: (bytes: Uint8Array) => void,
): Promise<number> {
  const buffer = new Uint8Array(65536);
  let received = 0;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    while (received < count) {
      const n = await conn.read(buffer);
      if (n === null) break;
      onData(buffer.subarray(0, n));
      received += n;
    }
  } catch (error) {
    if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
      throw new Error(`no complete reply within ${timeoutMs}ms`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return received;
}

/** The `echo` verb. */
export const echoVerb: Verb = {
  name: "echo",
  usage: "ADDR [TEXT...] [--udp]",
  summary: "talk to an echo service",
  help: HELP,
  options: {
    udp: { type: "boolean" },
    timeout: { type: "string", value: "DURATION" },
    ...TLS_OPTIONS,
  },
  run: runEcho,
};
