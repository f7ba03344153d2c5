import assert from "node:assert/strict";
import { ROOT } from "./_helpers.ts";
import { loadVerbs } from "../main.ts";

const VERBS = await loadVerbs();

const README = await Deno.readTextFile(`${ROOT}/README.md`);

Deno.test(".ci/run runs exactly the README's test command", async () => {
  const testCommand = README.split("\n").find((line) => line.includes("deno task test"));
  assert.ok(testCommand, "README has no test command");
  const command = testCommand.replace(/#.*$/, "").trim();
  const ci = await Deno.readTextFile(`${ROOT}/.ci/run`);
  const lastLine = ci.trim().split("\n").at(-1);
  assert.equal(lastLine, command);
});

Deno.test("the README's command line section lists every verb", () => {
  const section = README.slice(README.indexOf("## Command line"));
  const block = section.slice(0, section.indexOf("```\n\n"));
  const listed = [...block.matchAll(/^switchboard (\w+)/gm)].map((match) => match[1]);
  assert.deepEqual(listed, VERBS.map((verb) => verb.name));
});

Deno.test("every local link in the README points at a file that exists", async () => {
  const targets = [...README.matchAll(/\]\(([^)#:]+)\)/g)].map((match) => match[1]);
  assert.ok(targets.length > 0);
  for (const target of targets) {
    await Deno.stat(`${ROOT}/${target}`).catch(() => assert.fail(`README links to ${target}`));
  }
});
