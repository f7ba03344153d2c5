/**
 * The worker of bench/deno_cmd_worker.ts: spawns `/bin/sh -c true` per
 * message and relays its output and exit to the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { spawnTrue } from "./spawn_true.ts";

async function relay(
  id: number,
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
): Promise<void> {
  for await (const chunk of stream) self.postMessage({ id, type: "out", chunk }, [chunk.buffer]);
}

self.onmessage = async (event: MessageEvent<{ id: number; setsid: boolean }>) => {
  const { id, setsid } = event.data;
  const child = spawnTrue(setsid);
  await Promise.all([relay(id, child.stdout), relay(id, child.stderr), child.status]);
  self.postMessage({ id, type: "exit" });
};
