/**
 * The static table of built-in services. Adding a service is one file in
 * this folder and one line here.
 *
 * @module
 */

import type { Service } from "../lib/service.ts";
import { cmdService } from "./cmd.ts";
import { echoService } from "./echo.ts";
import { timeService } from "./time.ts";

/** Every built-in service, in the order `check` and `--help` list them. */
export const SERVICES: readonly Service[] = [
  echoService,
  cmdService,
  timeService,
];

/**
 * Finds a service by name.
 * @param name the value of `service = "…"`
 * @returns the entry, or undefined
 */
export function findService(name: string): Service | undefined {
  return SERVICES.find((service) => service.name === name);
}
