/**
 * `switchboard get ADDR REMOTE [LOCAL]`: downloads a file from a file
 * service into `LOCAL.part`, checks its SHA-256 and only then renames it to
 * LOCAL; `--continue` resumes a `.part` (or a partial LOCAL) and verifies
 * the whole file with `stat`; `-` writes to stdout.
 *
 * @module
 */

import { basename, join } from "node:path";
import { parseVerbArgs, UsageError } from "./args.ts";
import {
  connectFile,
  describeFailure,
  fileAddress,
  type FileServer,
  remoteBaseName,
  TOKEN_OPTION,
  tokenFrom,
} from "./file_client.ts";
import type { FramedClient } from "./framed_client.ts";
import { fail, writeOut, writeOutAsync } from "./output.ts";
import { TLS_OPTIONS, tlsChoice, tlsHelp } from "./tls_client.ts";
import { Progress } from "./progress.ts";
import type { Verb } from "./verb.ts";
import { pump } from "../lib/chunk_pump.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { type Sha256Job, Sha256Pool } from "../lib/sha256_pool.ts";
import { writeAll } from "../lib/write_all.ts";
import { FILE_DEFAULT_PORT } from "../handlers/file/mod.ts";

const HELP = `Usage: switchboard get ADDR REMOTE [LOCAL] [--continue] [--token TOKEN]

Downloads REMOTE (a path under the served root) from a file service. ADDR is
host:port, [v6]:port or a bare host (port ${FILE_DEFAULT_PORT}).

LOCAL defaults to REMOTE's name in the current directory; an existing
directory means REMOTE's name in it; "-" writes to stdout. The bytes go to
LOCAL.part, which becomes LOCAL (replacing it) only once its SHA-256 matches
the server's. If the transfer breaks, LOCAL.part is kept for --continue.

Options:
  -c, --continue     resume LOCAL.part (or a partial LOCAL) from its length,
                     then verify the whole file against the server's SHA-256
      --token TOKEN  the listener's token (default: $SWITCHBOARD_TOKEN)
${tlsHelp(21)}  -h, --help         show this help

On a terminal a progress bar (rate, ETA) is drawn on stderr.
Exit codes: 0 ok, 1 failure (one-line reason on stderr), 64 usage,
141 stdout was closed (LOCAL "-").
`;

// Large downloads hash in a worker, beside the copy (as the daemon does).
const hashes = new Sha256Pool();

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function localTarget(local: string | undefined, name: string): string {
  if (local === undefined) {
    if (name === "") throw new UsageError("REMOTE names no file: give LOCAL");
    return name;
  }
  if (local.endsWith("/") || statOrNull(local)?.isDirectory) {
    if (name === "") throw new UsageError("REMOTE names no file: give LOCAL as a file name");
    return join(local, name);
  }
  return local;
}

async function runGet(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, getVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, remote, local, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const address: FileServer = { ...fileAddress(addrText), tls: tlsChoice(values, "get") };
  if (remote === undefined) throw new UsageError("missing REMOTE");
  const token = tokenFrom(values.token);
  const name = remoteBaseName(remote);
  if (local === "-") {
    if (values.continue) throw new UsageError('--continue needs a LOCAL file, not "-"');
    return await toStdout(address, token, remote, name);
  }
  const target = localTarget(local, name);
  return await toFile({ address, token, remote, target, resume: values.continue === true });
}

async function toStdout(
  address: FileServer,
  token: string | undefined,
  remote: string,
  name: string,
): Promise<number> {
  let progress: Progress | undefined;
  let client: FramedClient | undefined;
  try {
    client = await connectFile(address, token);
    await client.send({ op: "get", path: remote });
    const head = await client.expect("file");
    const size = head.size ?? 0;
    progress = Progress.forTerminal(name || remote, size);
    const hash = await hashes.job(size);
    const frames = client.frames;
    await pump({
      length: size,
      read: (view) => frames.readBody(view),
      write: (view) => writeOutAsync(view),
      hash,
      onChunk: (bytes) => progress?.add(bytes),
    });
    const end = await client.expect("end");
    const sha256 = await hash.digest();
    if (end.sha256 !== sha256) {
      progress?.stop();
      return fail(
        "get",
        `checksum mismatch: received ${sha256}, the server sent ${String(end.sha256)}`,
      );
    }
    progress?.finish();
    return ExitCode.Ok;
  } catch (error) {
    progress?.stop();
    return fail("get", describeFailure(error, address));
  } finally {
    client?.close();
    hashes.close();
  }
}

interface ToFile {
  address: FileServer;
  token: string | undefined;
  remote: string;
  target: string;
  resume: boolean;
}

/** Hashes the first `length` bytes of a file (what a resume builds on). */
async function hashPrefix(path: string, length: number, hash: Sha256Job): Promise<void> {
  using file = await Deno.open(path, { read: true });
  await pump({
    length,
    read: (view) => file.read(view),
    write: () => Promise.resolve(),
    hash,
  });
}

async function toFile(options: ToFile): Promise<number> {
  const { address, token, remote, target } = options;
  const part = `${target}.part`;
  let offset = 0;
  if (options.resume && statOrNull(part) === null) {
    const existing = statOrNull(target);
    if (existing?.isFile) await Deno.copyFile(target, part);
  }
  if (options.resume) offset = statOrNull(part)?.size ?? 0;
  let hash: Sha256Job | undefined;
  let progress: Progress | undefined;
  let client: FramedClient | undefined;
  let file: Deno.FsFile | undefined;
  let written = 0;
  let started = false;
  try {
    // The remote length is not known yet: a worker pays off for large prefixes.
    hash = await hashes.job(offset);
    if (offset > 0) await hashPrefix(part, offset, hash);
    file = await Deno.open(part, { write: true, create: true, truncate: offset === 0 });
    if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
    client = await connectFile(address, token);
    // A fresh download is checked against "end"; a resumed one against stat.
    await client.send({ op: "get", path: remote, offset, sha256: offset === 0 });
    const head = await client.expect("file").catch((error) => {
      if (offset > 0 && error?.code === "bad_request") {
        throw new Error(
          `${part} (${offset} bytes) is longer than the remote file: remove it or run without --continue`,
        );
      }
      throw error;
    });
    started = true;
    const size = head.size ?? 0;
    const total = offset + size;
    if (offset === 0) hash = await hashes.job(size);
    const job = hash;
    progress = Progress.forTerminal(basename(target), total, offset);
    const frames = client.frames;
    const sink = file;
    await pump({
      length: size,
      read: (view) => frames.readBody(view),
      write: (view) => writeAll(sink, view),
      hash: job,
      // Whatever arrived is on disk when the connection breaks: --continue resumes there.
      keepPartial: true,
      onChunk: (bytes) => {
        written += bytes;
        progress?.add(bytes);
      },
    });
    const end = await client.expect("end");
    let expected = end.sha256;
    let expectedLength = total;
    if (offset > 0) {
      await client.send({ op: "stat", path: remote, sha256: true });
      const stat = await client.expect("stat");
      expected = stat.sha256;
      expectedLength = typeof stat.length === "number" ? stat.length : -1;
    }
    const sha256 = await job.digest();
    file.close();
    file = undefined;
    if (expected !== sha256 || expectedLength !== total) {
      await Deno.remove(part).catch(() => {});
      progress?.stop();
      const why = offset > 0 && expectedLength !== total
        ? "the remote file changed while it was resumed"
        : `received ${sha256}, the server has ${String(expected)}`;
      return fail("get", `checksum mismatch (${why}): the download was discarded`);
    }
    await Deno.rename(part, target);
    if (typeof head.mtime === "number") {
      await Deno.utime(target, new Date(), new Date(head.mtime)).catch(() => {});
    }
    progress?.finish();
    return ExitCode.Ok;
  } catch (error) {
    progress?.stop();
    file?.close();
    let reason = describeFailure(error, address);
    if (started && written + offset > 0) {
      reason += `; ${part} kept: run again with --continue to resume`;
    } else if (offset === 0) {
      await Deno.remove(part).catch(() => {});
    }
    return fail("get", reason);
  } finally {
    client?.close();
    hashes.close();
  }
}

/** The `get` verb. */
export const getVerb: Verb = {
  name: "get",
  usage: "ADDR REMOTE [LOCAL] [-c]",
  summary: 'download a file (LOCAL "-": stdout)',
  help: HELP,
  options: { continue: { type: "boolean", short: "c" }, ...TOKEN_OPTION, ...TLS_OPTIONS },
  fileOperands: [2],
  run: runGet,
};
