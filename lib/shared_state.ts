/**
 * State that listeners of one supervisor share across reloads (a chat room
 * used by a TCP and a UDP listener, cmd's running count, file's uploads in
 * flight). Keys are namespaced by service: `"chat:room:lobby"`.
 *
 * @module
 */

/**
 * A keyed store where each value is created on first use.
 *
 * @example
 * ```ts
 * import { SharedState } from "./shared_state.ts";
 * const shared = new SharedState();
 * const a = shared.obtain("demo:count", () => ({ n: 0 }));
 * a.n++;
 * if (shared.obtain("demo:count", () => ({ n: 0 })).n !== 1) throw new Error("not shared");
 * shared.forget("demo:count", a);
 * if (shared.obtain("demo:count", () => ({ n: 5 })).n !== 5) throw new Error("not forgotten");
 * ```
 */
export class SharedState {
  #values = new Map<string, unknown>();

  /**
   * The value under `key`, created with `create` when there is none. Each key
   * must always be used with one type (its namespace prefix says whose it is).
   * @param key the namespaced key
   * @param create makes the first value
   * @returns the shared value
   */
  obtain<T>(key: string, create: () => T): T {
    if (this.#values.has(key)) return this.#values.get(key) as T;
    const value = create();
    this.#values.set(key, value);
    return value;
  }

  /**
   * Removes `key` if it still holds `value` (a newer value is kept).
   * @param key the namespaced key
   * @param value the value the caller is done with
   */
  forget(key: string, value: unknown): void {
    if (this.#values.get(key) === value) this.#values.delete(key);
  }

  /**
   * The keys held now (to see that nothing outlives its listeners).
   * @returns the keys, in insertion order
   */
  keys(): string[] {
    return [...this.#values.keys()];
  }
}
