/**
 * `switchboard put ADDR LOCAL [REMOTE]`: uploads a file to a file service.
 * The file's SHA-256 is computed in a first pass and sent with the request,
 * so the server checks it before the file becomes visible (a mismatch
 * stores nothing); then the bytes are streamed with a progress bar.
 *
 * @module
 */

import { basename } from "node:path";
import { parseVerbArgs, UsageError } from "./args.ts";
import {
  connectFile,
  describeFailure,
  fileAddress,
  type FileServer,
  TOKEN_OPTION,
  tokenFrom,
} from "./file_client.ts";
import { type FramedClient, RemoteError } from "./framed_client.ts";
import { fail, writeOut } from "./output.ts";
import { TLS_OPTIONS, tlsChoice, tlsHelp } from "./tls_client.ts";
import { Progress } from "./progress.ts";
import type { Verb } from "./verb.ts";
import { pump } from "../lib/chunk_pump.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import type { FrameHeader } from "../lib/header_codec.ts";
import { inlineSha256Job } from "../lib/sha256_pool.ts";
import { FILE_DEFAULT_PORT } from "../handlers/file/mod.ts";

const HELP = `Usage: switchboard put ADDR LOCAL [REMOTE] [--overwrite] [--token TOKEN]

Uploads the file LOCAL to a file service whose listener has
allow_upload = true. ADDR is host:port, [v6]:port or a bare host (port
${FILE_DEFAULT_PORT}). REMOTE defaults to LOCAL's name in the served root; a
REMOTE ending in "/" means LOCAL's name in that directory (missing
directories are created).

The file's SHA-256 is computed first and sent along: the server stores the
upload only if the bytes it received match, atomically (never a partial
file, never a damaged old one).

Options:
      --overwrite    replace an existing REMOTE (the listener must allow it)
      --token TOKEN  the listener's token (default: $SWITCHBOARD_TOKEN)
${tlsHelp(21)}  -h, --help         show this help

On a terminal a progress bar (rate, ETA) is drawn on stderr.
Exit codes: 0 ok, 1 failure (one-line reason on stderr), 64 usage.
`;

// Files at least this large get a progress bar for the checksum pass too.
const HASH_PROGRESS_MIN = 64 * 1024 * 1024;

async function sha256Of(path: string, length: number, label: string): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const job = inlineSha256Job();
  const progress = length >= HASH_PROGRESS_MIN
    ? Progress.forTerminal(`sha256 ${label}`, length)
    : undefined;
  try {
    await pump({
      length,
      read: (view) => file.read(view),
      write: () => Promise.resolve(),
      hash: job,
      onChunk: (bytes) => progress?.add(bytes),
    });
  } finally {
    progress?.stop();
  }
  return await job.digest();
}

async function runPut(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, putVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, local, remoteArg, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const address: FileServer = { ...fileAddress(addrText), tls: tlsChoice(values, "put") };
  if (local === undefined) throw new UsageError("missing LOCAL");
  if (local === "-") throw new UsageError("LOCAL must be a file (the upload's size is sent first)");
  const name = basename(local);
  const remote = remoteArg === undefined
    ? name
    : remoteArg.endsWith("/")
    ? `${remoteArg}${name}`
    : remoteArg;
  const token = tokenFrom(values.token);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(local);
  } catch (error) {
    return fail("put", `cannot read ${local}: ${(error as Error).message.replace(/:.*$/, "")}`);
  }
  if (!info.isFile) return fail("put", `${local} is not a regular file`);
  let progress: Progress | undefined;
  let client: FramedClient | undefined;
  try {
    const size = info.size;
    const sha256 = await sha256Of(local, size, name);
    client = await connectFile(address, token);
    const header: Record<string, unknown> = { op: "put", path: remote, size, sha256 };
    if (values.overwrite) header.overwrite = true;
    await client.sendHeader(header);
    progress = Progress.forTerminal(name, size);
    const reply = await sendBody(client, local, size, progress);
    if (reply.sha256 !== sha256 || reply.length !== size) {
      progress?.stop();
      return fail("put", `the server stored ${String(reply.sha256)}, expected ${sha256}`);
    }
    progress?.finish();
    return ExitCode.Ok;
  } catch (error) {
    progress?.stop();
    let reason = describeFailure(error, address);
    if (error instanceof RemoteError && error.code === "exists" && !values.overwrite) {
      reason += "; use --overwrite to replace it";
    }
    return fail("put", reason);
  } finally {
    client?.close();
  }
}

/**
 * Streams the body while listening for the reply: a server that refuses
 * the upload answers at once (and may close), which ends the sending.
 */
async function sendBody(
  client: FramedClient,
  local: string,
  size: number,
  progress: Progress | undefined,
): Promise<FrameHeader> {
  const reply = client.expect("ok");
  // Observed here so that an early refusal is not an unhandled rejection.
  let refused: unknown;
  reply.catch((error) => refused = error);
  using file = await Deno.open(local, { read: true });
  try {
    await pump({
      length: size,
      read: (view) => file.read(view),
      write: (view) => {
        if (refused !== undefined) throw refused;
        return client.writeBody(view);
      },
      onChunk: (bytes) => progress?.add(bytes),
    });
  } catch (error) {
    // A refusal closes the connection mid-body: the reply says why.
    if (refused !== undefined) throw refused;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      reply.then(() => undefined, (cause) => cause),
      new Promise((resolve) => timer = setTimeout(resolve, 2000, undefined)),
    ]);
    clearTimeout(timer);
    throw settled ?? error;
  }
  return await reply;
}

/** The `put` verb. */
export const putVerb: Verb = {
  name: "put",
  usage: "ADDR LOCAL [REMOTE]",
  summary: "upload a file",
  help: HELP,
  options: { overwrite: { type: "boolean" }, ...TOKEN_OPTION, ...TLS_OPTIONS },
  fileOperands: [1],
  run: runPut,
};
