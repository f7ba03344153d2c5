/**
 * Uploads cut by SIGKILL of a real daemon subprocess, round after round: no
 * interrupted upload ever appears as its target (new or replaced), an
 * existing file being overwritten is never damaged, the restarted daemon
 * removes the temporaries the killed one left, and full uploads after each
 * restart land byte for byte. `SWITCHBOARD_HOSTILE=long` runs ten times the
 * rounds.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeHeader, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { listenerToml, spawnDaemon, tempConfig } from "./_helpers.ts";
import { scaled } from "./_hostile.ts";
import { UPLOAD_TEMP_PREFIX } from "../handlers/file/atomic_upload.ts";

const SIZE = 3 * 1024 * 1024;
const ROUNDS = scaled(3);
const UPLOADS = 4;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

/** Every file under `dir` (relative names), temporaries included. */
function listTree(dir: string, prefix = ""): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const name = prefix + entry.name;
    if (entry.isDirectory) names.push(...listTree(`${dir}/${entry.name}`, `${name}/`));
    else names.push(name);
  }
  return names.sort();
}

/** Sends a put header and `part` of its body, and leaves the connection open. */
async function startUpload(port: number, path: string, body: Uint8Array, part: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encodeHeader({ op: "put", path, size: body.length, overwrite: true }));
  await writeAll(conn, body.subarray(0, Math.floor(body.length * part)));
  return conn;
}

/** A whole upload; resolves with the reply's op and sha256. */
async function upload(port: number, path: string, body: Uint8Array) {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encodeHeader({ op: "put", path, size: body.length, overwrite: true }));
  await writeAll(conn, body);
  return await new FrameReader(conn).readHeader();
}

Deno.test("uploads cut by SIGKILL leave no partial file, no damaged file and, after a restart, no temporary", async () => {
  await using config = await tempConfig("");
  const root = `${config.dir}/root`;
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  const kept = randomBytes(SIZE);
  await Deno.writeFile(`${root}/kept.bin`, kept);
  await Deno.writeTextFile(
    config.path,
    listenerToml({
      name: "file",
      service: "file",
      listen: "127.0.0.1:0",
      root,
      allow_upload: true,
      overwrite: true,
    }),
  );
  const landed = new Map<string, string>([["kept.bin", sha256(kept)]]);
  let bytesVerified = 0;
  let temporariesSwept = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const daemon = await spawnDaemon(["-c", config.path]);
    try {
      const port = daemon.port("file");
      const swept = daemon.lines.find((l) => l.includes("unfinished upload(s) left by a crash"));
      if (round > 0) {
        assert.ok(swept, `round ${round}: the restarted daemon sweeps what the killed one left`);
        temporariesSwept += Number(/Removed (\d+)/.exec(swept)![1]);
      }
      assert.deepEqual(
        listTree(root).filter((name) => name.includes(UPLOAD_TEMP_PREFIX)),
        [],
        "no temporary is left after a restart",
      );
      // Full uploads land byte for byte (and replace earlier ones).
      for (const path of [`new-${round}.bin`, "sub/replaced.bin"]) {
        const body = randomBytes(SIZE);
        const reply = await upload(port, path, body);
        assert.equal(reply?.op, "ok", JSON.stringify(reply));
        assert.equal(reply?.sha256, sha256(body));
        landed.set(path, sha256(body));
      }
      // Then uploads cut halfway: new names, a replacement and an overwrite of kept.bin.
      const cut = [`cut-${round}-a.bin`, `sub/cut-${round}-b.bin`, "kept.bin", "sub/replaced.bin"]
        .slice(0, UPLOADS);
      const conns = await Promise.all(
        cut.map((path, i) => startUpload(port, path, randomBytes(SIZE), 0.3 + i * 0.15)),
      );
      // Let the daemon take what was sent, then kill it mid-upload.
      await new Promise((resolve) => setTimeout(resolve, 200));
      daemon.child.kill("SIGKILL");
      const status = await daemon.exit();
      assert.equal(status.signal, "SIGKILL");
      for (const conn of conns) conn.close();
    } finally {
      await daemon[Symbol.asyncDispose]();
    }
    // No cut upload appeared; every file is one that fully landed, unchanged.
    const files = listTree(root).filter((name) => !name.includes(UPLOAD_TEMP_PREFIX));
    assert.deepEqual(files, [...landed.keys()].sort(), `round ${round}: files in the root`);
    for (const [path, digest] of landed) {
      const bytes = await Deno.readFile(`${root}/${path}`);
      assert.equal(sha256(bytes), digest, `${path} is what was uploaded whole`);
      bytesVerified += bytes.length;
    }
  }
  // A last restart sweeps what the last kill left.
  {
    await using daemon = await spawnDaemon(["-c", config.path]);
    const swept = daemon.lines.find((l) => l.includes("unfinished upload(s) left by a crash"));
    assert.ok(swept, "the last restart sweeps too");
    temporariesSwept += Number(/Removed (\d+)/.exec(swept)![1]);
    assert.deepEqual(listTree(root).filter((name) => name.includes(UPLOAD_TEMP_PREFIX)), []);
    assert.deepEqual(listTree(root), [...landed.keys()].sort());
  }
  console.log(
    `SIGKILL rounds: ${ROUNDS}, ${bytesVerified} bytes verified, ` +
      `${temporariesSwept} temporaries swept at restarts, 0 partial files`,
  );
});
