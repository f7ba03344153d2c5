/**
 * The file service in a real daemon process: bounded memory on files of
 * several GiB (RSS read from /proc), and disk errors (a file size limit).
 */

import { join } from "node:path";
import { FramedClient } from "../cli/framed_client.ts";
import { switchboardShell } from "./_helpers.ts";
import {
  assert,
  assertEquals,
  codeOf,
  makeTree,
  reply,
  request,
  sha256Hex,
  walk,
} from "./_file_helpers.ts";

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

/** A daemon started as a subprocess, with its log lines collected. */
interface Daemon extends AsyncDisposable {
  pid: number;
  port: number;
  lines: string[];
}

async function startDaemon(
  config: string,
  options: { fileSizeLimitKiB?: number } = {},
): Promise<Daemon> {
  const quoted = switchboardShell(["serve", "-c", config]);
  // SIGXFSZ is ignored so that a write over the limit fails with EFBIG.
  const script = options.fileSizeLimitKiB === undefined
    ? `exec ${quoted}`
    : `trap '' XFSZ; ulimit -f ${options.fileSizeLimitKiB}; exec ${quoted}`;
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const { promise: portFound, resolve: resolvePort } = Promise.withResolvers<number>();
  const reading = (async () => {
    const decoder = new TextDecoderStream();
    let pending = "";
    for await (const text of child.stderr.pipeThrough(decoder)) {
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const match = /Listening on 127\.0\.0\.1:(\d+)\/tcp/.exec(line);
        if (match) resolvePort(Number(match[1]));
      }
    }
    resolvePort(0);
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portFound,
    new Promise<number>((resolve) => timer = setTimeout(() => resolve(0), 20_000)),
  ]);
  clearTimeout(timer);
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await reading;
  };
  if (port === 0) {
    await stop();
    throw new Error(`The daemon did not start:\n${lines.join("\n")}`);
  }
  return { pid: child.pid, port, lines, [Symbol.asyncDispose]: stop };
}

function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error("No VmRSS in /proc status");
  return Number(match[1]);
}

/** Samples a process's RSS every 50 ms while `work` runs; returns the peak. */
async function peakRssDuring(pid: number, work: () => Promise<void>): Promise<number> {
  let peak = rssKiB(pid);
  const timer = setInterval(() => peak = Math.max(peak, rssKiB(pid)), 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssKiB(pid));
}

async function writeConfig(dir: string, root: string, extra: string): Promise<string> {
  const path = join(dir, "switchboard.toml");
  await Deno.writeTextFile(
    path,
    `[[listener]]\nname = "file"\nservice = "file"\nlisten = "127.0.0.1:0"\nroot = ${
      JSON.stringify(root)
    }\n${extra}\n`,
  );
  return path;
}

Deno.test("file streams a 5 GiB sparse file with the daemon's RSS growing by less than 32 MiB", async () => {
  await using tree = await makeTree({ "small.txt": "warm up" });
  const size = 5 * GiB;
  {
    using huge = await Deno.open(join(tree.root, "huge.bin"), { write: true, create: true });
    await huge.truncate(size);
  }
  const config = await writeConfig(tree.base, tree.root, "");
  await using daemon = await startDaemon(config);
  using client = await FramedClient.connect({ hostname: "127.0.0.1", port: daemon.port });
  assertEquals(codeOf(await request(client, { op: "get", path: "small.txt" })), "ok", "warm-up");
  await client.frames.skipBody();
  await client.next();
  const stat = await request(client, { op: "stat", path: "huge.bin" });
  assert(stat.ok && stat.header.length === size, "stat reports the length beyond 4 GiB");
  const baseline = rssKiB(daemon.pid);
  let received = 0;
  const peak = await peakRssDuring(daemon.pid, async () => {
    await client.send({ op: "get", path: "huge.bin", sha256: false });
    const head = await client.next();
    assertEquals([head.op, head.size], ["file", size], "header");
    const buffer = new Uint8Array(MiB);
    for (;;) {
      const n = await client.frames.readBody(buffer);
      if (n === null) break;
      received += n;
    }
    assertEquals(await client.next(), { op: "end" }, "end frame without sha256");
  });
  assertEquals(received, size, "every byte");
  const growthMiB = (peak - baseline) / 1024;
  assert(growthMiB < 32, `RSS grew by ${growthMiB.toFixed(1)} MiB (baseline ${baseline} KiB)`);

  // A resume point beyond 4 GiB, hashed.
  const offset = size - 3 * MiB;
  await client.send({ op: "get", path: "huge.bin", offset });
  const tail = await client.next();
  assertEquals([tail.offset, tail.size], [offset, 3 * MiB], "resumed header");
  const body = new Uint8Array(3 * MiB);
  let got = 0;
  while (got < body.length) got += (await client.frames.readBody(body.subarray(got)))!;
  assert(body.every((b) => b === 0), "a sparse file reads as zeros");
  assertEquals((await client.next()).sha256, sha256Hex(body), "sha256 of the bytes sent");
});

Deno.test("file receives a 512 MiB upload with the daemon's RSS growing by less than 32 MiB", async () => {
  await using tree = await makeTree();
  const config = await writeConfig(
    tree.base,
    tree.root,
    'allow_upload = true\nmax_upload = "1GiB"',
  );
  await using daemon = await startDaemon(config);
  using client = await FramedClient.connect({ hostname: "127.0.0.1", port: daemon.port });
  // Warm up: the first large upload starts the hashing worker.
  const warm = await request(client, { op: "put", path: "warm.bin" }, new Uint8Array(8 * MiB));
  assert(warm.ok, "warm-up upload");
  // The worker is found (also inside the self-contained executable's bundle).
  const fallback = daemon.lines.find((line) => line.includes("worker unavailable"));
  assert(fallback === undefined, `hashing fell back to inline: ${fallback}`);
  const size = 512 * MiB;
  const chunk = new Uint8Array(4 * MiB);
  const baseline = rssKiB(daemon.pid);
  let result: Awaited<ReturnType<typeof reply>> | undefined;
  const peak = await peakRssDuring(daemon.pid, async () => {
    await client.sendHeader({ op: "put", path: "big.bin", size });
    for (let sent = 0; sent < size; sent += chunk.length) await client.writeBody(chunk);
    result = await reply(client);
  });
  assert(result?.ok, `upload failed: ${JSON.stringify(result)}`);
  assertEquals(result.header.length, size, "length");
  assertEquals((await Deno.stat(join(tree.root, "big.bin"))).size, size, "stored");
  const growthMiB = (peak - baseline) / 1024;
  assert(growthMiB < 32, `RSS grew by ${growthMiB.toFixed(1)} MiB (baseline ${baseline} KiB)`);
});

Deno.test("file answers a disk error with io_error, removes the temporary and keeps the old file", async () => {
  await using tree = await makeTree({ "keep.bin": "precious" });
  const config = await writeConfig(tree.base, tree.root, "allow_upload = true\noverwrite = true");
  await using daemon = await startDaemon(config, { fileSizeLimitKiB: 4096 });
  {
    // The whole body was read when the disk failed: the connection stays usable.
    using client = await FramedClient.connect({ hostname: "127.0.0.1", port: daemon.port });
    const result = await request(client, { op: "put", path: "five.bin" }, new Uint8Array(5 * MiB));
    assertEquals(codeOf(result), "io_error", "code");
    assert(!result.ok && result.message.includes("File too large"), JSON.stringify(result));
    assertEquals(
      codeOf(await request(client, { op: "stat", path: "keep.bin" })),
      "ok",
      "connection kept",
    );
  }
  {
    // Megabytes of the body still unread: error frame, then the connection closes.
    using client = await FramedClient.connect({ hostname: "127.0.0.1", port: daemon.port });
    await client.sendHeader({ op: "put", path: "keep.bin", size: 64 * MiB, overwrite: true });
    const chunk = new Uint8Array(MiB);
    try {
      for (let i = 0; i < 64; i++) await client.writeBody(chunk);
    } catch {
      // The server stopped reading and closed: expected.
    }
    assertEquals(codeOf(await reply(client)), "io_error", "code");
  }
  assertEquals(await walk(tree.root), ["keep.bin"], "no partial file, no temporary");
  assertEquals(await Deno.readTextFile(join(tree.root, "keep.bin")), "precious", "old file intact");
  assert(
    daemon.lines.some((l) => l.includes("op=put") && l.includes("outcome=io_error")),
    "logged",
  );
});
