/**
 * The layout is the architecture: `lib/` (the core) knows no service and no
 * client verb, a service folder imports no other service, and nothing
 * imports in a cycle. These rules are read from the import specifiers of
 * every `.ts` file in the repository.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const SKIP = new Set(["node_modules", ".git", "dist", "out"]);

/** Module (repo-relative path) → the repo-relative modules it imports. */
type ImportGraph = Map<string, string[]>;

// Static imports and re-exports (`import … from "x"`, `import "x"`,
// `export … from "x"`), dynamic `import("x")`, and workers or assets loaded
// by `new URL("x", import.meta.url)`.
const SPECIFIERS = [
  /\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  /\bnew\s+URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g,
];

/**
 * The relative specifiers a source text imports (comments are ignored).
 * @param text TypeScript source
 * @returns the specifiers, in order of appearance per kind
 */
function specifiersOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const pattern of SPECIFIERS) {
    for (const match of code.matchAll(pattern)) found.push(match[1]!);
  }
  return found.filter((specifier) => specifier.startsWith("."));
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (SKIP.has(entry.name) || entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...sourceFiles(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

function repositoryGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(ROOT)) {
    const from = relative(ROOT, file);
    const targets = specifiersOf(Deno.readTextFileSync(file))
      .map((specifier) => relative(ROOT, resolve(dirname(file), specifier)));
    graph.set(from, [...new Set(targets)]);
  }
  return graph;
}

/** `handlers/chat/room.ts` → `"chat"`; files outside a service folder → undefined. */
function serviceFolder(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "handlers" && parts.length > 2 ? parts[1] : undefined;
}

/**
 * Every import that breaks a layering rule, as `"from → to: why"`.
 * @param graph the import graph
 * @returns the violations, sorted
 */
function layeringViolations(graph: ImportGraph): string[] {
  const violations: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const top = to.split("/")[0];
      if (from.startsWith("lib/") && (top === "handlers" || top === "cli")) {
        violations.push(`${from} → ${to}: lib/ imports nothing from handlers/ or cli/`);
      }
      const mine = serviceFolder(from);
      const theirs = serviceFolder(to);
      if (mine && theirs && mine !== theirs) {
        violations.push(`${from} → ${to}: one service folder imports another`);
      }
      if (mine && to === "handlers/mod.ts") {
        violations.push(`${from} → ${to}: a service imports the service table`);
      }
    }
  }
  return violations.sort();
}

/**
 * The import cycles of a graph, each as the path `a → b → … → a`
 * (one per strongly connected component, found by Tarjan's algorithm).
 * @param graph the import graph
 * @returns the cycles, sorted
 */
function cyclesOf(graph: ImportGraph): string[] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfLoop = graph.get(node)?.includes(node) ?? false;
    if (component.length > 1 || selfLoop) cycles.push(cyclePath(graph, new Set(component)));
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles.sort();
}

/** One concrete cycle through a strongly connected component, from its first node in order. */
function cyclePath(graph: ImportGraph, component: Set<string>): string {
  const start = [...component].sort()[0]!;
  const path = [start];
  const seen = new Set([start]);
  const walk = (node: string): boolean => {
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) return true;
      if (seen.has(next)) continue;
      seen.add(next);
      path.push(next);
      if (walk(next)) return true;
      path.pop();
    }
    return false;
  };
  walk(start);
  return [...path, start].join(" → ");
}

Deno.test("layout: import specifiers are read in every form the project uses", () => {
  const cases: [string, string[]][] = [
    ['import { a } from "./a.ts";', ["./a.ts"]],
    ['import type { B } from "../lib/b.ts";', ["../lib/b.ts"]],
    ['import {\n  c,\n  d,\n} from "./cd.ts";', ["./cd.ts"]],
    ['export { e } from "./e.ts";', ["./e.ts"]],
    ['export * from "./f.ts";', ["./f.ts"]],
    ['import "./side_effect.ts";', ["./side_effect.ts"]],
    ['const m = await import("./lazy.ts");', ["./lazy.ts"]],
    ['new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });', [
      "./worker.ts",
    ]],
    ['import { parse } from "smol-toml";\nimport { x } from "node:fs";', []],
    ['// import { gone } from "./commented.ts";\n/* import "./block.ts"; */', []],
  ];
  for (const [text, expected] of cases) assertEquals(specifiersOf(text), expected, text);
});

Deno.test("layout: the checker finds each broken rule and every cycle in a made-up graph", () => {
  const graph: ImportGraph = new Map([
    ["lib/core.ts", ["handlers/mod.ts", "lib/util.ts"]],
    ["lib/util.ts", ["cli/args.ts"]],
    ["handlers/chat/mod.ts", ["handlers/time/wire.ts", "lib/core.ts"]],
    ["handlers/chat/room.ts", ["handlers/chat/text.ts", "handlers/mod.ts"]],
    ["handlers/chat/text.ts", ["handlers/chat/room.ts"]],
    ["handlers/time/wire.ts", ["handlers/time/wire.ts"]],
    ["handlers/mod.ts", ["handlers/chat/mod.ts"]],
    ["cli/args.ts", []],
  ]);
  assertEquals(layeringViolations(graph), [
    "handlers/chat/mod.ts → handlers/time/wire.ts: one service folder imports another",
    "handlers/chat/room.ts → handlers/mod.ts: a service imports the service table",
    "lib/core.ts → handlers/mod.ts: lib/ imports nothing from handlers/ or cli/",
    "lib/util.ts → cli/args.ts: lib/ imports nothing from handlers/ or cli/",
  ]);
  assertEquals(cyclesOf(graph), [
    "handlers/chat/mod.ts → lib/core.ts → handlers/mod.ts → handlers/chat/mod.ts",
    "handlers/chat/room.ts → handlers/chat/text.ts → handlers/chat/room.ts",
    "handlers/time/wire.ts → handlers/time/wire.ts",
  ]);
  assertEquals(cyclesOf(new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", []]])), []);
});

Deno.test("layout: lib/ knows no service or verb, services import no other service", () => {
  const graph = repositoryGraph();
  // The walk must have found the project, or the rules hold vacuously.
  for (const expected of ["main.ts", "lib/supervisor.ts", "handlers/mod.ts", "cli/serve.ts"]) {
    assertEquals(graph.has(expected), true, expected);
  }
  assertEquals((graph.get("handlers/mod.ts") ?? []).includes("handlers/chat/mod.ts"), true);
  assertEquals(layeringViolations(graph), []);
});

Deno.test("layout: there is no import cycle", () => {
  assertEquals(cyclesOf(repositoryGraph()), []);
});

Deno.test("layout: each service folder has its mod.ts, and the table imports each one", () => {
  const graph = repositoryGraph();
  const folders = [...Deno.readDirSync(join(ROOT, "handlers"))]
    .filter((entry) => entry.isDirectory).map((entry) => entry.name).sort();
  assertEquals(folders.length >= 5, true, folders.join());
  const table = graph.get("handlers/mod.ts") ?? [];
  for (const folder of folders) {
    assertEquals(graph.has(`handlers/${folder}/mod.ts`), true, `handlers/${folder}/mod.ts`);
    assertEquals(table.includes(`handlers/${folder}/mod.ts`), true, `table imports ${folder}`);
  }
});
