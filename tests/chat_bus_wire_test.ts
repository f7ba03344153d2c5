import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  type BusEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  MAX_BUS_BODY,
} from "../handlers/chat/bus_wire.ts";
import { RemoteRoster } from "../handlers/chat/remote_roster.ts";
import { backoffMs, MAX_BACKOFF_MS } from "../handlers/chat/bus_link.ts";

const enc = new TextEncoder();

Deno.test("chat bus wire: every envelope type survives a round trip", async (t) => {
  const cases: [string, BusEnvelope, Uint8Array?][] = [
    ["msg", { t: "msg", d: "a", s: 1, m: 2, n: "ana" }, new Uint8Array([0, 0xff, 0x0a, 0x41])],
    ["msg with an empty body", { t: "msg", d: "a", s: 1, m: 2, n: "ana" }, new Uint8Array()],
    ["join", { t: "join", d: "a", s: 2, m: 2, n: "1.2.3.4:5", j: 1e12, c: 1e12, v: 1 }],
    ["leave", { t: "leave", d: "a", s: 3, m: 2, r: "too slow", v: 2 }],
    ["nick", { t: "nick", d: "a", s: 4, m: 2, n: "ñandú", c: 1e12 + 5, v: 3 }],
    ["hello", { t: "hello", d: "a", s: 5, h: "host/42" }],
    ["roster", { t: "roster", d: "a", s: 6, r: 6, p: 0, P: 1, v: 3, ms: [[2, "x", 1, 2]] }],
    ["beat", { t: "beat", d: "a", s: 7, v: 3, c: 1 }],
    ["sync", { t: "sync", d: "a", s: 8, to: "b" }],
    ["bye", { t: "bye", d: "a", s: 9 }],
  ];
  for (const [name, header, body] of cases) {
    await t.step(name, () => {
      const decoded = decodeEnvelope(encodeEnvelope(header, body));
      assertEquals(decoded?.[0], header);
      assertEquals([...decoded![1]], [...(body ?? [])]);
    });
  }
});

Deno.test("chat bus wire: malformed or foreign envelopes are refused", async (t) => {
  const line = (header: unknown, body = "") => enc.encode(JSON.stringify(header) + "\n" + body);
  const cases: [string, Uint8Array][] = [
    ["no newline", enc.encode('{"t":"bye","d":"a","s":1}')],
    ["not JSON", enc.encode("hello\n")],
    ["an array", line([1, 2])],
    ["no sender", line({ t: "bye", s: 1 })],
    ["a negative sequence", line({ t: "bye", d: "a", s: -1 })],
    ["an unknown type", line({ t: "shout", d: "a", s: 1 })],
    ["a msg without a name", line({ t: "msg", d: "a", s: 1, m: 1 })],
    ["a leave with an unknown reason", line({ t: "leave", d: "a", s: 1, m: 1, r: "bored", v: 1 })],
    ["a body on a non-message", line({ t: "bye", d: "a", s: 1 }, "x")],
    [
      "a roster part out of range",
      line({ t: "roster", d: "a", s: 1, r: 1, p: 1, P: 1, v: 0, ms: [] }),
    ],
    ["a bad roster entry", line({ t: "roster", d: "a", s: 1, r: 1, p: 0, P: 1, v: 0, ms: [[1]] })],
    [
      "a body over the limit",
      line({ t: "msg", d: "a", s: 1, m: 1, n: "x" }, "x".repeat(MAX_BUS_BODY + 1)),
    ],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, () => assertEquals(decodeEnvelope(bytes), undefined));
  }
});

Deno.test("chat bus wire: any message body passes through byte for byte", () => {
  for (let round = 0; round < 200; round++) {
    const body = crypto.getRandomValues(new Uint8Array(Math.floor(Math.random() * 3000)));
    const decoded = decodeEnvelope(
      encodeEnvelope({ t: "msg", d: "x", s: round, m: 1, n: "n" }, body),
    );
    assertEquals(decoded![1], body);
  }
});

Deno.test("chat bus: reconnect back-off doubles from 100 ms and never exceeds 5 s", () => {
  assertEquals(backoffMs(0, 0), 100);
  assertEquals(backoffMs(1, 0), 200);
  assertEquals(backoffMs(5, 0), 3200);
  for (const attempt of [6, 7, 20, 1000]) {
    assertEquals(backoffMs(attempt, 0), MAX_BACKOFF_MS);
    assertEquals(backoffMs(attempt, 0.999) <= MAX_BACKOFF_MS, true);
    assertEquals(backoffMs(attempt, 0.999) >= MAX_BACKOFF_MS * 0.8, true);
  }
});

Deno.test("chat bus roster: a full roster turns into joins, leaves and renames", () => {
  const roster = new RemoteRoster();
  const peer = roster.addPeer("p", 0);
  roster.add(peer, [1, "ana", 10, 10]);
  roster.add(peer, [2, "bob", 11, 11]);
  const changes = roster.replace(peer, [[2, "bobby", 11, 20], [3, "cy", 12, 12]]);
  assertEquals(changes.joined.map((m) => m.name), ["cy"]);
  assertEquals(changes.left.map((m) => m.name), ["ana"]);
  assertEquals(changes.renamed.map(([m, old]) => [old, m.name]), [["bob", "bobby"]]);
  assertEquals(roster.size, 2);
  assertEquals(roster.hasName("BOBBY".toLowerCase()), true);
  assertEquals(roster.hasName("ana"), false);
  assertEquals(roster.removePeer(peer).length, 2);
  assertEquals(roster.size, 0);
});

Deno.test("chat bus roster: a roster in parts is taken whole, and a missed part is noticed", () => {
  const roster = new RemoteRoster();
  const peer = roster.addPeer("p", 0);
  assertEquals(roster.takePart(peer, { r: 5, p: 0, P: 2, v: 9, ms: [[1, "a", 1, 1]] }), undefined);
  assertEquals(roster.takePart(peer, { r: 5, p: 1, P: 2, v: 9, ms: [[2, "b", 1, 1]] }), {
    version: 9,
    entries: [[1, "a", 1, 1], [2, "b", 1, 1]],
  });
  assertEquals(roster.takePart(peer, { r: 7, p: 0, P: 3, v: 9, ms: [] }), undefined);
  assertEquals(roster.takePart(peer, { r: 7, p: 2, P: 3, v: 9, ms: [] }), "broken");
});
