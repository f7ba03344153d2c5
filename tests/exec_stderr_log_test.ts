import assert from "node:assert/strict";
import { MAX_LOG_LINE, StderrLog } from "../handlers/exec/stderr_log.ts";
import { captureLog } from "./_helpers.ts";

const encoder = new TextEncoder();

function logged(lines: string[]): string[] {
  return lines.map((line) => / INFO {2}stderr: (.*)$/.exec(line)?.[1] ?? `?${line}`);
}

Deno.test("stderr lines are logged whole at any split, CRLF trimmed, long ones in pieces", async (t) => {
  const text = "first\r\nsecond line\n\nthird";
  for (const split of [1, 2, 3, 7, 100]) {
    await t.step(`chunks of ${split}`, () => {
      const { log, lines } = captureLog();
      const stderr = new StderrLog(log, () => 0);
      const bytes = encoder.encode(text);
      for (let at = 0; at < bytes.length; at += split) stderr.write(bytes.subarray(at, at + split));
      stderr.flush();
      assert.deepEqual(logged(lines), ["first", "second line", "", "third"]);
    });
  }
  await t.step("a line of exactly the limit is one line; longer is split", () => {
    const { log, lines } = captureLog();
    const stderr = new StderrLog(log, () => 0);
    stderr.write(
      encoder.encode("a".repeat(MAX_LOG_LINE) + "\n" + "b".repeat(MAX_LOG_LINE + 3) + "\n"),
    );
    stderr.flush();
    assert.deepEqual(logged(lines).map((l) => l.length), [MAX_LOG_LINE, MAX_LOG_LINE, 3]);
  });
});

Deno.test("stderr logging is rate-limited and counts what it drops", () => {
  const { log, lines } = captureLog();
  let now = 0;
  const stderr = new StderrLog(log, () => now);
  for (let i = 0; i < 150; i++) stderr.write(encoder.encode(`line ${i}\n`));
  assert.equal(stderr.logged, 100, "a burst of 100");
  assert.equal(stderr.dropped, 50);
  now = 1000; // 20 more a second
  for (let i = 0; i < 30; i++) stderr.write(encoder.encode("later\n"));
  assert.equal(stderr.logged, 120);
  assert.equal(lines.length, 120);
});
