import assert from "node:assert/strict";
import { compileTokens } from "../handlers/time/tokens.ts";
import { compileTimeFormat } from "../handlers/time/format.ts";
import { ZonedClock } from "../lib/zoned_time.ts";
// Expected values printed by Moment (moment-timezone), cross-checked with
// Day.js; see tests/testdata/gen_token_cases.cjs for how they were made.
import table from "./testdata/token_cases.json" with { type: "json" };

interface Case {
  zone: string;
  t: number;
  out: Record<string, string>;
}

const cases = table.cases as Case[];
const encoder = new TextEncoder();

Deno.test("tokens print what Moment and Day.js print", async (t) => {
  for (const c of cases) {
    await t.step(`${c.zone} at ${new Date(c.t).toISOString()}`, () => {
      const fields = new ZonedClock(c.zone).fieldsAt(c.t);
      for (const [format, expected] of Object.entries(c.out)) {
        const compiled = compileTokens(format);
        const text = compiled.format(fields);
        assert.equal(text, expected, `format ${JSON.stringify(format)}`);
        assert.ok(encoder.encode(text).length <= compiled.maxBytes, `bound of ${format}`);
      }
    });
  }
});

Deno.test("tokens: a [ without its ] is an error naming the byte", async (t) => {
  const cases: [string, RegExp][] = [
    ["[", /^"\[" at byte 0 has no closing "\]"$/],
    ["YYYY [at", /^"\[" at byte 5 has no closing "\]"$/],
    ["年[x] [y", /^"\[" at byte 7 has no closing "\]"$/],
  ];
  for (const [format, message] of cases) {
    await t.step(JSON.stringify(format), () => {
      assert.throws(() => compileTokens(format), { name: "SyntaxError", message });
    });
  }
});

Deno.test("tokens: only formats showing milliseconds change within a second", () => {
  assert.equal(compileTokens("YYYY-MM-DD HH:mm:ss").usesMilliseconds, false);
  assert.equal(compileTokens("HH:mm:ss.SSS").usesMilliseconds, true);
  assert.equal(compileTokens("x").usesMilliseconds, true);
  assert.equal(compileTokens("[SSS]").usesMilliseconds, false);
});

Deno.test("a format with % is strftime, any other is tokens", () => {
  const fields = new ZonedClock("UTC").fieldsAt(Date.UTC(2026, 10, 22, 10, 30));
  assert.equal(compileTimeFormat("%Y-%m-%d").format(fields), "2026-11-22");
  assert.equal(compileTimeFormat("YYYY-MM-DD").format(fields), "2026-11-22");
  // In a strftime format, token letters are literal text.
  assert.equal(compileTimeFormat("YYYY %Y").format(fields), "YYYY 2026");
  assert.equal(compileTimeFormat("[Today]").format(fields), "Today");
  // Without brackets, token letters are tokens, as in Moment: d is the weekday, a am/pm.
  assert.equal(compileTimeFormat("Today").format(fields), "To0amy");
});
