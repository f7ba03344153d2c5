/**
 * `switchboard ls ADDR [DIR]`: lists a directory of a file service as a
 * table (type, human size — exact bytes with `-l` — modification time,
 * name), or as one JSON document with `--json`, fetching every page of a
 * truncated listing. Names in the table are printed with control
 * characters escaped.
 *
 * @module
 */

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
import type { Verb } from "./verb.ts";
import { escapeControl } from "../lib/escape.ts";
import { ExitCode } from "../lib/exit_codes.ts";
import { formatSize } from "../lib/units.ts";
import { FILE_DEFAULT_PORT } from "../handlers/file/mod.ts";

const HELP = `Usage: switchboard ls ADDR [DIR] [-l] [--json] [--token TOKEN]

Lists DIR (default: the served root) of a file service, one entry per line:
type (dir or file), size, modification time (local time) and name, sorted
by name. ADDR is host:port, [v6]:port or a bare host (port
${FILE_DEFAULT_PORT}). Control characters in names are shown escaped. Given a
file, it shows that file.

Options:
  -l, --long         sizes in exact bytes instead of KiB/MiB/GiB
      --json         print one JSON document instead:
                     {"path": DIR, "entries": [{"name", "type", "size" (bytes),
                     "mtime" (ms since the epoch)}]}; names as received
      --token TOKEN  the listener's token (default: $SWITCHBOARD_TOKEN)
${tlsHelp(21)}  -h, --help         show this help

Exit codes: 0 ok, 1 failure (one-line reason on stderr), 64 usage,
141 stdout was closed.
`;

// A directory larger than this many pages is cut (and says so).
const MAX_PAGES = 10_000;

/** One row of the listing. */
export interface LsRow {
  /** The name as received. */
  name: string;
  /** `file` or `dir`. */
  type: string;
  /** Bytes. */
  size: number;
  /** ms since the epoch. */
  mtime: number;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * Formats a time as local `YYYY-MM-DD HH:MM`.
 * @param ms ms since the epoch
 * @returns the text
 */
export function formatMtime(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "????-??-?? ??:??";
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Options for {@linkcode formatRow}. */
export interface FormatRowOptions {
  /** Exact byte sizes (`ls -l`) instead of binary units. @default {false} */
  exact?: boolean;
}

/**
 * Formats one row: `dir      -  2026-11-22 10:30  docs/`.
 * @param row the entry
 * @param options exact sizes
 * @returns one line without a newline
 */
export function formatRow(row: LsRow, options: FormatRowOptions = {}): string {
  const dir = row.type === "dir";
  const size = dir ? "-" : options.exact ? String(row.size) : formatSize(row.size);
  const name = escapeControl(String(row.name)) + (dir ? "/" : "");
  const width = options.exact ? 12 : 7;
  return `${dir ? "dir " : "file"}  ${size.padStart(width)}  ${formatMtime(row.mtime)}  ${name}`;
}

function toRow(value: unknown): LsRow | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const entry = value as Record<string, unknown>;
  if (typeof entry.name !== "string") return undefined;
  return {
    name: entry.name,
    type: entry.type === "dir" ? "dir" : "file",
    size: typeof entry.size === "number" ? entry.size : 0,
    mtime: typeof entry.mtime === "number" ? entry.mtime : 0,
  };
}

/** Where the rows go: the table as they come, or one JSON document at the end. */
interface LsOutput {
  rows(rows: LsRow[]): void;
  end(path: string): void;
}

function tableOutput(exact: boolean): LsOutput {
  return {
    rows(rows) {
      if (rows.length > 0) writeOut(rows.map((row) => formatRow(row, { exact }) + "\n").join(""));
    },
    end() {},
  };
}

function jsonOutput(): LsOutput {
  const entries: LsRow[] = [];
  return {
    rows: (rows) => entries.push(...rows),
    end: (path) => writeOut(JSON.stringify({ path, entries }, null, 2) + "\n"),
  };
}

async function runLs(args: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(args, lsVerb.options);
  if (values.help) {
    writeOut(HELP);
    return ExitCode.Ok;
  }
  const [addrText, dir = "", extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const address: FileServer = { ...fileAddress(addrText), tls: tlsChoice(values, "ls") };
  const output = values.json ? jsonOutput() : tableOutput(values.long === true);
  let client: FramedClient | undefined;
  try {
    client = await connectFile(address, tokenFrom(values.token));
    let after: string | undefined;
    let path = dir;
    for (let page = 0;; page++) {
      if (page >= MAX_PAGES) return fail("ls", `stopped after ${MAX_PAGES} pages`);
      await client.send(
        after === undefined ? { op: "list", path: dir } : { op: "list", path: dir, after },
      );
      let reply;
      try {
        reply = await client.expect("list");
      } catch (error) {
        // `ls FILE` shows that file, as ls(1) does.
        if (page === 0 && error instanceof RemoteError && error.code === "bad_request") {
          const row = await statRow(client, dir);
          if (row) {
            output.rows([row]);
            output.end(dir);
            return ExitCode.Ok;
          }
        }
        throw error;
      }
      if (typeof reply.path === "string") path = reply.path;
      const rows = Array.isArray(reply.entries) ? reply.entries.map(toRow) : [];
      output.rows(rows.filter((row) => row !== undefined));
      const last = rows.at(-1)?.name;
      if (reply.truncated !== true || last === undefined || last === after) break;
      after = last;
    }
    output.end(path);
    return ExitCode.Ok;
  } catch (error) {
    return fail("ls", describeFailure(error, address));
  } finally {
    client?.close();
  }
}

async function statRow(client: FramedClient, path: string): Promise<LsRow | undefined> {
  await client.send({ op: "stat", path });
  const stat = await client.expect("stat").catch(() => undefined);
  if (!stat || stat.type !== "file") return undefined;
  const name = path.split("/").filter((n) => n !== "").at(-1) ?? path;
  return {
    name,
    type: "file",
    size: typeof stat.length === "number" ? stat.length : 0,
    mtime: typeof stat.mtime === "number" ? stat.mtime : 0,
  };
}

/** The `ls` verb. */
export const lsVerb: Verb = {
  name: "ls",
  usage: "ADDR [DIR] [-l] [--json]",
  summary: "list a directory of a file service",
  help: HELP,
  options: {
    long: { type: "boolean", short: "l" },
    json: { type: "boolean" },
    ...TOKEN_OPTION,
    ...TLS_OPTIONS,
  },
  run: runLs,
};
