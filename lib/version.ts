/**
 * The program's version, kept equal to package.json's by a test.
 *
 * @module
 */

/** switchboard's version. */
export const VERSION = "0.1.0";

/**
 * The runtime this process runs on: `deno 2.9.6` under Deno, or the
 * self-contained executable's runtime (`bun 1.4.5, single executable`).
 * @returns a short description for `switchboard version` and the logs
 */
export function runtimeName(): string {
  const bun = (globalThis as { Bun?: { version?: string } }).Bun;
  if (bun?.version) return `bun ${bun.version}, single executable`;
  return `deno ${Deno.version.deno}`;
}
