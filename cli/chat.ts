/**
 * `switchboard chat ADDR [--name N] [--tcp]`: joins a chat room. On a
 * terminal, messages from the room appear while you type (the line being
 * typed is redrawn below them); `/leave`, `/quit` or Ctrl-D leave. With piped input,
 * each line is sent, replies are shown for a moment after the last one, and
 * the client leaves. Keep-alives go out by themselves while you are silent.
 *
 * @module
 */

import * as readline from "node:readline";
import process from "node:process";
import { durationOption, parseClientAddress, parseVerbArgs, UsageError } from "./args.ts";
import { type ChatLink, openTcpLink, openUdpLink } from "./chat_link.ts";
import { ConnectError, formatAddress, networkReason } from "./connect.ts";
import { TLS_OPTIONS, tlsChoice, tlsHelp } from "./tls_client.ts";
import { readLines } from "./lines.ts";
import { fail, OutputClosed, writeErr, writeOut } from "./output.ts";
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { chatService } from "../handlers/chat/mod.ts";

const HELP = `Usage: switchboard chat ADDR [--name NAME] [--tcp]

Joins a chat room. ADDR is host:port, [v6]:port or a bare host (port
${chatService.defaultPort}).

On a terminal, type a line to send it; messages from the room appear as they
come, above the line you are typing. Commands go to the server: /nick NAME,
/who. /leave or /quit (or Ctrl-D, Ctrl-C) leaves the room and ends the
client. Text from the network is shown with control characters escaped.

With piped input, each line of stdin is sent, replies are shown until
--wait after the last line, then the client leaves and exits; a /leave or
/quit line leaves at once (later lines are not sent).

Options:
      --name NAME          join under this name (the first datagram is
                           /nick NAME; over TCP it renames right after joining)
      --tcp                use TCP instead of UDP
      --timeout DURATION   how long to wait for the room to answer (default 2s)
      --keepalive DURATION send a keep-alive after this much silence
                           (default 60s; the server's member_ttl is 10m by default)
      --wait DURATION      piped input: how long to listen after the last line
                           (default 1s)
${tlsHelp(27)}                           (TLS implies --tcp)
  -h, --help               show this help

Exit codes: 0 left the room, 1 failure (no answer, refused, room full,
connection lost; one-line reason on stderr), 64 usage, 141 stdout was closed.
`;

const encoder = new TextEncoder();
const MEMBERS = encoder.encode("* members:");
const ROOM_FULL = "error: room full";

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Lines that end the client: it sends `/leave` (once) and exits. */
function isLeave(text: string): boolean {
  const command = text.trim();
  return command === "/quit" || command === "/leave";
}

/** One line for a failure that is not the room's answer. */
function describe(error: unknown, where: string): string {
  if (error instanceof ConnectError) return error.message;
  if (error instanceof OutputClosed) throw error;
  return `${where}: ${networkReason(error, "")}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Shows lines from the room: raw when piped, escaped on a terminal. */
interface Display {
  show(line: Uint8Array): void;
}

function pipedDisplay(): Display {
  return {
    show(line) {
      const out = new Uint8Array(line.length + 1);
      out.set(line);
      out[line.length] = 0x0a;
      writeOut(out);
    },
  };
}

function escapedLine(line: Uint8Array): string {
  // One line per message: embedded newlines are shown as \n too.
  return escapeControl(new TextDecoder().decode(line));
}

async function runChat(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, chatVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, ...extra] = positionals;
  if (addrText === undefined) throw new UsageError("missing ADDR");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const address = parseClientAddress(addrText, chatService.defaultPort);
  const name = values.name as string | undefined;
  if (name !== undefined && (name === "" || /\s/.test(name))) {
    throw new UsageError("--name must be one word");
  }
  const timeoutMs = durationOption(values.timeout, "timeout") ?? 2000;
  const keepaliveMs = durationOption(values.keepalive, "keepalive") ?? 60_000;
  const waitMs = durationOption(values.wait, "wait") ?? 1000;
  // Line editing needs a terminal on both sides; otherwise lines are read
  // as they come (typed lines too) and output is left as it is.
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();

  // Lines are shown as they come; the join waits for the members line.
  let display: Display = Deno.stdout.isTerminal()
    ? { show: (line) => writeOut(escapedLine(line) + "\n") }
    : pipedDisplay();
  let answered: (full: boolean) => void = () => {};
  const answer = new Promise<boolean>((resolve) => answered = resolve);
  const onLine = (line: Uint8Array): void => {
    if (startsWith(line, MEMBERS)) answered(false);
    else if (new TextDecoder().decode(line) === ROOM_FULL) answered(true);
    display.show(line);
  };

  let link: ChatLink;
  try {
    const tls = tlsChoice(values, "chat");
    link = values.tcp || tls
      ? await openTcpLink(address, onLine, tls)
      : await openUdpLink(address, onLine);
  } catch (error) {
    return fail("chat", describe(error, formatAddress(address)));
  }
  const where = `${formatAddress(address)}/${link.transport}`;
  try {
    if (name !== undefined) await link.send(encoder.encode(`/nick ${name}`));
    // /who joins (a first datagram makes us a member) and proves the room answers.
    const attempts = link.transport === "udp" ? 3 : 1;
    let full: boolean | undefined;
    for (let attempt = 0; attempt < attempts && full === undefined; attempt++) {
      await link.send(encoder.encode("/who"));
      full = await Promise.race([answer, sleep(timeoutMs).then(() => undefined)]);
    }
    if (full === undefined) {
      return fail("chat", `no answer from ${where} within ${timeoutMs}ms (is a chat room there?)`);
    }
    if (full) return fail("chat", `the room at ${where} is full`);

    let lastSent = performance.now();
    const send = async (line: Uint8Array): Promise<void> => {
      lastSent = performance.now();
      await link.send(line);
    };
    const keepalive = setInterval(() => {
      if (performance.now() - lastSent < keepaliveMs * 0.9) return;
      lastSent = performance.now();
      link.keepAlive().catch(() => {});
    }, keepaliveMs);
    try {
      if (interactive) {
        const terminal = interactiveSession(where, send, link.ended);
        display = terminal.display;
        const outcome = await terminal.done;
        if (outcome !== "quit") {
          return fail("chat", outcome);
        }
      } else {
        if (Deno.stdin.isTerminal()) writeErr(`Joined ${where}. Type lines; Ctrl-D leaves.\n`);
        const outcome = await pipedSession(send, link.ended, waitMs);
        if (outcome !== "quit") return fail("chat", outcome);
      }
      await link.send(encoder.encode("/leave")).catch(() => {});
      return ExitCode.Ok;
    } finally {
      clearInterval(keepalive);
    }
  } catch (error) {
    return fail("chat", describe(error, where));
  } finally {
    // Give a final datagram or line time to leave before the socket closes.
    await sleep(20);
    link.close();
  }
}

/** Sends each line of stdin, then listens for `waitMs` more. */
async function pipedSession(
  send: (line: Uint8Array) => Promise<void>,
  ended: Promise<string>,
  waitMs: number,
): Promise<string> {
  let lost: string | undefined;
  void ended.then((why) => lost = why);
  for await (const line of readLines(Deno.stdin)) {
    if (lost !== undefined) return lost;
    if (isLeave(new TextDecoder().decode(line))) return "quit";
    await send(line);
  }
  const reason = await Promise.race([ended, sleep(waitMs).then(() => "quit")]);
  return reason;
}

/** A readline session: prints arriving lines above the line being typed. */
function interactiveSession(
  where: string,
  send: (line: Uint8Array) => Promise<void>,
  ended: Promise<string>,
): { display: Display; done: Promise<string> } {
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: "> ",
  });
  writeErr(`Joined ${where}. /nick NAME renames, /who lists members, /leave leaves.\n`);
  rl.prompt();
  const display: Display = {
    show(line) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
      process.stdout.write(escapedLine(line) + "\n");
      rl.prompt(true);
    },
  };
  const done = new Promise<string>((resolve) => {
    let finished = false;
    const finish = (outcome: string): void => {
      if (finished) return;
      finished = true;
      rl.close();
      resolve(outcome);
    };
    rl.on("line", (text: string) => {
      if (isLeave(text)) return finish("quit");
      send(encoder.encode(text)).catch((error) => finish(describe(error, where)));
      rl.prompt();
    });
    rl.on("SIGINT", () => finish("quit"));
    rl.on("close", () => finish("quit"));
    void ended.then((why) => finish(why));
  });
  return { display, done };
}

/** The `chat` verb. */
export const chatVerb: Verb = {
  name: "chat",
  usage: "ADDR [--name N] [--tcp]",
  summary: "join a chat room",
  help: HELP,
  options: {
    name: { type: "string", value: "NAME" },
    tcp: { type: "boolean" },
    timeout: { type: "string", value: "DURATION" },
    keepalive: { type: "string", value: "DURATION" },
    wait: { type: "string", value: "DURATION" },
    ...TLS_OPTIONS,
  },
  run: runChat,
};
