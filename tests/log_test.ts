import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";

const fixed = (): Date => new Date("2026-11-22T10:30:00.000Z");

Deno.test("text lines carry time, level, message and fields", () => {
  const lines: string[] = [];
  const log = new Logger({ sink: (l) => lines.push(l), journal: false, now: fixed });
  log.child({ listener: "echo" }).warn("Connection refused", { peer: "127.0.0.1:5000", count: 2 });
  assert.deepEqual(lines, [
    "2026-11-22T10:30:00.000Z WARN  Connection refused listener=echo peer=127.0.0.1:5000 count=2",
  ]);
});

Deno.test("levels below the configured one are dropped, and reconfiguring reaches children", () => {
  const lines: string[] = [];
  const root = new Logger({ sink: (l) => lines.push(l), journal: false, level: "info" });
  const child = root.child({ listener: "x" });
  child.debug("hidden");
  root.configure({ level: "debug" });
  child.debug("shown");
  root.configure({ level: "error" });
  child.warn("hidden too");
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /DEBUG shown listener=x/);
});

Deno.test("json lines are one object each", () => {
  const lines: string[] = [];
  const log = new Logger({
    sink: (l) => lines.push(l),
    journal: false,
    format: "json",
    now: fixed,
  });
  log.error("Bind failed", { listener: "echo", port: 7 });
  assert.deepEqual(JSON.parse(lines[0]!), {
    ts: "2026-11-22T10:30:00.000Z",
    level: "error",
    msg: "Bind failed",
    listener: "echo",
    port: 7,
  });
});

Deno.test("under journald lines get <N> priorities and no timestamp", () => {
  const lines: string[] = [];
  const log = new Logger({ sink: (l) => lines.push(l), journal: true, level: "debug" });
  log.error("e");
  log.warn("w");
  log.info("i");
  log.debug("d");
  assert.deepEqual(lines, ["<3>ERROR e", "<4>WARN  w", "<6>INFO  i", "<7>DEBUG d"]);
});

Deno.test("network text in messages and fields cannot forge log lines", () => {
  const lines: string[] = [];
  const log = new Logger({ sink: (l) => lines.push(l), journal: false, now: fixed });
  log.info("cmd ran\nFAKE LINE", { command: "rm -rf /\n2026 ERROR fake", peer: "a b" });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.includes("\n"), false);
  assert.ok(
    lines[0]!.endsWith(
      String.raw`cmd ran\nFAKE LINE command="rm -rf /\n2026 ERROR fake" peer="a b"`,
    ),
  );
});
