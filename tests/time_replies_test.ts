import assert from "node:assert/strict";
import {
  checkDefaultFormat,
  DEFAULT_TIME_FORMAT,
  MAX_FORMAT_BYTES,
  MAX_REPLY_BYTES,
  stripLineEnd,
  TimeReplier,
} from "../handlers/time/replies.ts";
import { ZonedClock } from "../lib/zoned_time.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Sunday 2026-11-22 10:30:00.250 UTC.
const T0 = Date.UTC(2026, 10, 22, 10, 30, 0, 250);

function replier(options: { now?: () => number; zone?: string; cacheSize?: number } = {}) {
  return new TimeReplier({
    clock: new ZonedClock(options.zone ?? "UTC"),
    defaultFormat: DEFAULT_TIME_FORMAT,
    now: options.now ?? (() => T0),
    cacheSize: options.cacheSize,
  });
}

function ask(r: TimeReplier, request: string | Uint8Array): string {
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  return decoder.decode(r.reply(bytes));
}

Deno.test("one trailing \\n or \\r\\n is stripped from a request, no more", () => {
  const cases: [string, string][] = [
    ["%Y\n", "%Y"],
    ["%Y\r\n", "%Y"],
    ["%Y\n\n", "%Y\n"],
    ["%Y\r", "%Y\r"],
    ["\n", ""],
    ["\r\n", ""],
    ["", ""],
  ];
  for (const [input, expected] of cases) {
    assert.equal(decoder.decode(stripLineEnd(encoder.encode(input))), expected);
  }
});

Deno.test("an empty request gets the default format", () => {
  assert.equal(ask(replier(), ""), "2026-11-22 10:30:00");
  const custom = new TimeReplier({
    clock: new ZonedClock("Asia/Tokyo"),
    defaultFormat: "%c %Z",
    now: () => T0,
  });
  assert.equal(ask(custom, ""), "Sun Nov 22 19:30:00 2026 JST");
});

Deno.test("requests are strftime with % and tokens without", () => {
  const r = replier({ zone: "Europe/Berlin" });
  assert.equal(ask(r, "%Y-%m-%d %X %Z"), "2026-11-22 11:30:00 CET");
  assert.equal(ask(r, "YYYY-MM-DD HH:mm:ss.SSS Z"), "2026-11-22 11:30:00.250 +01:00");
  assert.equal(ask(r, "%Y年%m月%d日"), "2026年11月22日");
});

Deno.test("bad requests get one error reply saying why", async (t) => {
  const r = replier();
  const cases: [string, string | Uint8Array, string][] = [
    ["unknown directive", "%Q", 'error: unknown directive "%Q"'],
    ["dangling %", "%Y-%", 'error: format ends with a lone "%" (write "%%" for a percent sign)'],
    ["unbalanced [", "YYYY [at", 'error: "[" at byte 5 has no closing "]"'],
    [
      "format over 256 bytes",
      ".".repeat(MAX_FORMAT_BYTES + 1),
      "error: format is 257 bytes, over the 256-byte limit",
    ],
    ["invalid UTF-8", new Uint8Array([0x25, 0x59, 0xff, 0xfe]), "error: format is not valid UTF-8"],
    [
      "truncated UTF-8",
      new Uint8Array([0x25, 0x59, 0xe5, 0xb9]),
      "error: format is not valid UTF-8",
    ],
  ];
  for (const [name, request, expected] of cases) {
    await t.step(name, () => {
      assert.equal(ask(r, request), expected);
      assert.equal(ask(r, request), expected, "the same the second time (cached)");
    });
  }
  await t.step("a format of exactly 256 bytes is fine", () => {
    assert.equal(ask(r, ".".repeat(MAX_FORMAT_BYTES)), ".".repeat(MAX_FORMAT_BYTES));
  });
});

Deno.test("a reply over 1 KiB is an error, never a truncated time", () => {
  const r = replier();
  const big = "%c".repeat(43); // 43 × 24 = 1032 bytes
  const reply = r.reply(encoder.encode(big));
  assert.equal(decoder.decode(reply), "error: reply would be 1032 bytes, over the 1024-byte limit");
  const fits = "%c".repeat(42); // 1008 bytes
  assert.equal(r.reply(encoder.encode(fits)).length, 1008);
  // Multi-byte text: 2 × 86 "年" (3 bytes each) + tokens, over the cap in bytes, not characters.
  const wide = "年".repeat(86) + "%Y".repeat(128); // 258 + 512 bytes of output
  assert.equal(ask(r, wide).startsWith("error: format is"), true);
  const cjk = "[" + "年".repeat(80) + "]" + "dddd".repeat(2) + "年".repeat(5) + "%%";
  assert.ok(r.reply(encoder.encode(cjk)).length <= MAX_REPLY_BYTES);
});

Deno.test("a replier for TCP keeps room for the newline", () => {
  const r = new TimeReplier({
    clock: new ZonedClock("UTC"),
    defaultFormat: DEFAULT_TIME_FORMAT,
    now: () => T0,
    maxReply: MAX_REPLY_BYTES - 1,
  });
  const exactly1024 = "%c".repeat(42) + "x".repeat(16);
  assert.match(ask(r, exactly1024), /^error: reply would be 1024 bytes, over the 1023-byte limit$/);
});

Deno.test("replies follow the clock: per second, or per millisecond when shown", () => {
  let now = T0;
  const r = replier({ now: () => now });
  assert.equal(ask(r, "%S"), "00");
  assert.equal(ask(r, "ss.SSS"), "00.250");
  now += 1;
  assert.equal(ask(r, "%S"), "00");
  assert.equal(ask(r, "ss.SSS"), "00.251");
  now += 999;
  assert.equal(ask(r, "%S"), "01");
  assert.equal(ask(r, "ss.SSS"), "01.250");
  now += 3_600_000;
  assert.equal(ask(r, ""), "2026-11-22 11:30:01");
});

Deno.test("a repeated request is recognised byte for byte, not by length", () => {
  const r = replier();
  assert.equal(ask(r, "%Y%m"), "202611");
  assert.equal(ask(r, "%Y%m"), "202611");
  assert.equal(ask(r, "%m%Y"), "112026");
  assert.equal(
    ask(r, new Uint8Array([0x25, 0x59, 0xff, 0xfe])),
    "error: format is not valid UTF-8",
  );
  assert.equal(ask(r, "%m%Y"), "112026");
  assert.equal(ask(r, "%Y%m\n"), "202611\n", "the replier itself strips nothing");
});

Deno.test("the format cache is bounded and evicts the least recently used", () => {
  const r = replier({ cacheSize: 2 });
  for (let round = 0; round < 3; round++) {
    for (const format of ["%Y", "%m", "%d", "%Q", "YYYY"]) {
      const reply = ask(r, format);
      assert.equal(
        reply,
        {
          "%Y": "2026",
          "%m": "11",
          "%d": "22",
          "%Q": 'error: unknown directive "%Q"',
          YYYY: "2026",
        }[
          format
        ],
      );
    }
  }
});

Deno.test("default formats are checked as config would", async (t) => {
  const cases: [string, number, string | undefined][] = [
    [DEFAULT_TIME_FORMAT, 1024, undefined],
    ["YYYY-MM-DD", 1024, undefined],
    ["", 1024, "must not be empty"],
    ["%Q", 1024, 'unknown directive "%Q"'],
    ["[", 1024, '"[" at byte 0 has no closing "]"'],
    ["x".repeat(257), 1024, "is 257 bytes, over the 256-byte format limit"],
    ["%c".repeat(42), 1024, undefined],
    ["%c".repeat(43), 1024, "can expand to 1032 bytes, over the 1024-byte reply limit"],
    ["%A".repeat(100), 1024, undefined],
    ["%A".repeat(114), 1024, "can expand to 1026 bytes, over the 1024-byte reply limit"],
  ];
  for (const [format, limit, expected] of cases) {
    await t.step(JSON.stringify(format.slice(0, 20)), () => {
      assert.equal(checkDefaultFormat(format, limit), expected);
    });
  }
});
