import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadVerbs, VERB_TABLE } from "../main.ts";
// The daemon opens the C library once per process, when these modules load
// (lib/libc.ts, lib/direct_send.ts); loading them here, before any test,
// keeps that one-time open out of the sanitizer's view of loadVerbs() below.
import "../lib/libc.ts";
import "../lib/direct_send.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface GraphModule {
  specifier: string;
  dependencies?: Dependency[];
}

/** The modules `main.ts` loads before running anything: static imports, no types, no import(). */
async function staticClosure(entry: string): Promise<Set<string>> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(ROOT, "deno.json"), join(ROOT, entry)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0);
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    roots: string[];
    modules: GraphModule[];
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const pending = [...graph.roots];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dependency.isDynamic || dependency.code === undefined) continue;
      pending.push(dependency.code.specifier);
    }
  }
  return seen;
}

Deno.test("the daemon's start-up path loads no NATS client, fast-check or moment-timezone", async () => {
  // Each costs megabytes of idle RSS and start-up time; they are loaded
  // (import()) only when a listener needs them, or only by tests.
  const loaded = [...await staticClosure("cli/serve.ts")];
  assert.equal(loaded.some((s) => s.endsWith("/handlers/chat/mod.ts")), true);
  const heavy = loaded.filter((s) =>
    /\/node_modules\/(@nats-io|fast-check|moment-timezone)\//.test(s)
  );
  assert.deepEqual(heavy, []);
});

Deno.test("main.ts loads no verb before it runs, and its table names each verb as the verb does", async () => {
  const loaded = [...await staticClosure("main.ts")];
  const verbs = loaded.filter((s) =>
    /\/cli\/(serve|check|echo|chat|cmd|time|get|put|ls|version)\.ts$/.test(s)
  );
  assert.deepEqual(verbs, []);
  assert.deepEqual(
    (await loadVerbs()).map((verb) => verb.name),
    VERB_TABLE.map((entry) => entry.name),
  );
});
