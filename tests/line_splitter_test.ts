import assert from "node:assert/strict";
import { type LineEvent, LineSplitter, OVER_LIMIT } from "../handlers/time/line_splitter.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function show(event: LineEvent | null): string {
  if (event === null) return "(none)";
  return event === OVER_LIMIT ? "!" : decoder.decode(event);
}

/** Feeds `input` in pieces of `size` bytes and records every event. */
function split(input: string, maxLine: number, size: number): string[] {
  const bytes = encoder.encode(input);
  const splitter = new LineSplitter(maxLine);
  const seen: string[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    splitter.feed(bytes.slice(at, at + size));
    for (let e = splitter.next(); e !== undefined; e = splitter.next()) seen.push(show(e));
  }
  const last = splitter.finish();
  if (last !== null) seen.push(`end:${show(last)}`);
  return seen;
}

Deno.test("lines split the same at every read size", async (t) => {
  const cases: [string, string, number, string[]][] = [
    ["plain lines", "a\nbb\n\nccc\n", 8, ["a", "bb", "", "ccc"]],
    ["CRLF stripped, lone CR kept", "a\r\nb\rc\n\r\n", 8, ["a", "b\rc", ""]],
    ["unterminated last line", "a\nrest", 8, ["a", "end:rest"]],
    ["line at the cap", "12345678\n", 8, ["12345678"]],
    ["line at the cap with CRLF", "12345678\r\n", 8, ["12345678"]],
    ["line over the cap", "123456789\nok\n", 8, ["!", "ok"]],
    ["very long line reported once", "x".repeat(100) + "\nok\n", 8, ["!", "ok"]],
    ["unterminated over-long end", "ok\n" + "y".repeat(9), 8, ["ok", "!"]],
    ["nine bytes ending in CR at the end", "12345678\r", 8, ["end:!"]],
    ["UTF-8 untouched", "年\n😀\n", 8, ["年", "😀"]],
  ];
  for (const [name, input, maxLine, expected] of cases) {
    await t.step(name, () => {
      for (const size of [1, 2, 3, 5, 7, 16, 1000]) {
        const seen = split(input, maxLine, size);
        // An over-long unterminated line is reported as soon as it passes the cap.
        const normalized = seen.map((s) => s === "end:!" && !expected.includes("end:!") ? "!" : s);
        assert.deepEqual(normalized, expected, `read size ${size}`);
      }
    });
  }
});
