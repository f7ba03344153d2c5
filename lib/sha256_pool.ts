/**
 * Streaming SHA-256 for transfers, on or off the transfer path. Small
 * transfers hash inline (`node:crypto`, ~1.8 GB/s here, on the event loop).
 * Large ones hash in one shared worker that reads the chunks from shared
 * memory, so that the event loop moves bytes while another core hashes: a
 * chunk may be reused once the worker has acknowledged it. When the worker
 * cannot start (e.g. a bundle without its module), hashing falls back to
 * inline, with one warning.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Logger } from "./log.ts";
import type { Sha256WorkerReply, Sha256WorkerRequest } from "./sha256_worker.ts";

/** A running SHA-256 over chunks passed in order. */
export interface Sha256Job {
  /** Whether chunks must be views of a SharedArrayBuffer (worker jobs). */
  readonly shared: boolean;
  /**
   * Adds a chunk. Inline jobs hash it at once and return undefined; worker
   * jobs return a promise that settles once the chunk may be overwritten.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** Finishes: the hex digest of every chunk passed. */
  digest(): Promise<string>;
  /** Abandons the job (after a failed transfer). */
  drop(): void;
}

/**
 * Creates a job that hashes on the calling thread.
 * @returns the job
 */
export function inlineSha256Job(): Sha256Job {
  const hash = createHash("sha256");
  return {
    shared: false,
    update(chunk) {
      hash.update(chunk);
      return undefined;
    },
    digest: () => Promise.resolve(hash.digest("hex")),
    drop() {},
  };
}

/** Options for {@linkcode Sha256Pool}. */
export interface Sha256PoolOptions {
  /** Where a worker failure is reported. */
  log?: Logger;
  /** Transfers at least this long hash in the worker. @default {4 MiB} */
  workerMinBytes?: number;
  /** An unused worker is stopped after this long, in ms. @default {30000} */
  idleMs?: number;
  /** The worker module (tests may break it on purpose). */
  workerUrl?: URL;
}

interface PendingJob {
  acks: Array<{ resolve: () => void; reject: (error: Error) => void }>;
  digest?: { resolve: (hex: string) => void; reject: (error: Error) => void };
}

const READY_TIMEOUT_MS = 10_000;

/** Hands out SHA-256 jobs, inline or in a lazily started worker. */
export class Sha256Pool {
  #log?: Logger;
  #workerMinBytes: number;
  #idleMs: number;
  #url: URL;
  #worker?: Worker;
  #ready?: Promise<Worker | null>;
  #broken = false;
  #closed = false;
  #jobs = new Map<number, PendingJob>();
  #nextId = 1;
  #idleTimer?: ReturnType<typeof setTimeout>;

  /**
   * @param options logger, size threshold, idle time and worker module
   */
  constructor(options: Sha256PoolOptions = {}) {
    this.#log = options.log;
    this.#workerMinBytes = options.workerMinBytes ?? 4 * 1024 * 1024;
    this.#idleMs = options.idleMs ?? 30_000;
    this.#url = options.workerUrl ?? new URL("./sha256_worker.ts", import.meta.url);
  }

  /**
   * Creates a job for a transfer of `expectedBytes`.
   * @param expectedBytes how much will be hashed
   * @returns an inline job for small transfers (or without a worker), else a worker job
   */
  async job(expectedBytes: number): Promise<Sha256Job> {
    if (expectedBytes < this.#workerMinBytes || this.#broken || this.#closed) {
      return inlineSha256Job();
    }
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const worker = await this.#start();
    if (!worker) return inlineSha256Job();
    return this.#workerJob(worker);
  }

  #start(): Promise<Worker | null> {
    this.#ready ??= new Promise<Worker | null>((resolve) => {
      let worker: Worker;
      try {
        worker = new Worker(this.#url, { type: "module", name: "sha256" });
      } catch (error) {
        this.#fail(error);
        resolve(null);
        return;
      }
      this.#worker = worker;
      const timer = setTimeout(() => {
        this.#fail(new Error("the worker did not start in time"));
        resolve(null);
      }, READY_TIMEOUT_MS);
      worker.onmessage = (event: MessageEvent<Sha256WorkerReply>) => {
        if (event.data.type === "ready") {
          clearTimeout(timer);
          worker.onmessage = (e: MessageEvent<Sha256WorkerReply>) => this.#onReply(e.data);
          resolve(worker);
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        // Handled here: an unhandled worker error would end the daemon.
        event.preventDefault();
        clearTimeout(timer);
        this.#fail(event.error ?? new Error(event.message));
        resolve(null);
      };
      worker.onmessageerror = () => this.#fail(new Error("a message could not be decoded"));
    });
    return this.#ready;
  }

  #workerJob(worker: Worker): Sha256Job {
    const id = this.#nextId++;
    const pending: PendingJob = { acks: [] };
    this.#jobs.set(id, pending);
    const post = (message: Sha256WorkerRequest): void => worker.postMessage(message);
    let sharedBuffer: SharedArrayBuffer | undefined;
    return {
      shared: true,
      update: (chunk) => {
        if (!(chunk.buffer instanceof SharedArrayBuffer)) {
          throw new TypeError("Cannot hash in the worker: chunk is not in shared memory");
        }
        if (!this.#jobs.has(id)) return Promise.reject(new Error("SHA-256 worker stopped"));
        if (chunk.buffer !== sharedBuffer) {
          sharedBuffer = chunk.buffer as SharedArrayBuffer;
          post({ type: "buffer", id, buffer: sharedBuffer });
        }
        return new Promise<void>((resolve, reject) => {
          pending.acks.push({ resolve, reject });
          post({ type: "update", id, offset: chunk.byteOffset, length: chunk.byteLength });
        });
      },
      digest: () => {
        if (!this.#jobs.has(id)) return Promise.reject(new Error("SHA-256 worker stopped"));
        return new Promise<string>((resolve, reject) => {
          pending.digest = { resolve, reject };
          post({ type: "digest", id });
        });
      },
      drop: () => {
        if (!this.#jobs.delete(id)) return;
        post({ type: "drop", id });
        for (const ack of pending.acks) ack.resolve();
        this.#maybeIdle();
      },
    };
  }

  #onReply(message: Sha256WorkerReply): void {
    if (message.type === "ready") return;
    const pending = this.#jobs.get(message.id);
    if (!pending) return;
    if (message.type === "ack") {
      pending.acks.shift()?.resolve();
    } else {
      this.#jobs.delete(message.id);
      pending.digest?.resolve(message.hex);
      this.#maybeIdle();
    }
  }

  #maybeIdle(): void {
    if (this.#jobs.size > 0 || this.#closed || !this.#worker || this.#idleTimer !== undefined) {
      return;
    }
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#jobs.size === 0) this.#stopWorker();
    }, this.#idleMs);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #fail(error: unknown): void {
    if (!this.#broken) {
      this.#log?.warn(
        `SHA-256 worker unavailable, hashing inline: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    this.#broken = true;
    this.#stopWorker();
  }

  #stopWorker(): void {
    const failure = new Error("SHA-256 worker stopped");
    for (const pending of this.#jobs.values()) {
      for (const ack of pending.acks) ack.reject(failure);
      pending.digest?.reject(failure);
    }
    this.#jobs.clear();
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#ready = undefined;
  }

  /** Stops the worker; later jobs hash inline. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#stopWorker();
  }
}
