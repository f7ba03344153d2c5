/**
 * `switchboard cmd ADDR [--token T] [--argv] -- COMMAND…`: runs a command on
 * a cmd service like ssh does: remote stdout and stderr go to local stdout
 * and stderr as they arrive (raw bytes: this is a pipe tool), local stdin is
 * streamed when it is not a terminal, and the exit code is the remote one.
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
import { exitCodeFor, OWN_FAILURE } from "./cmd_exit.ts";
import { ConnectError, formatAddress, networkReason } from "./connect.ts";
import { FramedClient } from "./framed_client.ts";
import { OutputClosed, outputClosed, writeErr, writeOut, writeOutAsync } from "./output.ts";
import { TLS_OPTIONS, tlsChoice, tlsHelp } from "./tls_client.ts";
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { FrameError } from "../lib/header_codec.ts";
import { isDisconnect } from "../lib/net_errors.ts";
import { writeAll } from "../lib/write_all.ts";
import { cmdService } from "../handlers/cmd/mod.ts";

const HELP = `Usage: switchboard cmd ADDR [OPTIONS] [--] COMMAND...

Runs COMMAND on a cmd service and exits with its status, like ssh. ADDR is
host:port, [v6]:port or a bare host (port ${cmdService.defaultPort}).

COMMAND's words are joined with spaces and run by the server's shell (quote
the whole command to keep quoting: -- 'ls "my dir"'); with --argv they are a
program and its arguments, run without a shell. Remote stdout and stderr go
to stdout and stderr as they arrive, byte for byte. When stdin is not a
terminal it is sent to the command (e.g. tar c . | switchboard cmd HOST --
tar x -C /dst); otherwise the command reads an empty stdin.

Options:
      --token TOKEN        the listener's token (default: $SWITCHBOARD_TOKEN;
                           prefer the variable: arguments show in ps)
      --argv               send COMMAND as argv, without a remote shell
  -n, --no-stdin           do not send stdin (the command reads /dev/null)
      --cwd DIR            working directory on the server (with a listener
                           workdir: resolved against it and kept inside it)
      --timeout DURATION   a shorter timeout than the server's, e.g. 10s
${tlsHelp(27)}  -h, --help               show this help

Exit codes: the remote command's own; 124 it timed out; 128+n it was killed
by signal n; 255 this client failed (cannot connect, unauthorized, refused,
connection lost, not a framed cmd listener); 141 local stdout was closed;
64 usage.
`;

/**
 * Splits the command line into the verb's own part and COMMAND: at `--`, or
 * else at the second word that is not an option (the first is ADDR), so that
 * `switchboard cmd host ls -l` runs `ls -l`.
 * @param args the arguments after `cmd`
 * @returns the options part and the command words
 */
export function splitCommand(args: readonly string[]): { own: string[]; command: string[] } {
  const dashes = args.indexOf("--");
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (i === dashes) return { own: args.slice(0, i), command: args.slice(i + 1) };
    if (arg.startsWith("-") && arg !== "-") {
      if (takesValue(arg)) i++;
      continue;
    }
    positionals++;
    if (positionals === 2) return { own: args.slice(0, i), command: args.slice(i) };
  }
  return { own: [...args], command: [] };
}

/** Whether `--name` (or `-x`) is one of cmd's options that take a value. */
function takesValue(arg: string): boolean {
  return Object.entries(cmdVerb.options).some(([name, spec]) =>
    spec.type === "string" &&
    (arg === `--${name}` || (spec.short !== undefined && arg === `-${spec.short}`))
  );
}

function ownFailure(reason: string): number {
  writeErr(`switchboard cmd: ${escapeControl(reason)}\n`);
  return OWN_FAILURE;
}

async function runCmd(args: string[]): Promise<number> {
  const { own, command } = splitCommand(args);
  const { values, positionals } = parseVerbArgs(own, cmdVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, ...extra] = positionals;
  if (addrText === undefined) throw new UsageError("missing ADDR");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" before "--"`);
  if (command.length === 0) throw new UsageError("missing COMMAND");
  const address = parseClientAddress(addrText, cmdService.defaultPort);
  const header: Record<string, unknown> = { op: "exec" };
  if (values.argv) header.argv = command;
  else header.cmd = command.join(" ");
  if (values.cwd !== undefined) header.cwd = values.cwd;
  const timeoutMs = durationOption(values.timeout, "timeout");
  if (timeoutMs !== undefined) header.timeout_ms = timeoutMs;
  const sendStdin = !values["no-stdin"] && !Deno.stdin.isTerminal();
  if (sendStdin) header.stdin = "stream";
  const token = (values.token as string | undefined) ??
    (Deno.env.get("SWITCHBOARD_TOKEN") || undefined);

  let client: FramedClient;
  try {
    client = await FramedClient.connect(address, { token, tls: tlsChoice(values, "cmd") });
  } catch (error) {
    if (error instanceof ConnectError) return ownFailure(error.message);
    throw error;
  }
  const replies = { count: 0 };
  try {
    await client.send(header);
    if (sendStdin) void streamStdin(client);
    return await receive(client, address, replies);
  } catch (error) {
    if (error instanceof OutputClosed || outputClosed()) return ExitCode.OutputClosed;
    if (error instanceof FrameError) {
      return ownFailure(
        `the reply from ${formatAddress(address)} is not a framed message (${error.message}): ` +
          NOT_FRAMED_HINT,
      );
    }
    if (isDisconnect(error)) {
      return ownFailure(
        `connection lost: ${networkReason(error, address.hostname)}` +
          (replies.count === 0 ? `; ${NOT_FRAMED_HINT}` : ""),
      );
    }
    throw error;
  } finally {
    client.close();
  }
}

/** What to try when a port does not answer in frames. */
const NOT_FRAMED_HINT = 'is it a cmd listener with protocol = "line"? That one takes one ' +
  "shell line per line, as from nc: printf '%s\\n' 'uptime' | nc HOST PORT";

/** Sends local stdin as `stdin` frames, then `eof`; stops quietly if the connection goes. */
async function streamStdin(client: FramedClient): Promise<void> {
  const buffer = new Uint8Array(65536);
  try {
    for (let n = await Deno.stdin.read(buffer); n !== null; n = await Deno.stdin.read(buffer)) {
      if (n > 0) await client.send({ op: "stdin" }, buffer.subarray(0, n));
    }
    await client.send({ op: "eof" });
  } catch {
    // The reply loop reports a lost connection; a stdin read error ends input.
    await client.send({ op: "eof" }).catch(() => {});
  }
}

/**
 * Copies output frames to stdout/stderr until the exit frame; counts the
 * frames received, so that a close before any says what the port may be.
 */
async function receive(
  client: FramedClient,
  address: ClientAddress,
  replies: { count: number },
): Promise<number> {
  const buffer = new Uint8Array(65536);
  for (;;) {
    const header = await client.frames.readHeader();
    if (header === null) {
      return ownFailure(
        replies.count === 0
          ? `${formatAddress(address)} closed the connection without replying: ${NOT_FRAMED_HINT}`
          : "connection lost: the server closed the connection",
      );
    }
    replies.count++;
    if (replies.count === 1 && header.op === "exec") {
      await client.frames.skipBody().catch(() => {});
      return ownFailure(
        `${formatAddress(address)} sent the request back: it is an echo service, ` +
          "not a cmd listener",
      );
    }
    if (header.op === "stdout" || header.op === "stderr") {
      const stdout = header.op === "stdout";
      for (;;) {
        const n = await client.frames.readBody(buffer);
        if (n === null) break;
        const bytes = buffer.subarray(0, n);
        if (stdout) await writeOutAsync(bytes);
        else {
          // A closed stderr ends the command's client as a closed stdout does.
          await writeAll(Deno.stderr, bytes).catch((error) => {
            throw error instanceof Deno.errors.BrokenPipe ? new OutputClosed() : error;
          });
        }
      }
      continue;
    }
    if (client.frames.bodyRemaining > 0) await client.frames.skipBody();
    if (header.op === "exit") {
      if (header.truncated === true) {
        writeErr("switchboard cmd: output truncated at the server's max_output\n");
      }
      return exitCodeFor(header);
    }
    if (header.op === "error") {
      return ownFailure(`${String(header.code)}: ${String(header.message ?? "")}`);
    }
    // Unknown frames are ignored: newer servers may add some.
  }
}

/** The `cmd` verb. */
export const cmdVerb: Verb = {
  name: "cmd",
  usage: "ADDR [--token T] -- COMMAND...",
  summary: "run a command, exit with its status",
  help: HELP,
  options: {
    token: { type: "string", value: "TOKEN" },
    argv: { type: "boolean" },
    "no-stdin": { type: "boolean", short: "n" },
    cwd: { type: "string", value: "DIR" },
    timeout: { type: "string", value: "DURATION" },
    ...TLS_OPTIONS,
  },
  run: runCmd,
};
