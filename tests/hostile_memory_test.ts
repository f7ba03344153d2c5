/**
 * Clients that pipeline requests and never read the replies, against a real
 * daemon subprocess: the daemon stops reading from them, and each costs it at
 * most 512 KiB of memory (RSS), whatever it sends, while others are served.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeFrame, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { concatBytes, listenerToml, spawnDaemon, tempConfig } from "./_helpers.ts";
import { rssKiB, settle, stalledWriter } from "./_hostile.ts";

const encoder = new TextEncoder();
const PER_SERVICE = 24;
const BIG = 8 * 1024 * 1024;

Deno.test("clients that never read cost the daemon at most 512 KiB each, and others are served", async () => {
  await using config = await tempConfig("");
  const root = `${config.dir}/files`;
  await Deno.mkdir(root);
  await Deno.writeFile(`${root}/big.bin`, new Uint8Array(BIG).fill(0x61));
  await Deno.writeTextFile(`${root}/small.txt`, "small\n");
  await Deno.writeTextFile(
    config.path,
    '[daemon]\nlog_level = "info"\n' +
      listenerToml({ name: "file", service: "file", listen: "127.0.0.1:0", root }) +
      listenerToml({ name: "cmd", service: "cmd", listen: "127.0.0.1:0", auth: "none" }) +
      listenerToml({ name: "echo", service: "echo", listen: "127.0.0.1:0" }) +
      listenerToml({ name: "time", service: "time", transport: "tcp", listen: "127.0.0.1:0" }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const pid = daemon.child.pid;
  const ports = {
    file: daemon.port("file"),
    cmd: daemon.port("cmd"),
    echo: daemon.port("echo"),
    time: daemon.port("time"),
  };
  const requests: Record<keyof typeof ports, Uint8Array> = {
    file: concatBytes([
      ...Array(3).fill(encodeFrame({ op: "get", path: "big.bin" })),
      ...Array(200).fill(encodeFrame({ op: "stat", path: "small.txt" })),
    ]),
    cmd: concatBytes(
      Array(3).fill(encodeFrame({ op: "exec", argv: ["head", "-c", "20000000", "/dev/zero"] })),
    ),
    echo: new Uint8Array(4 * 1024 * 1024).fill(0x62),
    time: encoder.encode("%Y-%m-%d %H:%M:%S\n".repeat(20_000)),
  };

  // The same traffic from clients that do read, until the daemon's heap has
  // grown to what this work needs (a round adds under 2 MiB), so that the
  // baseline is not a heap still growing.
  let before = rssKiB(pid);
  for (let round = 0; round < 6; round++) {
    for (const [service, port] of Object.entries(ports) as [keyof typeof ports, number][]) {
      await Promise.all(Array.from({ length: 4 }, () => readingClient(port, requests[service])));
    }
    const now = await settle(pid);
    const grew = now - before;
    before = now;
    if (round > 0 && grew < 2048) break;
  }

  const stalled = [];
  for (const [service, port] of Object.entries(ports) as [keyof typeof ports, number][]) {
    const clients = Array.from(
      { length: PER_SERVICE },
      () => stalledWriter(port, requests[service]),
    );
    stalled.push(...await Promise.all(clients));
  }
  const during = await settle(pid);
  const clients = stalled.length;
  const perClientKiB = (during - before) / clients;

  // Someone else is still served meanwhile.
  using probe = await Deno.connect({ hostname: "127.0.0.1", port: ports.file });
  await writeAll(probe, encodeFrame({ op: "stat", path: "small.txt" }));
  assert.equal((await new FrameReader(probe).readHeader())?.op, "stat");

  for (const client of stalled) client.close();
  assert.ok(
    perClientKiB < 512,
    `RSS ${before} KiB before, ${during} KiB with ${clients} non-reading clients: ` +
      `${perClientKiB.toFixed(0)} KiB each`,
  );
  console.log(
    `non-readers: ${clients}, RSS ${before} → ${during} KiB, ${perClientKiB.toFixed(0)} KiB each`,
  );
});

/** Sends `bytes` while reading everything back, until the daemon has answered it all. */
async function readingClient(port: number, bytes: Uint8Array): Promise<void> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sending = writeAll(conn, bytes).then(() => conn.closeWrite());
  const buffer = new Uint8Array(256 * 1024);
  while ((await conn.read(buffer)) !== null) { /* drain */ }
  await sending;
}
