import assert from "node:assert/strict";
import { AccessTimes, parseTimeWindow, windowContains } from "../lib/access_times.ts";
import { systemTimeZone } from "../lib/zoned_time.ts";
import { checkConfig, listenerProblems, listenerToml, readToEnd, startServer } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("access_times windows parse to inclusive minutes of the day", async (t) => {
  const cases: [string, number, number][] = [
    ["08:00-18:00", 480, 1080],
    ["8:00-18:00", 480, 1080], // xinetd writes hours without a leading zero
    ["00:00-23:59", 0, 1439],
    ["22:30-06:15", 1350, 375],
    ["12:00-12:00", 720, 720],
  ];
  for (const [text, start, end] of cases) {
    await t.step(text, () => assert.deepEqual(parseTimeWindow(text), { start, end }));
  }
  for (const bad of ["24:00-01:00", "08:60-09:00", "08:00", "08:00-", "8-18", " 08:00-18:00", ""]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseTimeWindow(bad), SyntaxError);
    });
  }
});

Deno.test("a window holds both its ends and may wrap past midnight", async (t) => {
  const at = (hh: number, mm: number): number => hh * 60 + mm;
  const cases: [string, number, boolean][] = [
    ["08:00-18:00", at(8, 0), true],
    ["08:00-18:00", at(18, 0), true], // 18:00:59 is still inside
    ["08:00-18:00", at(18, 1), false],
    ["08:00-18:00", at(7, 59), false],
    ["22:00-06:00", at(23, 59), true],
    ["22:00-06:00", at(0, 0), true],
    ["22:00-06:00", at(6, 0), true],
    ["22:00-06:00", at(6, 1), false],
    ["22:00-06:00", at(21, 59), false],
    ["12:00-12:00", at(12, 0), true],
    ["12:00-12:00", at(12, 1), false],
  ];
  for (const [window, minute, inside] of cases) {
    await t.step(`${window} at minute ${minute}: ${inside}`, () => {
      assert.equal(windowContains(parseTimeWindow(window), minute), inside);
    });
  }
});

Deno.test("access_times reads the clock in the daemon's zone, across a DST change", () => {
  // 2026-03-29 is the spring-forward day in Berlin: 02:00 CET becomes 03:00 CEST.
  const berlin = (iso: string): number => Temporal.ZonedDateTime.from(iso).epochMilliseconds;
  let now = berlin("2026-03-29T01:59:30+01:00[Europe/Berlin]");
  const hours = new AccessTimes(["03:00-03:30"], { zone: "Europe/Berlin", now: () => now });
  assert.equal(hours.zone, "Europe/Berlin");
  assert.equal(hours.allows(), false, "01:59 CET");
  now += 60_000; // one real minute later the wall clock says 03:00 CEST
  assert.equal(hours.allows(), true, "03:00 CEST");
  const utc = new AccessTimes(["03:00-03:30"], { zone: "UTC", now: () => now });
  assert.equal(utc.allows(), false, "the same instant is 01:00 in UTC");
});

function problems(keys: Record<string, unknown>): string[] {
  return listenerProblems({ service: "echo", listen: "127.0.0.1:0", ...keys });
}

Deno.test("bad access_times are config problems with their key", () => {
  assert.deepEqual(problems({ access_times: ["08:00-18:00", "9-17"] }), [
    't.toml:4: listener[0].access_times[1]: "9-17" is not a window of the day: ' +
    'write "HH:MM-HH:MM" (00:00 to 23:59), e.g. "08:00-18:00"',
  ]);
  assert.match(problems({ access_times: [] })[0]!, /access_times: must list at least one window/);
  assert.match(
    problems({ access_times: ["08:00-18:00"], transport: "udp" })[0]!,
    /access_times: has no effect on a udp listener/,
  );
  assert.match(problems({ access_times: "08:00-18:00" })[0]!, /expected an array of strings/);
  assert.deepEqual(problems({ access_times: ["08:00-18:00", "22:00-02:00"] }), []);
});

/** An instant whose local time (in the zone the daemon uses) is `hh:mm:ss` today. */
function localInstant(hh: number, mm: number, ss = 0): number {
  return Temporal.Now.zonedDateTimeISO(systemTimeZone())
    .with({ hour: hh, minute: mm, second: ss, millisecond: 0 })
    .epochMilliseconds;
}

async function echoes(port: number, text: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(text));
  await conn.closeWrite();
  return decoder.decode(await readToEnd(conn, 3000));
}

Deno.test("outside access_times a new connection is closed at once and logged; open ones stay", async () => {
  let now = localInstant(23, 59, 30);
  await using server = await startServer(
    listenerToml({
      name: "night",
      service: "echo",
      listen: "127.0.0.1:0",
      access_times: ["23:00-00:30"],
    }),
    { wallClock: () => now },
  );
  const port = server.port("night");
  assert.equal(await echoes(port, "late"), "late", "23:59 is inside a window wrapping midnight");
  using open = await Deno.connect({ hostname: "127.0.0.1", port });
  now = localInstant(0, 30, 59);
  assert.equal(
    await echoes(port, "00:30"),
    "00:30",
    "the end minute is inside, to its last second",
  );
  now = localInstant(0, 31);
  assert.equal(await echoes(port, "early"), "", "00:31 is outside: closed before the service");
  const refused = server.lines.filter((l) => l.includes("Connection refused outside access_times"));
  assert.equal(refused.length, 1, server.lines.join("\n"));
  assert.match(refused[0]!, /listener=night peer=127\.0\.0\.1:\d+/);
  assert.equal(server.supervisor.listeners[0]!.stats.denied, 1);
  // The connection accepted inside the window is served on.
  await open.write(encoder.encode("still here"));
  const reply = new Uint8Array(10);
  let got = 0;
  while (got < reply.length) got += (await open.read(reply.subarray(got))) ?? Infinity;
  assert.equal(decoder.decode(reply), "still here");
});

Deno.test("check lists a listener's access_times", async () => {
  const result = await checkConfig(
    listenerToml({ service: "echo", listen: "127.0.0.1:7107", access_times: ["08:00-18:00"] }),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /access_times=08:00-18:00/);
});
