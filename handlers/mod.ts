/**
 * The static table of built-in services. Adding a service is a folder in
 * `handlers/` (its `mod.ts` exporting the `Service` record) and one line here.
 *
 * @module
 */

import type { Service } from "../lib/service.ts";
import { chargenService } from "./chargen/mod.ts";
import { chatService } from "./chat/mod.ts";
import { cmdService } from "./cmd/mod.ts";
import { discardService } from "./discard/mod.ts";
import { echoService } from "./echo/mod.ts";
import { execService } from "./exec/mod.ts";
import { fileService } from "./file/mod.ts";
import { redirectService } from "./redirect/mod.ts";
import { timeService } from "./time/mod.ts";

/**
 * Every built-in service, in the order `check` and `--help` list them and
 * the embedded default config runs them.
 */
export const SERVICES: readonly Service[] = [
  echoService,
  chatService,
  cmdService,
  timeService,
  fileService,
  discardService,
  chargenService,
  execService,
  redirectService,
];

/**
 * Finds a service by name.
 * @param name the value of `service = "…"`
 * @returns the entry, or undefined
 */
export function findService(name: string): Service | undefined {
  return SERVICES.find((service) => service.name === name);
}
