import assert from "node:assert/strict";
import { lineOf, locateKeys } from "../lib/toml_locate.ts";

const SOURCE = `# comment with key = "value"
[daemon]
log_level = "info"   # trailing comment
shutdown_timeout = "10s"

[[listener]]
name = "a"
allow = [
  "10.0.0.0/8",
  "192.168.0.0/16", # comment ] inside
]
text = """
not_a_key = 1
"""

[[listener]]
"quoted key" = 1
env = { PATH = "/bin", HOME = "/root" }
dotted.key = 2

[listener.extra]
inner = true

[[listener]]
service = 'echo'
`;

Deno.test("every key of a TOML document is located on its line", async (t) => {
  const lines = locateKeys(SOURCE);
  const cases: [string, number | undefined][] = [
    ["daemon", 2],
    ["daemon.log_level", 3],
    ["daemon.shutdown_timeout", 4],
    ["listener[0]", 6],
    ["listener[0].name", 7],
    ["listener[0].allow", 8],
    ["listener[0].text", 12],
    ["listener[0].not_a_key", undefined],
    ["listener[1]", 16],
    ["listener[1].quoted key", 17],
    ["listener[1].env", 18],
    ["listener[1].env.HOME", 18],
    ["listener[1].dotted.key", 19],
    ["listener[1].extra", 21],
    ["listener[1].extra.inner", 22],
    ["listener[2].service", 25],
  ];
  for (const [path, line] of cases) {
    await t.step(`${path} → ${line}`, () => assert.equal(lines.get(path), line));
  }
});

Deno.test("an unlocated path falls back to its nearest located parent", () => {
  const lines = locateKeys(SOURCE);
  assert.equal(lineOf(lines, "listener[0].allow[1]"), 8);
  assert.equal(lineOf(lines, "listener[1].env.PATH"), 18);
  assert.equal(lineOf(lines, "listener[2].missing"), 24);
  assert.equal(lineOf(lines, "nowhere"), undefined);
});

Deno.test("an array of tables is located by its first header (an unknown [[istener]] too)", () => {
  const lines = locateKeys('[daemon]\nlog_level = "info"\n\n[[istener]]\nservice = "echo"\n');
  assert.equal(lineOf(lines, "istener"), 4);
});

Deno.test("a table defined only through a dotted key or a sub-table header is located there", () => {
  assert.equal(lineOf(locateKeys("x = 1\na.b = 1\n"), "a"), 2);
  assert.equal(lineOf(locateKeys('[daemon.""]\n'), "daemon"), 1);
});
