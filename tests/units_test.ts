import assert from "node:assert/strict";
import { formatDuration, formatSize, parseDuration, parseRate, parseSize } from "../lib/units.ts";

Deno.test("durations parse with every unit and in compounds", async (t) => {
  const cases: [string, number][] = [
    ["0", 0],
    ["500ms", 500],
    ["10s", 10_000],
    ["1.5s", 1500],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1m30s", 90_000],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of cases) {
    await t.step(`"${text}" is ${ms}ms`, () => assert.deepEqual(parseDuration(text), ms));
  }
});

Deno.test("durations without a unit or with junk are refused", async (t) => {
  for (const text of ["", "10", "10x", "s", "-5s", "10s junk", "1e3ms", "ten seconds"]) {
    await t.step(`"${text}"`, () => {
      assert.throws(() => parseDuration(text), {
        name: "SyntaxError",
        message: /Cannot parse duration/,
      });
    });
  }
});

Deno.test("sizes parse binary and decimal units", async (t) => {
  const cases: [string, number][] = [
    ["0", 0],
    ["65536", 65536],
    ["64KiB", 65536],
    ["16MiB", 16 * 1024 * 1024],
    ["1GiB", 1024 ** 3],
    ["1.5KiB", 1536],
    ["10MB", 10_000_000],
    ["2kb", 2000],
    ["4 KiB", 4096],
    ["12b", 12],
  ];
  for (const [text, bytes] of cases) {
    await t.step(`"${text}" is ${bytes} bytes`, () => assert.deepEqual(parseSize(text), bytes));
  }
});

Deno.test("sizes with unknown units are refused", async (t) => {
  for (const text of ["", "KiB", "10 parsecs", "-1", "1,000"]) {
    await t.step(
      `"${text}"`,
      () =>
        assert.throws(() => parseSize(text), { name: "SyntaxError", message: /Cannot parse size/ }),
    );
  }
});

Deno.test("rates parse as a count per period", async (t) => {
  const cases: [string, number, number][] = [
    ["20/s", 20, 1000],
    ["600/m", 600, 60_000],
    ["100/h", 100, 3_600_000],
    ["5/10s", 5, 10_000],
    ["1.5/s", 1.5, 1000],
  ];
  for (const [text, count, perMs] of cases) {
    await t.step(`"${text}"`, () => assert.deepEqual(parseRate(text), { count, perMs }));
  }
  for (const text of ["20", "0/s", "20/x", "/s", "20/0s"]) {
    await t.step(`"${text}" is refused`, () => assert.throws(() => parseRate(text), SyntaxError));
  }
});

Deno.test("durations and sizes format back compactly", () => {
  assert.deepEqual(formatDuration(0), "0");
  assert.deepEqual(formatDuration(1500), "1.5s");
  assert.deepEqual(formatDuration(300_000), "5m");
  assert.deepEqual(formatDuration(250), "250ms");
  assert.deepEqual(parseDuration(formatDuration(90_000)), 90_000);
  assert.deepEqual(formatSize(512), "512B");
  assert.deepEqual(formatSize(65536), "64KiB");
  assert.deepEqual(formatSize(1536), "1.5KiB");
  assert.deepEqual(formatSize(5 * 1024 ** 3), "5GiB");
});
