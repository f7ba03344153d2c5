/**
 * The program's version, kept equal to package.json's by a test.
 *
 * @module
 */

/** switchboard's version. */
export const VERSION = "0.1.0";
