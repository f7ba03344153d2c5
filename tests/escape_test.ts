import assert from "node:assert/strict";
import { escapeControl } from "../lib/escape.ts";

Deno.test("control characters are escaped so a peer cannot drive a terminal", async (t) => {
  const cases: [string, string, string][] = [
    ["plain text", "plain text", "plain text"],
    ["a\x1b[31mred", "a\\x1b[31mred", "a\\x1b[31mred"],
    ["line\nbreak\ttab", "line\\nbreak\\ttab", "line\nbreak\ttab"],
    ["cr\r", "cr\\r", "cr\\r"],
    ["del\x7f c1\u009b", "del\\x7f c1\\x9b", "del\\x7f c1\\x9b"],
    ["nul\0", "nul\\x00", "nul\\x00"],
    ["中文 ünïcode", "中文 ünïcode", "中文 ünïcode"],
  ];
  for (const [input, escaped, keepingLayout] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.equal(escapeControl(input), escaped);
      assert.equal(escapeControl(input, { keepLayout: true }), keepingLayout);
    });
  }
});
