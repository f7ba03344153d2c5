/**
 * `switchboard cmd ADDR [--token T] [--argv] -- COMMAND…`: runs a command on
 * a cmd service like ssh does: remote stdout and stderr go to local stdout
 * and stderr as they arrive (raw bytes: this is a pipe tool), local stdin is
 * streamed when it is not a terminal, and the exit code is the remote one.
 *
 * @module
 */

import { durationOption, parseClientAddress, parseVerbArgs, UsageError } from "./args.ts";
import { exitCodeFor, OWN_FAILURE } from "./cmd_exit.ts";
import { FramedClient } from "./framed_client.ts";
import { TLS_OPTIONS, tlsChoice, tlsHelp } from "./tls_client.ts";
import { writeErr, writeOut } from "./output.ts";
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { FrameError } from "../lib/header_codec.ts";
import { describeError, isDisconnect } from "../lib/net_errors.ts";
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
      --cwd DIR            working directory on the server (inside its workdir)
      --timeout DURATION   a shorter timeout than the server's, e.g. 10s
${tlsHelp(27)}  -h, --help               show this help

Exit codes: the remote command's own; 124 it timed out; 128+n it was killed
by signal n; 255 this client failed (cannot connect, unauthorized, refused,
connection lost); 64 usage.
`;

const OPTIONS = {
  token: { type: "string" },
  argv: { type: "boolean" },
  "no-stdin": { type: "boolean", short: "n" },
  cwd: { type: "string" },
  timeout: { type: "string" },
  ...TLS_OPTIONS,
} as const;

const WITH_VALUE = new Set(["--token", "--cwd", "--timeout", "--ca"]);

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
      if (WITH_VALUE.has(arg)) i++;
      continue;
    }
    positionals++;
    if (positionals === 2) return { own: args.slice(0, i), command: args.slice(i) };
  }
  return { own: [...args], command: [] };
}

function ownFailure(reason: string): number {
  writeErr(`switchboard cmd: ${escapeControl(reason)}\n`);
  return OWN_FAILURE;
}

async function runCmd(args: string[]): Promise<number> {
  const { own, command } = splitCommand(args);
  const { values, positionals } = parseVerbArgs(own, OPTIONS);
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
    return ownFailure(`cannot connect to ${addrText}: ${describeError(error)}`);
  }
  try {
    await client.send(header);
    if (sendStdin) void streamStdin(client);
    return await receive(client);
  } catch (error) {
    if (error instanceof BrokenOutput) return 128 + 13; // as if killed by SIGPIPE
    if (isDisconnect(error) || error instanceof FrameError) {
      return ownFailure(`connection lost: ${describeError(error)}`);
    }
    throw error;
  } finally {
    client.close();
  }
}

/** Local stdout or stderr was closed (e.g. `| head -1`). */
class BrokenOutput extends Error {}

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

/** Copies output frames to stdout/stderr until the exit frame. */
async function receive(client: FramedClient): Promise<number> {
  const buffer = new Uint8Array(65536);
  for (;;) {
    const header = await client.frames.readHeader();
    if (header === null) return ownFailure("connection lost: the server closed the connection");
    if (header.op === "stdout" || header.op === "stderr") {
      const target = header.op === "stdout" ? Deno.stdout : Deno.stderr;
      for (;;) {
        const n = await client.frames.readBody(buffer);
        if (n === null) break;
        try {
          await writeAll(target, buffer.subarray(0, n));
        } catch (error) {
          if (error instanceof Deno.errors.BrokenPipe) throw new BrokenOutput();
          throw error;
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
  synopsis: "cmd   ADDR [--token T] -- COMMAND...  run a command, exit with its status",
  help: HELP,
  run: runCmd,
};
