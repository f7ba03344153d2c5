/**
 * A give-back that runs once however often it is called: the release
 * functions of slots and admissions are idempotent this way.
 *
 * @module
 */

/**
 * Wraps `release` so that only its first call runs it.
 *
 * @example
 * ```ts
 * import { once } from "./once.ts";
 * let n = 0;
 * const release = once(() => n++);
 * release();
 * release();
 * if (n !== 1) throw new Error("ran twice");
 * ```
 *
 * @param release what to run, once
 * @returns the idempotent function (never throws but what `release` throws)
 */
export function once(release: () => void): () => void {
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    release();
  };
}
