/**
 * Keeps a long transfer marked busy only while it makes progress. A busy
 * connection is never cut by the idle timeout and is waited for at
 * shutdown; a client that stops reading a download (or sending an upload)
 * would otherwise hold its connection forever. After an interval without
 * progress the connection is marked idle, so the listener's `idle_timeout`
 * (and a graceful stop) can close it; progress marks it busy again.
 *
 * @module
 */

import type { ConnectionContext } from "../../lib/service.ts";

/** How often progress is checked, in ms. */
export const STALL_CHECK_MS = 2000;

/** Watches one transfer; dispose it when the transfer ends. */
export class StallWatch implements Disposable {
  #context: Pick<ConnectionContext, "setBusy">;
  #timer?: ReturnType<typeof setInterval>;
  #moved = false;
  #stalled = false;

  /**
   * @param context the connection's context (for busy marking)
   * @param intervalMs how long without progress marks the connection idle
   *   (0: no timer, {@linkcode StallWatch.check} is called by the owner)
   */
  constructor(context: Pick<ConnectionContext, "setBusy">, intervalMs = STALL_CHECK_MS) {
    this.#context = context;
    if (intervalMs > 0) this.#timer = setInterval(() => this.check(), intervalMs);
  }

  /** Whether the transfer is currently considered stalled. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** One check: no progress since the last one marks the transfer stalled. */
  check(): void {
    if (!this.#moved && !this.#stalled) {
      this.#stalled = true;
      this.#context.setBusy(false);
    }
    this.#moved = false;
  }

  /** Records progress (bytes moved). */
  progress(): void {
    this.#moved = true;
    if (this.#stalled) {
      this.#stalled = false;
      this.#context.setBusy(true);
    }
  }

  /** Stops watching; the request is busy again for whatever follows. */
  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    if (this.#stalled) {
      this.#stalled = false;
      this.#context.setBusy(true);
    }
  }
}
