import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  checkName,
  encodePrefix,
  foldName,
  formatMembers,
  frameDatagram,
  frameLine,
  parseCommand,
  stripNewline,
} from "../handlers/chat/text.ts";
import { formatRate } from "../handlers/chat/room.ts";
import { TokenBucket } from "../lib/token_bucket.ts";
import { parseConfig } from "../lib/config.ts";
import { defaultConfig } from "../lib/config_file.ts";
import { chatListener } from "./_chat_peers.ts";
import { configProblems } from "./_helpers.ts";
import { SERVICES } from "../handlers/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("stripNewline drops exactly one trailing LF or CRLF", async (t) => {
  const cases: [string, string][] = [
    ["", ""],
    ["\n", ""],
    ["\r\n", ""],
    ["a", "a"],
    ["a\n", "a"],
    ["a\r\n", "a"],
    ["a\n\n", "a\n"],
    ["a\r", "a\r"],
    ["\r", "\r"],
    ["a\n\r", "a\n\r"],
  ];
  for (const [input, output] of cases) {
    await t.step(JSON.stringify(input), () => {
      assertEquals(dec.decode(stripNewline(enc.encode(input))), output);
    });
  }
});

Deno.test("parseCommand tells commands from messages", async (t) => {
  const cases: [string, unknown][] = [
    ["hello", { kind: "message", text: "hello" }],
    ["", { kind: "message", text: "" }],
    ["//nick x", { kind: "message", text: "/nick x" }],
    ["/who", { kind: "who" }],
    ["/who  ", { kind: "who" }],
    ["/who am i", { kind: "unknown", command: "/who" }],
    ["/whois", { kind: "unknown", command: "/whois" }],
    ["/leave", { kind: "leave" }],
    ["/leave now", { kind: "unknown", command: "/leave" }],
    ["/nick", { kind: "nick", name: undefined }],
    ["/nick   ", { kind: "nick", name: undefined }],
    ["/nick ana", { kind: "nick", name: "ana" }],
    ["/nick\tana ", { kind: "nick", name: "ana" }],
    ["/nick a b", { kind: "nick", name: "a b" }],
    ["/nickname x", { kind: "unknown", command: "/nickname" }],
    ["/WHO", { kind: "unknown", command: "/WHO" }],
    ["/", { kind: "unknown", command: "/" }],
  ];
  for (const [input, expected] of cases) {
    await t.step(JSON.stringify(input), () => {
      const command = parseCommand(enc.encode(input));
      const shown = command.kind === "message"
        ? { kind: "message", text: dec.decode(command.body) }
        : command;
      assertEquals(shown, expected);
    });
  }
  await t.step("invalid UTF-8 in a name", () => {
    assertEquals(parseCommand(new Uint8Array([...enc.encode("/nick "), 0xc3])), {
      kind: "nick",
      name: undefined,
      error: "a name must be valid UTF-8",
    });
  });
});

Deno.test("checkName accepts printable names of up to 32 bytes", async (t) => {
  const cases: [string, string | undefined][] = [
    ["ana", undefined],
    ["Zoë_42", undefined],
    ["日本", undefined],
    ["🎉", undefined],
    ["[x]", undefined],
    ["a".repeat(32), undefined],
    ["a".repeat(33), "a name must be at most 32 bytes"],
    ["", "a name must not be empty"],
    ["a b", "a name must not contain spaces"],
    ["a\u00a0b", "a name must not contain spaces"],
    ["a:b", 'a name must not contain ":" (addresses are reserved)'],
    ["a\tb", "a name must not contain spaces"],
    ["a\x07", "a name must not contain control or invisible characters"],
    ["a\x7f", "a name must not contain control or invisible characters"],
    ["a\u0085", "a name must not contain control or invisible characters"],
    ["a\u200bb", "a name must not contain control or invisible characters"],
    ["a\u202eb", "a name must not contain control or invisible characters"],
  ];
  for (const [name, problem] of cases) {
    await t.step(JSON.stringify(name), () => assertEquals(checkName(name), problem));
  }
});

Deno.test("foldName makes case and width variants one name", () => {
  assertEquals(foldName("Ana"), foldName("ana"));
  assertEquals(foldName("ＡＮＡ"), foldName("ana"));
  assertEquals(foldName("127.0.0.1:5000"), "127.0.0.1:5000");
});

Deno.test("frameDatagram and frameLine frame a message once, bytes untouched", async (t) => {
  const prefix = encodePrefix("ana");
  await t.step("datagram", () => {
    assertEquals(dec.decode(frameDatagram(prefix, enc.encode("hi\n"))), "[ana] hi\n");
  });
  const lines: [string, string][] = [
    ["hi", "[ana] hi\n"],
    ["", "[ana] \n"],
    ["a\nb", "[ana] a\n  b\n"],
    ["a\n", "[ana] a\n  \n"],
    ["\n\n", "[ana] \n  \n  \n"],
    ["a\r\nb", "[ana] a\r\n  b\n"],
  ];
  for (const [body, framed] of lines) {
    await t.step(`line ${JSON.stringify(body)}`, () => {
      assertEquals(dec.decode(frameLine(prefix, enc.encode(body))), framed);
    });
  }
  await t.step("non-UTF-8 bytes", () => {
    const body = new Uint8Array([0xff, 0x0a, 0xfe]);
    assertEquals(
      frameLine(prefix, body),
      new Uint8Array([...prefix, 0xff, 0x0a, 0x20, 0x20, 0xfe, 0x0a]),
    );
  });
});

Deno.test("formatMembers lists names and shortens to fit", async (t) => {
  await t.step("fits", () => {
    assertEquals(formatMembers(["a", "b"], 100), "* members: a, b");
    assertEquals(formatMembers(["a"], Infinity), "* members: a");
  });
  await t.step("shortened", () => {
    const names = Array.from({ length: 50 }, (_, i) => `name${i}`);
    for (const cap of [40, 100, 200, 300]) {
      const text = formatMembers(names, cap);
      const match = /^\* members: (.*) \(\+(\d+) more\)$/.exec(text);
      if (!match) throw new Error(`bad text ${text}`);
      assertEquals(enc.encode(text).length <= cap, true);
      const shown = match[1]!.split(", ");
      assertEquals(shown.length + Number(match[2]), names.length);
      assertEquals(shown, names.slice(0, shown.length));
    }
  });
});

Deno.test("formatRate writes rates as the config does", () => {
  assertEquals(formatRate({ count: 20, perMs: 1000 }), "20/s");
  assertEquals(formatRate({ count: 600, perMs: 60_000 }), "600/m");
  assertEquals(formatRate({ count: 5, perMs: 3_600_000 }), "5/h");
  assertEquals(formatRate({ count: 5, perMs: 10_000 }), "5/10s");
});

Deno.test("TokenBucket allows a burst, then the rate", async (t) => {
  await t.step("burst then refill", () => {
    const bucket = new TokenBucket({ rate: { count: 2, perMs: 1000 }, burst: 3, now: 0 });
    const at = (now: number, times: number): boolean[] =>
      Array.from({ length: times }, () => bucket.take(now));
    assertEquals(at(0, 4), [true, true, true, false]);
    assertEquals(at(499, 1), [false]);
    assertEquals(at(500, 2), [true, false]);
    assertEquals(at(10_000, 4), [true, true, true, false]); // never more than the burst
  });
  await t.step("a clock that goes back adds nothing", () => {
    const bucket = new TokenBucket({ rate: { count: 1, perMs: 1000 }, burst: 1, now: 5000 });
    assertEquals(bucket.take(5000), true);
    assertEquals(bucket.take(1000), false);
    assertEquals(bucket.take(5999), false);
    assertEquals(bucket.take(6000), true);
  });
  await t.step("reconfigure caps the tokens", () => {
    const bucket = new TokenBucket({ rate: { count: 1, perMs: 1000 }, burst: 10, now: 0 });
    bucket.configure({ count: 1, perMs: 1000 }, 2);
    assertEquals([bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, false]);
  });
  await t.step("bad settings throw RangeError", () => {
    for (const [rate, burst] of [[{ count: 0, perMs: 1000 }, 1], [{ count: 1, perMs: 1000 }, 0]]) {
      let thrown: unknown;
      try {
        new TokenBucket({
          rate: rate as { count: number; perMs: number },
          burst: burst as number,
          now: 0,
        });
      } catch (error) {
        thrown = error;
      }
      assertEquals(thrown instanceof RangeError, true);
    }
  });
});

Deno.test("chat options: defaults, and every bad value reported", async (t) => {
  await t.step("defaults", () => {
    const config = parseConfig(chatListener(), "test.toml", { services: SERVICES });
    assertEquals(config.listeners[0]!.options, {
      room: undefined,
      bus: undefined,
      memberTtlMs: 600_000,
      maxMembers: 100,
      maxMessage: 1400,
      memberRate: { count: 20, perMs: 1000 },
      memberBurst: 40,
      memberQueue: 262_144,
      appendNewline: false,
    });
  });
  await t.step("explicit values", () => {
    const config = parseConfig(
      chatListener({
        room: "lobby",
        member_ttl: "30s",
        max_members: 5,
        max_message: "2KiB",
        member_rate: "600/m",
        member_burst: 3,
        transport: "tcp",
        member_queue: "1MiB",
      }),
      "test.toml",
      { services: SERVICES },
    );
    assertEquals(config.listeners[0]!.options, {
      room: "lobby",
      bus: undefined,
      memberTtlMs: 30_000,
      maxMembers: 5,
      maxMessage: 2048,
      memberRate: { count: 600, perMs: 60_000 },
      memberBurst: 3,
      memberQueue: 1_048_576,
      appendNewline: false,
    });
  });
  await t.step("bad values", () => {
    const problems = configProblems(chatListener({
      room: "no spaces",
      member_ttl: "0.5s",
      max_members: 0,
      max_message: 70_000,
      member_rate: "fast",
      member_burst: 0,
      member_queue: "1MiB",
      max_mesage: 3,
    }));
    assertEquals(
      problems.sort(),
      [
        'listener[0].max_mesage: unknown key (did you mean "max_message"?)',
        "listener[0].max_members: 0 is below the minimum 1",
        "listener[0].max_message: 70000 bytes is over the maximum 65000 bytes",
        "listener[0].member_burst: 0 is below the minimum 1",
        "listener[0].member_queue: has no effect on a udp listener",
        'listener[0].member_rate: Cannot parse rate "fast": expected a count per period, e.g. "20/s" or "600/m"',
        "listener[0].member_ttl: 500ms is below the minimum 1000ms",
        'listener[0].room: "no spaces" is not a valid room name: use letters, digits, ".", "_" and "-" (at most 64)',
      ].sort(),
    );
  });
});

Deno.test("the embedded default's chat listener validates", () => {
  const { text } = defaultConfig(SERVICES, { env: () => undefined, cwd: "/nonexistent" });
  const config = parseConfig(text, "<embedded default>", { services: SERVICES, baseDir: "/" });
  const chat = config.listeners.find((listener) => listener.service === "chat");
  assertEquals(chat?.transport, "udp");
  assertEquals(chat?.address.port, 7008);
});
