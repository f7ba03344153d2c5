import { formatEta, formatRate, Progress, renderProgress } from "../cli/progress.ts";
import { assert, assertEquals } from "./_file_helpers.ts";

Deno.test("formatEta and formatRate read like a download tool's", async (t) => {
  const etas: Array<[number, string]> = [
    [0, "0:00"],
    [5.4, "0:05"],
    [65, "1:05"],
    [3725, "1:02:05"],
    [Infinity, "--:--"],
    [NaN, "--:--"],
  ];
  for (const [seconds, text] of etas) {
    await t.step(`eta ${seconds} → ${text}`, () => assertEquals(formatEta(seconds), text, "eta"));
  }
  assertEquals(formatRate(0), "-- B/s", "zero rate");
  assertEquals(formatRate(300 * 1024 * 1024), "300MiB/s", "rate");
});

Deno.test("renderProgress fits the line to the terminal width", async (t) => {
  for (const columns of [20, 40, 80, 200]) {
    await t.step(`${columns} columns`, () => {
      const line = renderProgress({
        label: "a-rather-long-file-name.iso",
        done: 512 * 1024 * 1024,
        total: 1024 * 1024 * 1024,
        rate: 100 * 1024 * 1024,
        columns,
      });
      assert(line.length <= columns - 1, `too long: ${line.length} > ${columns - 1}`);
      if (columns >= 80) {
        assert(
          line.includes(" 50%") && line.includes("512MiB/1GiB") && line.includes("ETA 0:05"),
          line,
        );
        assert(line.includes("["), `bar missing: ${line}`);
      }
    });
  }
  const escaped = renderProgress({ label: "evil\x1b[2J", done: 1, total: 2, rate: 1, columns: 80 });
  assert(!escaped.includes("\x1b"), "control characters in the label are escaped");
});

Deno.test("Progress redraws at most every 100 ms and ends its line when finished", () => {
  const written: string[] = [];
  let now = 0;
  const progress = new Progress({
    label: "f",
    total: 1000,
    columns: 80,
    now: () => now,
    target: {
      writeSync(p) {
        written.push(new TextDecoder().decode(p));
        return p.length;
      },
    },
  });
  progress.add(100);
  now = 50;
  progress.add(100);
  now = 150;
  progress.add(100);
  assertEquals(written.length, 2, "throttled");
  assert(written.every((w) => w.startsWith("\r") && w.endsWith("\x1b[K")), "redraws in place");
  progress.finish();
  assert(written.at(-2)!.includes(" 30%") && written.at(-2)!.includes("in 0:00"), written.at(-2)!);
  assertEquals(written.at(-1), "\n", "ends the line");
});
