/**
 * Property tests of the time formats against references: random strftime
 * formats at random instants and zones print what Python's time.strftime
 * prints (C locale, glibc: the reference the contract names), and random
 * Moment token formats print what moment-timezone prints.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import moment from "moment-timezone";
import { strftime } from "../handlers/time/strftime.ts";
import { compileTokens } from "../handlers/time/tokens.ts";
import { ZonedClock } from "../lib/zoned_time.ts";

const RUNS = Number(Deno.env.get("SWITCHBOARD_PROPERTY_RUNS") ?? 300);
const SEED = Number(Deno.env.get("SWITCHBOARD_PROPERTY_SEED") ?? Date.now() % 2 ** 31);

const ZONES = [
  "UTC",
  "Europe/Berlin",
  "America/New_York",
  "Australia/Lord_Howe",
  "Asia/Kolkata",
  "Asia/Tokyo",
  "America/Sao_Paulo",
  "Pacific/Chatham",
  "Europe/Dublin",
];
// 1990 to 2037: where the system's tz database and moment-timezone's agree.
const instant = fc.integer({ min: 631_152_000, max: 2_145_916_799 });

const DIRECTIVES = [..."aAbBcCdDeFGghHIjklmMnprRsStTuUVwWxXyYzZ%"];
const directive = fc.tuple(
  fc.constantFrom("", "", "", "-", "_", "0", "^", "#"),
  fc.constantFrom("", "", "", "", "E", "O"),
  fc.constantFrom(...DIRECTIVES),
).filter(([, modifier, letter]) =>
  // glibc's E and O modifiers only go with these; elsewhere they are not directives.
  modifier === "" ||
  (modifier === "E" ? "cCxXyY".includes(letter) : "deHImMSuUVwWy".includes(letter))
).map(([flag, modifier, letter]) => `%${flag}${modifier}${letter}`);
const literal = fc.oneof(
  fc.constantFrom(" ", "-", ":", "/", "T", "年", "月", "Время ", ", "),
  fc.string({ unit: fc.constantFrom(..."abcxyz .,;|"), maxLength: 4 }),
);
const strftimeFormat = fc.array(fc.oneof(directive, directive, literal), {
  minLength: 1,
  maxLength: 8,
}).map((parts) => parts.join(""));

interface StrftimeCase {
  format: string;
  t: number;
  zone: string;
}

/** Python's time.strftime for each case, in one python3 run. */
async function pythonStrftime(cases: StrftimeCase[]): Promise<string[]> {
  const script = `
import json, os, sys, time
out = []
for c in json.load(sys.stdin):
    os.environ["TZ"] = c["zone"]; time.tzset()
    out.append(time.strftime(c["format"], time.localtime(c["t"])))
json.dump(out, sys.stdout, ensure_ascii=False)
`;
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    env: { LC_ALL: "C.UTF-8" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("property: random strftime formats print what Python's time.strftime prints", async () => {
  const arbitrary = fc.record({
    format: strftimeFormat,
    t: instant,
    zone: fc.constantFrom(...ZONES),
  });
  const cases = fc.sample(arbitrary, { numRuns: RUNS, seed: SEED });
  const expected = await pythonStrftime(cases);
  cases.forEach((c, i) => {
    const fields = new ZonedClock(c.zone).fieldsAt(c.t * 1000);
    assert.equal(
      strftime(c.format, fields),
      expected[i],
      `seed ${SEED}: format ${JSON.stringify(c.format)} at t=${c.t} in ${c.zone}`,
    );
  });
});

// Tokens whose meaning Moment and switchboard share (z, the zone name, comes
// from different data: left out).
const TOKENS = [
  "YYYY",
  "YY",
  "Q",
  "Qo",
  "M",
  "Mo",
  "MM",
  "MMM",
  "MMMM",
  "D",
  "Do",
  "DD",
  "DDD",
  "DDDo",
  "DDDD",
  "d",
  "do",
  "dd",
  "ddd",
  "dddd",
  "e",
  "E",
  "W",
  "Wo",
  "WW",
  "GGGG",
  "GG",
  "H",
  "HH",
  "h",
  "hh",
  "k",
  "kk",
  "m",
  "mm",
  "s",
  "ss",
  "S",
  "SS",
  "SSS",
  "A",
  "a",
  "Z",
  "ZZ",
  "X",
  "x",
];
// Separators between tokens, so that both sides split the format alike;
// bracketed text is literal in both.
const separator = fc.oneof(
  fc.constantFrom(" ", "-", ":", "/", ", ", ".", " | "),
  fc.string({ unit: fc.constantFrom(..."bcfijlnpqrtuvBCFIJKLOPRTUV0123456789 "), maxLength: 3 })
    .map((text) => `[${text}]`),
);
const tokenFormat = fc.array(fc.tuple(fc.constantFrom(...TOKENS), separator), {
  minLength: 1,
  maxLength: 8,
}).map((parts) => parts.map(([token, sep]) => token + sep).join(""));

Deno.test("property: random token formats print what moment-timezone prints", () => {
  // The reference knows the zones (an unknown one would fall back to UTC).
  assert.equal(moment.tz(0, "Pacific/Chatham").format("Z"), "+12:45");
  fc.assert(
    fc.property(
      tokenFormat,
      instant,
      fc.integer({ min: 0, max: 999 }),
      fc.constantFrom(...ZONES),
      (format, seconds, ms, zone) => {
        const t = seconds * 1000 + ms;
        const fields = new ZonedClock(zone).fieldsAt(t);
        assert.equal(compileTokens(format).format(fields), moment.tz(t, zone).format(format));
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
});
