/**
 * The file service: download, upload and list files under a served root,
 * over the header codec (docs/protocol.md "file (framed)"), or with the
 * raw protocol (`protocol = "raw"`: a name in, the bytes out). See
 * docs/file.md for the keys, the path rules and the security notes.
 *
 * @module
 */

import { resolve } from "node:path";
import { removeStaleUploads } from "./atomic_upload.ts";
import { describePath, FileOperations, logRequest } from "./operations.ts";
import { serveRawFile } from "./raw.ts";
import { serveFrames } from "../../lib/framed_server.ts";
import type {
  Connection,
  ConnectionContext,
  ListenerContext,
  ServiceInstance,
} from "../../lib/service.ts";
import { defineService, type Service } from "../../lib/service.ts";
import { ServedRoot } from "./safe_path.ts";
import { Sha256Pool } from "../../lib/sha256_pool.ts";
import type { SharedState } from "../../lib/shared_state.ts";
import { LogThrottle } from "../../lib/log_throttle.ts";
import { readToken } from "../../lib/token.ts";
import { formatSize } from "../../lib/units.ts";

/** Options of a file listener. */
export interface FileOptions {
  /** The served directory (absolute, existed at config time). */
  root: string;
  /** `framed` (docs/protocol.md) or `raw` (a name in, the bytes out). */
  protocol: "framed" | "raw";
  /** Whether `put` is allowed. */
  allowUpload: boolean;
  /** Whether an upload may replace an existing file (when it asks to). */
  overwrite: boolean;
  /** The largest upload, in bytes. */
  maxUpload: number;
  /** The most entries in one `list` reply. */
  maxList: number;
  /** Whether names starting with "." are served. */
  showHidden: boolean;
  /** When set, every request must carry it. */
  token?: string;
}

/** The default port of the file service. */
export const FILE_DEFAULT_PORT = 7021;

const UPLOADS_KEY = "file:uploads";

/** The set of upload temporaries in use, shared by every file listener. */
function uploadsInFlight(shared: SharedState): Set<string> {
  return shared.obtain(UPLOADS_KEY, () => new Set<string>());
}

/**
 * Opens a file listener: resolves the root, removes unfinished uploads left
 * by a crash (when uploads are allowed), and serves connections.
 */
async function openFileService(
  options: FileOptions,
  listener: ListenerContext,
): Promise<ServiceInstance> {
  const rules = { showHidden: options.showHidden };
  const root = await ServedRoot.open(options.root, rules);
  const inFlight = uploadsInFlight(listener.shared);
  // Beside other workers, a temporary another process is writing looks
  // like a leftover: only the first worker, started alone, sweeps.
  if (options.allowUpload && !listener.sharedWithWorkers) {
    const sweep = await removeStaleUploads(root.path, inFlight);
    if (sweep.removed > 0) {
      listener.log.info(`Removed ${sweep.removed} unfinished upload(s) left by a crash`, {
        root: root.path,
      });
    }
    if (!sweep.complete) {
      listener.log.warn("Stopped looking for unfinished uploads: the tree is very large", {
        root: root.path,
      });
    }
  }
  // Inline hashing only: a worker's four shared chunks would not fit the
  // per-connection memory bound (TRANSFER_MEMORY in operations.ts says why).
  const hashes = new Sha256Pool({ log: listener.log, workerMinBytes: Infinity });
  const files = new FileOperations(root, options, hashes, inFlight);
  const malformedLog = new LogThrottle();
  const framed = (conn: Connection, context: ConnectionContext): Promise<void> =>
    serveFrames(conn, context, {
      operations: files.operations,
      token: options.token,
      malformedLog,
      onRefused: (header, error) =>
        logRequest(
          context.log,
          typeof header.op === "string" ? header.op : "?",
          { path: describePath(header.path), bytes: 0 },
          error.code,
          performance.now(),
        ),
    });
  const raw = (conn: Connection, context: ConnectionContext): Promise<void> =>
    serveRawFile(conn, context, root, rules);
  return {
    stream: options.protocol === "raw" ? raw : framed,
    close(): Promise<void> {
      hashes.close();
      return Promise.resolve();
    },
  };
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The file service's entry in the service table. */
export const fileService: Service = defineService<FileOptions>({
  name: "file",
  transports: ["tcp"],
  defaultPort: FILE_DEFAULT_PORT,
  // Read-only, and only where the user made a folder for it.
  embeddedDefault: ({ cwd }) => {
    const root = resolve(cwd, "files");
    return isDirectory(root)
      ? { listeners: [{ name: "file", root }] }
      : { listeners: [], note: `file service skipped (no folder "${root}")` };
  },
  parseOptions(reader) {
    const root = reader.path("root", { required: true, mustBe: "dir" });
    const protocol = reader.string("protocol", {
      default: "framed",
      choices: ["framed", "raw"],
    }) as "framed" | "raw";
    const allowUpload = reader.boolean("allow_upload", false);
    const overwrite = reader.boolean("overwrite", false);
    const maxUpload = reader.size("max_upload", {
      default: "1GiB",
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
    });
    const maxList = reader.integer("max_list", { default: 10_000, min: 1, max: 1_000_000 });
    const showHidden = reader.boolean("show_hidden", false);
    const token = readToken(reader);
    if (protocol === "raw") {
      if (token !== undefined) {
        reader.problem(
          reader.has("token") ? "token" : "token_file",
          'needs protocol = "framed": the raw protocol cannot carry a token',
        );
      }
      if (allowUpload) {
        reader.problem(
          "allow_upload",
          'needs protocol = "framed": the raw protocol only downloads',
        );
      }
    }
    return {
      root: root ?? "",
      protocol,
      allowUpload,
      overwrite,
      maxUpload,
      maxList,
      showHidden,
      token,
    };
  },
  describe(options) {
    const parts = [`root=${options.root}`];
    if (options.protocol === "raw") parts.push("protocol=raw");
    parts.push(options.allowUpload ? `upload max=${formatSize(options.maxUpload)}` : "read-only");
    if (options.allowUpload && options.overwrite) parts.push("overwrite");
    if (options.showHidden) parts.push("show_hidden");
    if (options.token !== undefined) parts.push("token");
    return parts.join(" ");
  },
  open: openFileService,
});
