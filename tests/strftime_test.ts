import assert from "node:assert/strict";
import { compileStrftime, strftime } from "../handlers/time/strftime.ts";
import { ZonedClock } from "../lib/zoned_time.ts";
// Expected values printed by Python's time.strftime on Linux (glibc 2.36), for
// formats × instants × zones including DST edges; regenerate with
// `python3 tests/testdata/gen_strftime_cases.py tests/testdata/strftime_cases.json`.
import table from "./testdata/strftime_cases.json" with { type: "json" };

interface Case {
  zone: string;
  t: number;
  local: string;
  out: Record<string, string>;
}

const cases = table.cases as Case[];
const encoder = new TextEncoder();

Deno.test("strftime prints what Python's time.strftime prints on Linux", async (t) => {
  for (const c of cases) {
    await t.step(`${c.zone} at ${c.local} (t=${c.t})`, () => {
      const fields = new ZonedClock(c.zone).fieldsAt(c.t * 1000);
      for (const [format, expected] of Object.entries(c.out)) {
        assert.equal(strftime(format, fields), expected, `format ${JSON.stringify(format)}`);
      }
    });
  }
});

Deno.test("strftime's byte bound holds for every case in the table", () => {
  for (const c of cases) {
    const fields = new ZonedClock(c.zone).fieldsAt(c.t * 1000);
    for (const format of Object.keys(c.out)) {
      const compiled = compileStrftime(format);
      const bytes = encoder.encode(compiled.format(fields)).length;
      assert.ok(bytes <= compiled.maxBytes, `${format}: ${bytes} > ${compiled.maxBytes}`);
      assert.equal(compiled.usesMilliseconds, false);
    }
  }
});

Deno.test("strftime covers the table's zones and their DST edges", () => {
  const zones = new Set(cases.map((c) => c.zone));
  for (
    const zone of [
      "UTC",
      "Europe/Berlin",
      "America/New_York",
      "Australia/Lord_Howe",
      "Asia/Kolkata",
      "Asia/Tokyo",
      "Asia/Shanghai",
    ]
  ) {
    assert.ok(zones.has(zone), zone);
  }
  const berlin = cases.filter((c) => c.zone === "Europe/Berlin").map((c) => c.out["%z %Z"]);
  assert.ok(berlin.includes("+0100 CET") && berlin.includes("+0200 CEST"));
  const lordHowe = cases.filter((c) => c.zone === "Australia/Lord_Howe").map((c) => c.out["%z %Z"]);
  assert.ok(lordHowe.includes("+1030 +1030") && lordHowe.includes("+1100 +11"), "30-min DST");
});

Deno.test("strftime refuses what it cannot format, saying why", async (t) => {
  const cases: [string, RegExp][] = [
    ["%Q", /^unknown directive "%Q"$/],
    ["%f", /^unknown directive "%f"$/],
    ["%Y-%i", /^unknown directive "%i"$/],
    ["%:z", /^unknown directive "%:"$/],
    ["%+", /^unknown directive "%\+"$/],
    ["%Ea", /^unknown directive "%Ea"$/],
    ["%OY", /^unknown directive "%OY"$/],
    ["%_Ed", /^unknown directive "%_Ed"$/],
    ["%年", /^unknown directive "%年"$/],
    ["%😀", /^unknown directive "%😀"$/],
    ["%\x01", /^unknown directive "%\\u0001"$/],
    ["%", /^format ends with a lone "%" \(write "%%" for a percent sign\)$/],
    ["abc %", /^format ends with a lone "%"/],
    ["%Y%", /^format ends with a lone "%"/],
    ["%-", /^format ends inside the directive "%-"$/],
    ["%E", /^format ends inside the directive "%E"$/],
    ["%10d", /^field widths such as "%10d" are not supported$/],
    ["%_5H", /^field widths such as "%_5H" are not supported$/],
  ];
  for (const [format, message] of cases) {
    await t.step(JSON.stringify(format), () => {
      assert.throws(() => compileStrftime(format), { name: "SyntaxError", message });
    });
  }
});

Deno.test("strftime keeps any UTF-8 around directives", () => {
  const fields = new ZonedClock("Asia/Tokyo").fieldsAt(Date.UTC(2026, 10, 22, 1, 30));
  assert.equal(strftime("%Y年%m月%d日 %H時%M分 🕙 %%", fields), "2026年11月22日 10時30分 🕙 %");
  assert.equal(strftime("", fields), "");
  assert.equal(strftime("plain text, no directive", fields), "plain text, no directive");
  assert.throws(() => strftime("100 % sure", fields), { message: 'unknown directive "% "' });
});
