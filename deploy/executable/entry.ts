/**
 * The entry point of the self-contained executable: installs the `Deno`
 * adapter, then runs switchboard's own `main` (imported only afterwards, so
 * no module of the daemon runs before `Deno` exists).
 *
 * @module
 */

import process from "node:process";
import { bridgeUncaughtErrors, createDeno } from "./deno_adapter.ts";

(globalThis as { Deno?: unknown }).Deno = createDeno(process.argv.slice(2));
bridgeUncaughtErrors();
const { main } = await import("../../main.ts");
process.exit(await main(process.argv.slice(2)));
