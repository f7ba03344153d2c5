/**
 * Bounded waiting for graceful shutdown: a promise against a deadline.
 *
 * @module
 */

/**
 * Waits for `promise` until `deadline` (a `performance.now()` time). A
 * rejection counts as settled; nothing is thrown.
 *
 * @example
 * ```ts
 * import { settlesBy } from "./settles_by.ts";
 * const never = new Promise(() => {});
 * if (await settlesBy(never, performance.now() + 10)) throw new Error("cannot settle");
 * if (!(await settlesBy(Promise.reject(new Error("x")), performance.now() + 10))) throw new Error();
 * ```
 *
 * @param promise what to wait for
 * @param deadline a `performance.now()` time
 * @returns true when it settled in time
 */
export async function settlesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
