/**
 * Helpers for the file service tests: a served tree in a temp directory, a
 * server on it, and a framed client that returns error frames as values.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { FramedClient, RemoteError } from "../cli/framed_client.ts";
import type { FrameHeader } from "../lib/header_codec.ts";
import { startServer, type TestServer } from "./_helpers.ts";

/**
 * Asserts a condition.
 * @param condition what must hold
 * @param message what went wrong otherwise
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/**
 * Asserts JSON-equality.
 * @param actual the value seen
 * @param expected the value wanted
 * @param what what is compared
 */
export function assertEquals(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}

/**
 * The SHA-256 of bytes or text, in hex.
 * @param data bytes or text
 * @returns the hex digest
 */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Deterministic pseudo-random bytes (fast, for large test files).
 * @param length how many
 * @param seed varies the content
 * @returns the bytes
 */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A temporary directory tree: `root` is served, `outside` is next to it. */
export interface Tree extends AsyncDisposable {
  /** The parent temp directory. */
  base: string;
  /** The served root. */
  root: string;
  /** A directory beside the root (outside it). */
  outside: string;
}

/**
 * Creates a temp tree with files under the root (paths relative to it).
 * @param files contents by relative path
 * @returns the tree, removed on dispose
 */
export async function makeTree(files: Record<string, string | Uint8Array> = {}): Promise<Tree> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "sb_file_" }));
  const root = join(base, "root");
  const outside = join(base, "outside");
  await Deno.mkdir(root);
  await Deno.mkdir(outside);
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    await Deno.mkdir(dirname(full), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(full, content);
    else await Deno.writeFile(full, content);
  }
  return {
    base,
    root,
    outside,
    async [Symbol.asyncDispose]() {
      await Deno.remove(base, { recursive: true });
    },
  };
}

/**
 * Starts a server with one file listener named "file" on the root.
 * @param root the served root
 * @param extra more keys for the listener (TOML lines)
 * @returns the server
 */
export function fileServer(root: string, extra = ""): Promise<TestServer> {
  return startServer(`
[[listener]]
name = "file"
service = "file"
listen = "127.0.0.1:0"
root = ${JSON.stringify(root)}
${extra}
`);
}

/**
 * Connects a framed client to the "file" listener.
 * @param server the server
 * @param token sent with every request
 * @returns the client (close it)
 */
export function connect(server: TestServer, token?: string): Promise<FramedClient> {
  return FramedClient.connect({ hostname: "127.0.0.1", port: server.port("file") }, { token });
}

/** A reply, or the error frame it was. */
export type Reply =
  | { ok: true; header: FrameHeader }
  | { ok: false; code: string; message: string };

/**
 * Sends a request and reads one reply header (error frames as values).
 * @param client the client
 * @param header the request
 * @param body the body, if any
 * @returns the reply
 */
export async function request(
  client: FramedClient,
  header: Record<string, unknown>,
  body?: Uint8Array,
): Promise<Reply> {
  await client.send(header, body);
  return await reply(client);
}

/**
 * Reads one reply header (error frames as values).
 * @param client the client
 * @returns the reply
 */
export async function reply(client: FramedClient): Promise<Reply> {
  try {
    return { ok: true, header: await client.next() };
  } catch (error) {
    if (error instanceof RemoteError) {
      return { ok: false, code: error.code, message: error.message };
    }
    throw error;
  }
}

/** A complete download. */
export interface Download {
  /** The `file` header. */
  head: FrameHeader;
  /** The body. */
  body: Uint8Array;
  /** The `end` header. */
  end: FrameHeader;
}

/**
 * Downloads a file (header, body, end), or returns the error reply.
 * @param client the client
 * @param header the get request
 * @returns the download or the error
 */
export async function download(
  client: FramedClient,
  header: Record<string, unknown>,
): Promise<Download | { ok: false; code: string; message: string }> {
  const first = await request(client, { op: "get", ...header });
  if (!first.ok) return first;
  assertEquals(first.header.op, "file", "reply op");
  const body = new Uint8Array(first.header.size ?? 0);
  let got = 0;
  while (got < body.length) {
    const n = await client.frames.readBody(body.subarray(got));
    assert(n !== null, "body ended early");
    got += n;
  }
  const end = await client.next();
  assertEquals(end.op, "end", "end op");
  return { head: first.header, body, end };
}

/**
 * The code of an error reply, or "ok".
 * @param result a reply or download
 * @returns the code
 */
export function codeOf(result: Reply | Download | { ok: false; code: string }): string {
  return "ok" in result && result.ok === false ? result.code : "ok";
}

/**
 * Lists the names in a directory (recursively, relative), for "nothing left
 * behind" checks.
 * @param dir the directory
 * @returns the relative paths, sorted
 */
export async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string, prefix: string): Promise<void> => {
    for await (const entry of Deno.readDir(path)) {
      const rel = prefix + entry.name;
      out.push(rel);
      if (entry.isDirectory) await visit(join(path, entry.name), rel + "/");
    }
  };
  await visit(dir, "");
  return out.sort();
}
