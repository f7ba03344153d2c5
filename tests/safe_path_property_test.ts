/**
 * Property test of path containment: random request paths, made of the
 * names in a tree full of symlinks (inside, outside, relative, absolute,
 * looping, hidden), dots, slashes and junk, either resolve to a file or
 * directory whose real path is inside the served root, or are refused with a
 * request error (forbidden, not_found, bad_request) — never anything else.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { RequestError } from "../lib/framed_server.ts";
import { ServedRoot, splitRequestPath } from "../handlers/file/safe_path.ts";

const RUNS = Number(Deno.env.get("SWITCHBOARD_PROPERTY_RUNS") ?? 300) * 3;

async function makeTree(base: string): Promise<string> {
  const root = `${base}/root`;
  const outside = `${base}/outside`;
  await Deno.mkdir(`${root}/a/b`, { recursive: true });
  await Deno.mkdir(`${root}/.hidden`);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/secret.txt`, "secret");
  await Deno.writeTextFile(`${root}/a/file.txt`, "in");
  await Deno.writeTextFile(`${root}/a/b/deep.txt`, "deep");
  await Deno.writeTextFile(`${root}/.hidden/h.txt`, "hidden");
  const links: [string, string][] = [
    ["a/up", ".."], // the root itself
    ["a/b/up2", "../.."], // the root
    ["a/escape", "../../outside"], // a directory outside
    ["a/b/secret", `${outside}/secret.txt`], // an absolute file outside
    ["a/etc", "/etc"],
    ["a/inside", "b/deep.txt"],
    ["a/abs_inside", `${root}/a/file.txt`],
    ["a/loop", "loop"],
    ["a/to_hidden", "../.hidden"],
    ["a/dangling", "nowhere"],
    ["rootlink", "."],
    ["a/b/far", "../../../outside/secret.txt"],
  ];
  for (const [path, target] of links) await Deno.symlink(target, `${root}/${path}`);
  return root;
}

const segment = fc.oneof(
  fc.constantFrom(
    "a",
    "b",
    "file.txt",
    "deep.txt",
    "up",
    "up2",
    "escape",
    "secret",
    "secret.txt",
    "etc",
    "passwd",
    "inside",
    "abs_inside",
    "loop",
    "to_hidden",
    ".hidden",
    "h.txt",
    "dangling",
    "rootlink",
    "far",
    "outside",
    "..",
    ".",
    "",
    "...",
    "a\\..",
    "\0",
    "x".repeat(300),
  ),
  fc.string({ maxLength: 6 }),
);
const requestPath = fc.tuple(
  fc.constantFrom("", "", "", "/", "./", "//"),
  fc.array(segment, { maxLength: 7 }),
).map(([lead, parts]) => lead + parts.join("/"));

Deno.test("property: random request paths never resolve outside the root, symlinks or not", async () => {
  const base = await Deno.makeTempDir();
  try {
    const root = await makeTree(base);
    for (const showHidden of [false, true]) {
      const served = await ServedRoot.open(root, { showHidden });
      const realRoot = served.path;
      fc.assert(
        fc.property(fc.oneof(requestPath, fc.string({ maxLength: 40 })), (path) => {
          let names: string[];
          try {
            names = splitRequestPath(path, { showHidden });
            const entry = served.resolve(names);
            const real = Deno.realPathSync(entry.real);
            assert.ok(
              real === realRoot || real.startsWith(`${realRoot}/`),
              `${JSON.stringify(path)} resolved to ${real}`,
            );
            if (!showHidden) assert.ok(!real.slice(realRoot.length).includes("/."), real);
            if (entry.info.isFile) served.openResolved(names, entry).file.close();
          } catch (error) {
            if (!(error instanceof RequestError)) throw error;
            assert.ok(
              ["forbidden", "not_found", "bad_request"].includes(error.code),
              `${JSON.stringify(path)}: ${error.code}`,
            );
            assert.ok(!error.message.includes(base), `message leaks a path: ${error.message}`);
          }
        }),
        { numRuns: RUNS },
      );
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
