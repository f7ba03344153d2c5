/**
 * A short mixed soak of a real daemon subprocess: every service at once,
 * TCP and UDP, clients that behave and clients that reset mid-request, for
 * a few seconds. Every well-behaved operation succeeds, and afterwards the
 * daemon's open descriptors (/proc/PID/fd) are back to their baseline.
 * `SWITCHBOARD_HOSTILE=long` soaks ten times as long.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeFrame, encodeHeader, type FrameHeader, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { processInfo } from "../lib/process_group.ts";
import {
  listenerToml,
  readBytes,
  spawnDaemon,
  tempConfig,
  udpRequest,
  waitFor,
} from "./_helpers.ts";
import { fdCount, reaches, scaled, steady } from "./_hostile.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SECONDS = scaled(4);

/** How many `sleep` commands the daemon `pid` runs (not its idle pooled shells). */
function sleeping(pid: number): number {
  let count = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    const child = Number(entry.name);
    if (!Number.isInteger(child) || child <= 0 || processInfo(child)?.ppid !== pid) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${child}/comm`).trim() === "sleep") count++;
    } catch {
      // Gone meanwhile.
    }
  }
  return count;
}

/** Reads frames up to and including one whose op is `last`. */
async function until(reader: FrameReader, last: string): Promise<FrameHeader[]> {
  const frames: FrameHeader[] = [];
  const sink = new Uint8Array(65536);
  for (;;) {
    const header = await reader.readHeader();
    if (header === null) throw new Error(`Closed before "${last}"`);
    frames.push(header);
    while ((await reader.readBody(sink)) !== null) { /* drained */ }
    if (header.op === last || header.op === "error") return frames;
  }
}

Deno.test("a mixed soak of every service, with resets, succeeds and leaves the daemon's fds at baseline", async () => {
  await using config = await tempConfig("");
  const root = `${config.dir}/root`;
  await Deno.mkdir(root);
  const content = new Uint8Array(300_000).map((_, i) => i * 7);
  await Deno.writeFile(`${root}/data.bin`, content);
  const digest = createHash("sha256").update(content).digest("hex");
  await Deno.writeTextFile(
    config.path,
    listenerToml({ name: "echo", service: "echo", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "echo-udp", service: "echo", transport: "udp", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "time", service: "time", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "time-tcp", service: "time", transport: "tcp", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "chat", service: "chat", transport: "tcp", listen: "127.0.0.1:0" }) +
      listenerToml({
        name: "file",
        service: "file",
        listen: "127.0.0.1:0",
        root,
        allow_upload: true,
        overwrite: true,
      }) +
      listenerToml({
        name: "cmd",
        service: "cmd",
        listen: "127.0.0.1:0",
        auth: "none",
        // Every "reset exec" leaves a `sleep 30` until the probe finds its
        // client gone (up to ~1 s); at the rate commands start now that is
        // a few hundred at once. The soak is about cleanup, not the cap.
        max_concurrent: 1024,
      }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const pid = daemon.child.pid;
  const port = (name: string): number => daemon.port(name);
  const connect = (name: string): Promise<Deno.TcpConn> =>
    Deno.connect({ hostname: "127.0.0.1", port: port(name) });

  const operations: Record<string, () => Promise<void>> = {
    echo: async () => {
      using conn = await connect("echo");
      const text = `soak ${Math.random()}`;
      await writeAll(conn, encoder.encode(text));
      assert.equal(decoder.decode(await readBytes(conn, text.length)), text);
    },
    "echo-udp": async () => {
      const reply = await udpRequest(port("echo-udp"), encoder.encode("ping"));
      assert.equal(reply && decoder.decode(reply), "ping");
    },
    time: async () => {
      const reply = await udpRequest(port("time"), encoder.encode("%Y"));
      assert.match(reply ? decoder.decode(reply) : "", /^\d{4}$/);
    },
    "time-tcp": async () => {
      using conn = await connect("time-tcp");
      await writeAll(conn, encoder.encode("%Y\n%H\n"));
      assert.match(decoder.decode(await readBytes(conn, 8)), /^\d{4}\n\d\d\n$/);
    },
    chat: async () => {
      using a = await connect("chat");
      await writeAll(a, encoder.encode("/who\n"));
      // Other members' joins and leaves may come first.
      let seen = "";
      const buffer = new Uint8Array(4096);
      while (!/^\* members: /m.test(seen) && seen.length < 65536) {
        const n = await a.read(buffer);
        if (n === null) break;
        seen += decoder.decode(buffer.subarray(0, n));
      }
      assert.match(seen, /^\* members: /m);
    },
    get: async () => {
      using conn = await connect("file");
      await writeAll(conn, encodeFrame({ op: "get", path: "data.bin" }));
      const frames = await until(new FrameReader(conn), "end");
      assert.equal(frames.at(-1)?.sha256, digest);
    },
    put: async () => {
      using conn = await connect("file");
      const body = encoder.encode(`upload ${Math.random()}`);
      await writeAll(conn, encodeFrame({ op: "put", path: "up/u.txt", overwrite: true }, body));
      const [reply] = await until(new FrameReader(conn), "ok");
      assert.equal(reply?.op, "ok");
    },
    list: async () => {
      using conn = await connect("file");
      await writeAll(conn, encodeFrame({ op: "list", path: "" }));
      const [reply] = await until(new FrameReader(conn), "list");
      assert.equal(reply?.op, "list");
    },
    exec: async () => {
      using conn = await connect("cmd");
      await writeAll(conn, encodeFrame({ op: "exec", argv: ["echo", "soak"] }));
      const frames = await until(new FrameReader(conn), "exit");
      assert.equal(frames.at(-1)?.code, 0);
    },
    // Clients that give up halfway: a download, an upload, a command.
    "reset get": async () => {
      const conn = await connect("file");
      await writeAll(conn, encodeFrame({ op: "get", path: "data.bin" }));
      await readBytes(conn, 1000);
      conn.close();
    },
    "reset put": async () => {
      const conn = await connect("file");
      await writeAll(conn, encodeHeader({ op: "put", path: "up/cut.bin", size: 100_000 }));
      await writeAll(conn, new Uint8Array(5000));
      conn.close();
    },
    "reset exec": async () => {
      const conn = await connect("cmd");
      await writeAll(conn, encodeFrame({ op: "exec", argv: ["sleep", "30"] }));
      conn.close();
    },
  };
  // Warm up: one of each, so that lazily made things are in the baseline,
  // and the warm-up's "reset exec" is not (its group ends once the probe
  // finds the client gone).
  for (const operation of Object.values(operations)) await operation();
  // (It may not have started yet: first see it, then see it gone.)
  await waitFor(() => sleeping(pid) > 0, 3000).catch(() => {});
  await waitFor(() => sleeping(pid) === 0, 5000);
  const baseline = await steady(() => fdCount(pid), { timeoutMs: 3000 });
  const counts = new Map<string, number>();
  const errors: string[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const names = Object.keys(operations);
  await Promise.all(Array.from({ length: 6 }, async (_, worker) => {
    for (let i = worker; performance.now() < deadline; i++) {
      const name = names[i % names.length]!;
      try {
        await operations[name]!();
        counts.set(name, (counts.get(name) ?? 0) + 1);
      } catch (error) {
        errors.push(`${name}: ${error instanceof Error ? error.message : error}`);
      }
    }
  }));
  const after = await reaches(() => fdCount(pid), baseline);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  assert.deepEqual(errors.slice(0, 5), [], `${errors.length} of ${total + errors.length} failed`);
  assert.equal(after, baseline, `fds ${baseline} before, ${after} after`);
  assert.ok(
    !daemon.lines.some((l) => /WARN|ERROR/.test(l)),
    daemon.lines.filter((l) => /WARN|ERROR/.test(l)).join("\n"),
  );
  console.log(`soak: ${total} operations in ${SECONDS}s, 0 errors, fds ${baseline} → ${after}`);
});
