/**
 * The project's own docs are all a user has: they point only at files in
 * the repository, carry the whole wire protocol, and their examples work.
 */

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { EXIT_STATUS } from "../cli/exit_status.ts";
import { encodeFrame } from "../lib/header_codec.ts";
import { ROOT, runCli } from "./_helpers.ts";

const decoder = new TextDecoder();

async function trackedFiles(): Promise<string[]> {
  const output = await new Deno.Command("git", { args: ["ls-files", "-z"], cwd: ROOT }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return decoder.decode(output.stdout).split("\0").filter((path) => path !== "");
}

function markdownUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(join(ROOT, dir))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...markdownUnder(path));
    else if (entry.name.endsWith(".md")) found.push(path);
  }
  return found;
}

// What a user reads: the README and the docs, whatever is tracked yet.
const USER_DOCS = ["README.md", ...markdownUnder("docs")];

Deno.test("nothing a user reads points outside the repository", async () => {
  // The developers' design notes and reference servers live outside it.
  const outside = /\.\.\/shared\b|\/work\/shared\b|DESIGN\.md/;
  const offenders: string[] = [];
  for (const path of await trackedFiles()) {
    // bench/ records measurements against reference servers kept elsewhere;
    // its scripts may name them, its Markdown may not point at the notes.
    const benchScript = path.startsWith("bench/") && !path.endsWith(".md");
    if (benchScript || /\.(png|jpg|gz|lock)$/.test(path) || path.endsWith("package-lock.json")) {
      continue;
    }
    let text: string;
    try {
      text = await Deno.readTextFile(join(ROOT, path));
    } catch {
      continue; // deleted in the work tree
    }
    const pattern = path.startsWith("bench/") ? /\.\.\/shared\b|DESIGN\.md/ : outside;
    text.split("\n").forEach((line, index) => {
      if (pattern.test(line)) offenders.push(`${path}:${index + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (heading) anchors.add(slug(heading[1]!));
  }
  return anchors;
}

Deno.test("every link in the README and docs leads to a file (and heading) in the repository", async () => {
  const broken: string[] = [];
  for (const doc of USER_DOCS) {
    const text = await Deno.readTextFile(join(ROOT, doc));
    const withoutCode = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
    for (const [, target] of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target!) || target!.startsWith("/")) {
        broken.push(`${doc}: ${target} is not a file in the repository`);
        continue;
      }
      const [file, anchor] = target!.split("#");
      const path = file === "" ? doc : join(dirname(doc), file!);
      if (relative(ROOT, join(ROOT, path)).startsWith("..")) {
        broken.push(`${doc}: ${target} leaves the repository`);
        continue;
      }
      const info = await Deno.stat(join(ROOT, path)).catch(() => undefined);
      if (!info) {
        broken.push(`${doc}: ${target} does not exist`);
        continue;
      }
      if (
        anchor !== undefined && !anchorsOf(await Deno.readTextFile(join(ROOT, path))).has(anchor)
      ) {
        broken.push(`${doc}: ${target} names no heading of ${path}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("the README's exit code table is the one the man page is made from", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const start = readme.indexOf("## Exit codes");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const rows = section.split("\n").filter((line) => /^\| (?!code|-)/.test(line)).map((line) =>
    line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"))
  );
  assert.deepEqual(rows, EXIT_STATUS.map((row) => [row.code, row.verbs, row.meaning]));
  for (const code of ["124", "128+n", "141", "255"]) assert.ok(rows.some((row) => row[0] === code));
});

Deno.test("the README names one short command that runs any verb from the checkout", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  assert.match(readme, /`npx switchboard VERB …`/);
  assert.match(readme, /`\.\/bin\/switchboard VERB …`/);
  const pkg = JSON.parse(await Deno.readTextFile(join(ROOT, "package.json")));
  assert.equal(pkg.bin.switchboard, "bin/switchboard");
  assert.ok(
    (await Deno.stat(join(ROOT, "bin/switchboard"))).mode! & 0o111,
    "bin/switchboard is executable",
  );
});

Deno.test("every example config passes check wherever it is copied", async (t) => {
  const examples = [
    "config.example.toml",
    ...[...Deno.readDirSync(join(ROOT, "docs"))].map((entry) => `docs/${entry.name}`)
      .filter((path) => /^docs\/config_.*\.toml$/.test(path)).sort(),
  ];
  assert.ok(examples.length >= 5, examples.join(", "));
  const prefix = await Deno.makeTempDir();
  try {
    for (const example of examples) {
      await t.step(example, async () => {
        const inPlace = await runCli(["check", "-c", join(ROOT, example)], { cwd: "/" });
        assert.equal(inPlace.code, 0, inPlace.stderr);
        // Where the install script puts config.example.toml.
        const etc = join(prefix, "etc/switchboard");
        await Deno.mkdir(etc, { recursive: true });
        const copy = join(etc, "switchboard.toml");
        await Deno.copyFile(join(ROOT, example), copy);
        const copied = await runCli(["check", "-c", copy], { cwd: "/" });
        assert.equal(copied.code, 0, copied.stderr);
      });
    }
  } finally {
    await Deno.remove(prefix, { recursive: true });
  }
});

Deno.test("docs/protocol.md carries every op, every error code and a true frame example", async () => {
  const protocol = await Deno.readTextFile(join(ROOT, "docs/protocol.md"));
  const server = await Deno.readTextFile(join(ROOT, "lib/framed_server.ts"));
  const union = /export type ErrorCode =([^;]+);/.exec(server)![1]!;
  const codes = [...union.matchAll(/"([a-z_]+)"/g)].map((match) => match[1]!);
  assert.ok(codes.length >= 10);
  for (const code of codes) assert.match(protocol, new RegExp(`\\| \`${code}\` +\\|`), code);

  const sources = await trackedFiles();
  const ops = new Set(["exec", "get", "put", "list", "stat"]);
  for (const path of sources.filter((p) => /^(handlers|lib)\/.*\.ts$/.test(p))) {
    const text = await Deno.readTextFile(join(ROOT, path)).catch(() => "");
    for (const match of text.matchAll(/\bop: "([a-z_]+)"/g)) ops.add(match[1]!);
  }
  for (const op of ops) assert.ok(protocol.includes(`"op":"${op}"`), `op ${op}`);

  const example = /```\n00 00 00 ([0-9a-f ]+)\n\^ length (\d+) +(\{.*\})\n```/.exec(protocol);
  assert.ok(example, "the frame example is there");
  const bytes = `00 00 00 ${example[1]}`.trim().split(/\s+/).map((hex) => parseInt(hex, 16));
  const header = JSON.parse(example[3]!);
  assert.deepEqual(bytes, [...encodeFrame(header)]);
  assert.equal(Number(example[2]), bytes.length - 4);

  for (
    const section of ["## The framed protocol", "## cmd (framed)", "## file (framed)", "## echo"]
  ) {
    assert.ok(protocol.includes(section), section);
  }
  for (
    const line of ["* <name> joined", "* members:", "error: room full", "/nick NAME", "%Y", "YYYY"]
  ) {
    assert.ok(protocol.includes(line), line);
  }
});
