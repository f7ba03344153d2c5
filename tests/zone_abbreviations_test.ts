import assert from "node:assert/strict";
import {
  numericAbbreviation,
  parsePosixTzNames,
  parseTzif,
  ZoneAbbreviations,
} from "../lib/zone_abbreviations.ts";
import { resolveTimeZone, ZonedClock } from "../lib/zoned_time.ts";

function nameAt(zone: string, epochMs: number, options = {}): string {
  return new ZonedClock(zone, options).fieldsAt(epochMs).abbreviation;
}

Deno.test("POSIX TZ footers give names and offsets east of UTC", async (t) => {
  const cases: [string, [string, number][]][] = [
    ["CET-1CEST,M3.5.0,M10.5.0/3", [["CET", 3600], ["CEST", 7200]]],
    ["EST5EDT,M3.2.0,M11.1.0", [["EST", -18000], ["EDT", -14400]]],
    ["<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", [["+1030", 37800], ["+11", 39600]]],
    ["IST-1GMT0,M10.5.0,M3.5.0/1", [["IST", 3600], ["GMT", 0]]],
    ["IST-5:30", [["IST", 19800]]],
    ["<-03>3", [["-03", -10800]]],
    ["UTC0", [["UTC", 0]]],
    ["", []],
    ["12345", []],
  ];
  for (const [text, expected] of cases) {
    await t.step(JSON.stringify(text), () => {
      const names = parsePosixTzNames(text).map((n) => [n.abbreviation, n.utoff]);
      assert.deepEqual(names, expected);
    });
  }
});

Deno.test("numeric abbreviations follow the tz database's style", () => {
  assert.equal(numericAbbreviation(18000), "+05");
  assert.equal(numericAbbreviation(19800), "+0530");
  assert.equal(numericAbbreviation(-12600), "-0330");
  assert.equal(numericAbbreviation(0), "+00");
  assert.equal(numericAbbreviation(3 * 3600 + 45 * 60 + 30), "+034530");
});

Deno.test("%Z names come from the system's TZif files as glibc prints them", async (t) => {
  const cases: [string, number, string][] = [
    ["Europe/Berlin", Date.UTC(2026, 0, 15), "CET"],
    ["Europe/Berlin", Date.UTC(2026, 6, 15), "CEST"],
    ["America/New_York", Date.UTC(2026, 0, 15), "EST"],
    ["America/New_York", Date.UTC(2026, 6, 15), "EDT"],
    ["America/New_York", Date.UTC(1943, 6, 15), "EWT"],
    ["UTC", Date.UTC(2026, 6, 15), "UTC"],
    ["Asia/Tokyo", Date.UTC(2026, 6, 15), "JST"],
    ["Asia/Shanghai", Date.UTC(2026, 6, 15), "CST"],
    ["Asia/Kolkata", Date.UTC(2026, 6, 15), "IST"],
    ["Australia/Lord_Howe", Date.UTC(2026, 0, 15), "+11"],
    ["Australia/Lord_Howe", Date.UTC(2026, 6, 15), "+1030"],
    ["America/Sao_Paulo", Date.UTC(2026, 6, 15), "-03"],
    ["Europe/Dublin", Date.UTC(2026, 0, 15), "GMT"],
    ["Europe/Dublin", Date.UTC(2026, 6, 15), "IST"],
    ["Europe/Berlin", Date.UTC(2090, 6, 15), "CEST"],
    ["US/Eastern", Date.UTC(2026, 6, 15), "EDT"],
  ];
  for (const [zone, ms, expected] of cases) {
    await t.step(`${zone} ${new Date(ms).toISOString()}`, () => {
      assert.equal(nameAt(zone, ms), expected);
    });
  }
});

Deno.test("without TZif files %Z falls back to alphabetic Intl names or numeric offsets", async () => {
  const empty = await Deno.makeTempDir();
  try {
    const options = { zoneinfo: empty };
    assert.equal(ZoneAbbreviations.load("Europe/Berlin", options).fromTzif, false);
    assert.equal(nameAt("America/New_York", Date.UTC(2026, 0, 15), options), "EST");
    assert.equal(nameAt("America/New_York", Date.UTC(2026, 6, 15), options), "EDT");
    assert.equal(nameAt("UTC", Date.UTC(2026, 6, 15), options), "UTC");
    // Intl says "GMT+1" here: not an abbreviation, so the tz database's style.
    assert.equal(nameAt("Europe/Berlin", Date.UTC(2026, 0, 15), options), "+01");
    assert.equal(nameAt("Asia/Kolkata", Date.UTC(2026, 0, 15), options), "+0530");
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("a damaged TZif file is refused, and the fallback is used", async () => {
  assert.throws(() => parseTzif(new TextEncoder().encode("not a tzif file at all")), {
    name: "SyntaxError",
  });
  const real = Deno.readFileSync("/usr/share/zoneinfo/Europe/Berlin");
  assert.throws(() => parseTzif(real.subarray(0, 60)), { name: "SyntaxError" });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/Europe`);
    await Deno.writeFile(`${dir}/Europe/Berlin`, real.subarray(0, 100));
    const names = ZoneAbbreviations.load("Europe/Berlin", { zoneinfo: dir });
    assert.equal(names.fromTzif, false);
    assert.equal(names.at(Date.UTC(2026, 6, 15) / 1000, 7200), "+02");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("time zone names are checked, with a suggestion for a typo", async (t) => {
  await t.step("known names keep Temporal's spelling", () => {
    assert.equal(resolveTimeZone("Europe/Berlin"), "Europe/Berlin");
    assert.equal(resolveTimeZone("europe/berlin"), "Europe/Berlin");
    assert.equal(resolveTimeZone("UTC"), "UTC");
    assert.equal(resolveTimeZone("US/Eastern"), "US/Eastern");
  });
  await t.step("unknown names are RangeErrors", () => {
    assert.throws(() => resolveTimeZone("Europe/Berln"), {
      name: "RangeError",
      message: 'unknown time zone "Europe/Berln" (did you mean "Europe/Berlin"?)',
    });
    assert.throws(() => resolveTimeZone("Mars/Olympus_Mons"), {
      message: /^unknown time zone "Mars\/Olympus_Mons"$/,
    });
  });
  await t.step("offsets and empty names are not IANA names", () => {
    for (const name of ["+05:30", "-08:00", "", " "]) {
      assert.throws(() => resolveTimeZone(name), { name: "RangeError", message: /not an IANA/ });
    }
  });
});

Deno.test("a zone whose TZif file exists under its own name never asks Intl for its spelling", () => {
  // Intl.DateTimeFormat loads ICU's locale data (megabytes of a time-only
  // daemon's idle RSS): only a name without a file of its own needs it.
  const original = Intl.DateTimeFormat;
  let made = 0;
  const counting = function (...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    made++;
    return new original(...args);
  } as unknown as typeof Intl.DateTimeFormat;
  Intl.DateTimeFormat = counting;
  try {
    const names = ZoneAbbreviations.load("UTC", { zoneinfo: "/usr/share/zoneinfo" });
    assert.equal(names.fromTzif, true);
    assert.equal(made, 0);
    ZoneAbbreviations.load("utc", { zoneinfo: "/usr/share/zoneinfo" });
    assert.equal(made > 0, true);
  } finally {
    Intl.DateTimeFormat = original;
  }
});
