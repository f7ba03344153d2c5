import assert from "node:assert/strict";
import { durationOption, parseClientAddress, parseVerbArgs, UsageError } from "../cli/args.ts";

Deno.test("parseClientAddress", async (t) => {
  const good: [string, string, number][] = [
    ["127.0.0.1:7007", "127.0.0.1", 7007],
    ["localhost", "localhost", 9],
    ["[::1]:80", "::1", 80],
    ["[::1]", "::1", 9],
    ["::1", "::1", 9],
    ["example.org:65535", "example.org", 65535],
  ];
  for (const [text, hostname, port] of good) {
    await t.step(text, () => assert.deepEqual(parseClientAddress(text, 9), { hostname, port }));
  }
  const bad: [string, RegExp][] = [
    ["host:", /missing port/],
    [":80", /missing host/],
    ["[]:80", /bad address/],
    ["host:0", /1-65535/],
    ["host:65536", /1-65535/],
    ["host:http", /1-65535/],
    ["[::1]:99999", /bad address/],
  ];
  for (const [text, message] of bad) {
    await t.step(`${text} is refused`, () => {
      assert.throws(() => parseClientAddress(text, 9), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

Deno.test("parseVerbArgs: unknown options and missing values are usage errors", async (t) => {
  const options = { udp: { type: "boolean" as const }, timeout: { type: "string" as const } };
  await t.step("known options, -- ends options", () => {
    const parsed = parseVerbArgs(["--udp", "a", "--", "--timeout"], options);
    assert.equal(parsed.values.udp, true);
    assert.deepEqual(parsed.positionals, ["a", "--timeout"]);
  });
  await t.step("-h is --help", () => {
    assert.equal(parseVerbArgs(["-h"], options).values.help, true);
  });
  for (const args of [["--bogus"], ["-x"], ["--timeout"], ["--udp=yes"]]) {
    await t.step(args.join(" "), () => {
      assert.throws(() => parseVerbArgs(args, options), UsageError);
    });
  }
});

Deno.test("durationOption", async (t) => {
  const good: [unknown, number | undefined][] = [
    [undefined, undefined],
    ["500ms", 500],
    ["2s", 2000],
    ["1m", 60_000],
  ];
  for (const [value, ms] of good) {
    await t.step(String(value), () => assert.equal(durationOption(value, "timeout"), ms));
  }
  const bad: [string, RegExp][] = [
    ["0s", /--timeout must be more than 0/],
    ["soon", /^--timeout: /],
    ["-1s", /^--timeout/],
  ];
  for (const [value, message] of bad) {
    await t.step(`${value} is refused`, () => {
      assert.throws(() => durationOption(value, "timeout"), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
