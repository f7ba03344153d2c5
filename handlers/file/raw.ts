/**
 * The `file` service's seed-compatible raw protocol (`protocol = "raw"`):
 * the client sends a file name (one trailing `\n` or `\r\n` stripped), the
 * server sends the file's bytes and closes, as simple downloaders expect:
 * `echo name | nc host 7021 > out`. Same containment as the framed
 * protocol; any refusal simply closes the connection without data (the
 * reason is logged).
 *
 * @module
 */

import { pump } from "../../lib/chunk_pump.ts";
import { RequestError } from "../../lib/framed_server.ts";
import {
  logRequest,
  outcomeOf,
  readFileSync,
  type RequestRecord,
  SYNC_READ_CHUNK,
} from "./operations.ts";
import { isDisconnect } from "../../lib/net_errors.ts";
import { MAX_PATH_BYTES, type PathRules, type ServedRoot, splitRequestPath } from "./safe_path.ts";
import type { Connection, ConnectionContext } from "../../lib/service.ts";
import { StallWatch } from "./stall_watch.ts";

// A client that sends a name without a newline (as some simple clients do)
// is answered once it has been quiet this long.
const QUIET_MS = 500;
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the request line: up to a newline, the end of input, or a pause.
 * @param conn the connection
 * @param context told when the line has begun arriving (header_timeout)
 * @returns the line without its line ending, or null when nothing usable came
 */
async function readName(
  conn: Connection,
  context: Pick<ConnectionContext, "setHeaderPending">,
): Promise<string | null> {
  const buffer = new Uint8Array(MAX_PATH_BYTES + 2);
  let filled = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (filled < buffer.length) {
      const reading = conn.read(buffer.subarray(filled));
      let n: number | null | "quiet";
      if (filled === 0) {
        n = await reading;
      } else {
        const quiet = new Promise<"quiet">((resolve) => {
          timer = setTimeout(() => resolve("quiet"), QUIET_MS);
        });
        n = await Promise.race([reading, quiet]);
        clearTimeout(timer);
        if (n === "quiet") {
          // The read stays pending until the connection closes; ignore its end.
          reading.catch(() => {});
          break;
        }
      }
      if (n === null) break;
      if (filled === 0) context.setHeaderPending(true);
      filled += n;
      if (buffer.subarray(filled - n, filled).includes(0x0a)) break;
    }
  } finally {
    clearTimeout(timer);
    if (filled > 0) context.setHeaderPending(false);
  }
  let bytes = buffer.subarray(0, filled);
  const newline = bytes.indexOf(0x0a);
  if (newline >= 0) {
    bytes = bytes.subarray(0, newline);
    if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
  } else if (filled === buffer.length) {
    return null;
  }
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Serves one raw-protocol connection: one name in, the file's bytes out.
 * @param conn the connection
 * @param context the connection's context
 * @param root the served root
 * @param rules visibility rules
 */
export async function serveRawFile(
  conn: Connection,
  context: ConnectionContext,
  root: ServedRoot,
  rules: PathRules,
): Promise<void> {
  const name = await readName(conn, context);
  const started = performance.now();
  const record: RequestRecord = { path: name ?? "", bytes: 0 };
  if (name === null) {
    logRequest(context.log, "get", record, "bad_request", started);
    return;
  }
  context.setBusy(true);
  let outcome = "ok";
  try {
    const names = splitRequestPath(name, rules);
    const entry = root.resolve(names);
    if (entry.info.isDirectory) throw new RequestError("bad_request", "Is a directory");
    const { file, info } = root.openResolved(names, entry);
    try {
      using watch = new StallWatch(context);
      await pump({
        length: info.size,
        ...readFileSync(file),
        chunkSize: SYNC_READ_CHUNK,
        write: (view) => conn.writeAll(view),
        onChunk: (bytes) => {
          record.bytes += bytes;
          watch.progress();
        },
      });
    } finally {
      file.close();
    }
  } catch (error) {
    outcome = outcomeOf(error);
    if (!(error instanceof RequestError) && !isDisconnect(error)) {
      context.log.warn(`raw get failed: ${error instanceof Error ? error.message : error}`);
    }
  } finally {
    context.setBusy(false);
    logRequest(context.log, "get", record, outcome, started);
  }
}
