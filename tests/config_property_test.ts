/**
 * Property tests of the config loader: random documents made of the keys the
 * daemon knows (and some it does not), with values of every TOML type, and
 * random edits of a valid file, always give a config or a ConfigError whose
 * every problem names the file, a key path and a line — never a crash.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { ConfigError, parseConfig } from "../lib/config.ts";
import { SERVICES } from "../handlers/mod.ts";

const FILE = "/etc/switchboard/property.toml";
const RUNS = Number(Deno.env.get("SWITCHBOARD_PROPERTY_RUNS") ?? 300);

const LISTENER_KEYS = [
  "name",
  "service",
  "transport",
  "listen",
  "enabled",
  "max_connections",
  "idle_timeout",
  "header_timeout",
  "allow",
  "deny",
  "transform",
  "root",
  "allow_upload",
  "overwrite",
  "max_upload",
  "max_list",
  "show_hidden",
  "protocol",
  "token",
  "auth",
  "shell",
  "timeout",
  "max_output",
  "max_concurrent",
  "max_stdin",
  "workdir",
  "env",
  "pass_env",
  "allow_commands",
  "allow_shell",
  "mode",
  "timezone",
  "default_format",
  "member_ttl",
  "max_members",
  "max_message",
  "member_rate",
  "member_burst",
  "member_queue",
  "room",
  "tranform",
];
const DAEMON_KEYS = ["log_level", "log_format", "shutdown_timeout", "metrics", "colour"];

const plausible = fc.constantFrom(
  "echo",
  "chat",
  "cmd",
  "time",
  "file",
  "tcp",
  "udp",
  "127.0.0.1:0",
  "[::1]:0",
  ":0",
  "0.0.0.0:99999",
  "10s",
  "0",
  "1m30s",
  "-5s",
  "64KiB",
  "1GiB",
  "upper",
  "none",
  "line",
  "raw",
  "framed",
  "UTC",
  "Mars/Olympus",
  "%Y-%m-%d",
  "%Q",
  "20/s",
  "/tmp",
  "/nonexistent",
  "127.0.0.0/8",
  "::1/129",
  "",
);
const value = fc.oneof(
  plausible,
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -10, max: 100_000 }),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.array(fc.oneof(plausible, fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom("A", "B"), fc.oneof(plausible, fc.integer()), { maxKeys: 2 }),
);
const table = (keys: string[]) =>
  fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), value, {
    maxKeys: 8,
  });
const document = fc.record({
  daemon: fc.option(table(DAEMON_KEYS), { nil: undefined }),
  listener: fc.option(fc.array(table(LISTENER_KEYS), { maxLength: 4 }), { nil: undefined }),
}, { requiredKeys: [] });

/** Parses; a ConfigError's problems must all be located. Anything else thrown fails. */
function check(text: string): void {
  try {
    parseConfig(text, FILE, { services: SERVICES, baseDir: "/tmp" });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.ok(error.problems.length > 0);
    for (const problem of error.problems) {
      assert.equal(problem.file, FILE);
      assert.equal(typeof problem.key, "string");
      assert.ok(problem.message.length > 0);
      assert.ok(
        Number.isInteger(problem.line) && problem.line! >= 1,
        `no line for ${JSON.stringify(problem)} in:\n${text}`,
      );
    }
  }
}

Deno.test("property: random configs give a config or located problems, never a crash", () => {
  fc.assert(
    fc.property(document, (doc) => {
      const clean = Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined));
      check(stringify(clean));
    }),
    { numRuns: RUNS },
  );
});

const VALID = `[daemon]
log_level = "info"
shutdown_timeout = "5s"

[[listener]]
name = "echo"
service = "echo"
listen = "127.0.0.1:0"
transform = "upper"

[[listener]]
service = "time"
transport = "udp"
listen = "127.0.0.1:0"
timezone = "UTC"
default_format = "%H:%M"

[[listener]]
service = "cmd"
listen = "127.0.0.1:0"
auth = "none"
header_timeout = "2s"
`;

Deno.test("property: random edits of a valid config give a config or located problems", () => {
  const edit = fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.string({ maxLength: 6 }));
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), (edits) => {
      let text = VALID;
      for (const [at, cut, insert] of edits) {
        const index = at % (text.length + 1);
        text = text.slice(0, index) + insert + text.slice(index + cut);
      }
      check(text);
    }),
    { numRuns: RUNS },
  );
});
