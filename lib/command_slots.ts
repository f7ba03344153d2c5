/**
 * Concurrency slots of a listener that runs programs (`max_concurrent`):
 * a counter shared across reloads of the listener, taken before a program
 * starts and given back once its process group is gone.
 *
 * @module
 */

import { once } from "./once.ts";

/** Programs running on one listener (kept in the supervisor's shared state). */
export interface SlotCounter {
  /** How many slots are taken now (by this process). */
  running: number;
  /**
   * Takes a slot where the count is kept elsewhere (a worker asks its
   * supervisor); absent, `running` is the count.
   */
  acquire?(max: number): Promise<(() => void) | undefined>;
}

/**
 * Takes a slot when fewer than `max` are taken.
 *
 * @example
 * ```ts
 * import { trySlot } from "./command_slots.ts";
 * const slots = { running: 0 };
 * const release = trySlot(slots, 1)!;
 * if (trySlot(slots, 1) !== undefined) throw new Error("over the limit");
 * release();
 * release(); // idempotent
 * if (slots.running !== 0) throw new Error("not released");
 * ```
 *
 * @param slots the listener's counter
 * @param max the listener's `max_concurrent`
 * @returns an idempotent release function, or undefined when all are taken
 */
export function trySlot(slots: SlotCounter, max: number): (() => void) | undefined {
  if (slots.running >= max) return undefined;
  slots.running++;
  return once(() => {
    slots.running--;
  });
}

/**
 * Takes a slot when fewer than `max` are taken, asking whoever keeps the
 * count when it is kept elsewhere (`[daemon] workers`).
 * @param slots the listener's counter
 * @param max the listener's `max_concurrent`
 * @returns an idempotent release function, or undefined when all are taken
 * @throws {Error} when the one keeping the count is gone
 */
export function acquireSlot(slots: SlotCounter, max: number): Promise<(() => void) | undefined> {
  return slots.acquire ? slots.acquire(max) : Promise.resolve(trySlot(slots, max));
}
