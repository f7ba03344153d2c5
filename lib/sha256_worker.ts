/**
 * The SHA-256 worker: hashes chunks that the main thread shares with it
 * (views of a SharedArrayBuffer), so that hashing a large transfer runs on
 * another core than the transfer itself. Protocol: see `sha256_pool.ts`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash, type Hash } from "node:crypto";

/** A message from the pool. */
export type Sha256WorkerRequest =
  | { type: "buffer"; id: number; buffer: SharedArrayBuffer }
  | { type: "update"; id: number; offset: number; length: number }
  | { type: "digest"; id: number }
  | { type: "drop"; id: number };

/** A message to the pool. */
export type Sha256WorkerReply =
  | { type: "ready" }
  | { type: "ack"; id: number }
  | { type: "digest"; id: number; hex: string };

const jobs = new Map<number, Hash>();
// A job's shared memory is sent once; updates then carry only offsets (a
// SharedArrayBuffer in every message costs measurable CPU on both threads).
const buffers = new Map<number, SharedArrayBuffer>();

function reply(message: Sha256WorkerReply): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<Sha256WorkerRequest>): void => {
  const message = event.data;
  switch (message.type) {
    case "buffer":
      buffers.set(message.id, message.buffer);
      break;
    case "update": {
      let hash = jobs.get(message.id);
      if (!hash) {
        hash = createHash("sha256");
        jobs.set(message.id, hash);
      }
      const buffer = buffers.get(message.id)!;
      hash.update(new Uint8Array(buffer, message.offset, message.length));
      reply({ type: "ack", id: message.id });
      break;
    }
    case "digest": {
      const hash = jobs.get(message.id) ?? createHash("sha256");
      jobs.delete(message.id);
      buffers.delete(message.id);
      reply({ type: "digest", id: message.id, hex: hash.digest("hex") });
      break;
    }
    case "drop":
      jobs.delete(message.id);
      buffers.delete(message.id);
      break;
  }
};

reply({ type: "ready" });
