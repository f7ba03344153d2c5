import assert from "node:assert/strict";
import { loadVerbs } from "../main.ts";
import { MANUAL_FILES, renderBashCompletion, renderManPage, roffEscape } from "../cli/manual.ts";
import { SERVICES } from "../handlers/mod.ts";
import { VERSION } from "../lib/version.ts";
import { EXIT_STATUS } from "../cli/exit_status.ts";
import { ROOT } from "./_helpers.ts";

const VERBS = await loadVerbs();

const decoder = new TextDecoder();
const SOURCE = { verbs: VERBS, services: SERVICES, version: VERSION };

Deno.test("the man page and the bash completion are current with the verb table", async () => {
  const page = await Deno.readTextFile(`${ROOT}/${MANUAL_FILES.manPage}`);
  const completion = await Deno.readTextFile(`${ROOT}/${MANUAL_FILES.bashCompletion}`);
  const stale = "is stale: run `deno task manual` and commit the result";
  assert.equal(page, renderManPage(SOURCE), `${MANUAL_FILES.manPage} ${stale}`);
  assert.equal(completion, renderBashCompletion(VERBS), `${MANUAL_FILES.bashCompletion} ${stale}`);
});

Deno.test("every verb's options are the ones its --help lists", () => {
  for (const verb of VERBS) {
    const listed = [...verb.help.matchAll(/^ {2}(?:-(\w), )?\s*--([\w-]+)/gm)]
      .map((match) => match[2]).filter((name) => name !== "help").sort();
    assert.deepEqual(listed, Object.keys(verb.options).sort(), verb.name);
    for (const [name, spec] of Object.entries(verb.options)) {
      if (spec.short !== undefined) {
        assert.match(
          verb.help,
          new RegExp(`-${spec.short}, --${name}\\b`),
          `${verb.name} -${spec.short}`,
        );
      }
    }
  }
});

Deno.test("the man page renders without warnings and has every verb, service and exit code", async () => {
  const path = `${ROOT}/${MANUAL_FILES.manPage}`;
  const check = await new Deno.Command("groff", {
    args: ["-man", "-Tutf8", "-ww", "-z", path],
  }).output();
  assert.equal(check.code, 0);
  assert.equal(decoder.decode(check.stderr), "", "groff warnings");
  const rendered = await new Deno.Command("groff", {
    args: ["-man", "-Tutf8", "-P", "-cbou", path],
    env: { LC_ALL: "C.UTF-8" },
  }).output();
  const text = decoder.decode(rendered.stdout);
  for (const verb of VERBS) {
    assert.match(text, new RegExp(`switchboard ${verb.name}\\b`));
    assert.match(text, new RegExp(`Usage: switchboard ${verb.name}\\b`), `${verb.name}'s help`);
  }
  // A name longer than the tag column ends its line (groff .TP), so a space or a newline follows.
  for (const service of SERVICES) assert.match(text, new RegExp(`\\n {7}${service.name}[ \\n]`));
  for (const row of EXIT_STATUS) assert.ok(text.includes(`\n       ${row.code} `), row.code);
  for (const section of ["NAME", "SYNOPSIS", "COMMANDS", "ENVIRONMENT", "EXIT STATUS"]) {
    assert.match(text, new RegExp(`^${section}$`, "m"));
  }
});

Deno.test("roff escaping: hyphens, backslashes, leading dots, characters beyond ASCII", async (t) => {
  const cases: [string, string][] = [
    ["--help", "\\-\\-help"],
    ["a\\b", "a\\eb"],
    [".not a request\n'nor this", "\\&.not a request\n\\&'nor this"],
    ["a … b", "a \\[u2026] b"],
    ["plain text", "plain text"],
  ];
  for (const [input, expected] of cases) {
    await t.step(JSON.stringify(input), () => assert.equal(roffEscape(input), expected));
  }
});

async function complete(words: string[], cwd?: string): Promise<string[]> {
  const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); ` +
    `_switchboard; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const output = await new Deno.Command("bash", {
    args: ["-c", script, "bash", `${ROOT}/${MANUAL_FILES.bashCompletion}`, ...words],
    cwd,
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return decoder.decode(output.stdout).split("\n").filter((line) => line !== "");
}

Deno.test("bash completion offers verbs, each verb's options, and files where a file goes", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/conf.toml`, "");
    await t.step("verbs", async () => {
      assert.deepEqual(await complete(["switchboard", "ch"]), ["check", "chat"]);
      assert.deepEqual(await complete(["switchboard", "help", "ve"]), ["version"]);
    });
    await t.step("options of the verb", async () => {
      assert.deepEqual(await complete(["switchboard", "echo", "--u"]), ["--udp"]);
      assert.deepEqual(await complete(["switchboard", "ls", "--j"]), ["--json"]);
      assert.deepEqual(await complete(["switchboard", "serve", "--exit"]), ["--exit-with-parent"]);
    });
    await t.step("files after -c and as LOCAL", async () => {
      assert.deepEqual(await complete(["switchboard", "check", "-c", "co"], dir), ["conf.toml"]);
      assert.deepEqual(await complete(["switchboard", "put", "host", "co"], dir), ["conf.toml"]);
      assert.deepEqual(await complete(["switchboard", "get", "host", "remote", "co"], dir), [
        "conf.toml",
      ]);
    });
    await t.step("nothing after an option that takes a value, or as REMOTE", async () => {
      assert.deepEqual(await complete(["switchboard", "cmd", "--token", "co"], dir), []);
      assert.deepEqual(await complete(["switchboard", "get", "host", "co"], dir), []);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
