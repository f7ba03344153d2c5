/**
 * `deno task build`: builds `dist/switchboard` offline, one self-contained
 * ELF file, with `bun build --compile` (npm `bun`, installed by
 * `npm install`) over the `Deno` adapter in `deno_adapter.ts`. The sha256
 * worker is a second entry point, so the pool finds it inside the file.
 *
 * Exit codes: 0 built and checked, 1 the build or its check failed.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUTPUT = join(ROOT, "dist", "switchboard");

async function run(program: string, args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  return { code, out };
}

async function build(): Promise<number> {
  const bun = join(ROOT, "node_modules", ".bin", "bun");
  try {
    Deno.statSync(bun);
  } catch {
    console.error(`build: ${bun} is missing; run "npm install" first`);
    return 1;
  }
  await Deno.mkdir(dirname(OUTPUT), { recursive: true });
  const started = performance.now();
  const built = await run(bun, [
    "build",
    "--compile",
    "--minify-syntax",
    "--compile-exec-argv=--smol",
    // Entry points at the root of the embedded tree, where the sha256 pool's
    // `new URL("./sha256_worker.ts", import.meta.url)` finds the worker (in a
    // bundle, import.meta.url is the executable's own entry).
    "--entry-naming",
    "[name].[ext]",
    "--outfile",
    OUTPUT,
    "deploy/executable/entry.ts",
    "lib/sha256_worker.ts",
  ]);
  if (built.code !== 0) {
    console.error(`build: bun build failed (exit ${built.code}):\n${built.out}`);
    return 1;
  }
  const version = await run(OUTPUT, ["version"]);
  if (version.code !== 0) {
    console.error(`build: ${OUTPUT} does not run (exit ${version.code}):\n${version.out}`);
    return 1;
  }
  const size = (Deno.statSync(OUTPUT).size / 2 ** 20).toFixed(1);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`build: ${OUTPUT} (${size} MiB, ${seconds} s): ${version.out.trim()}`);
  return 0;
}

Deno.exit(await build());
