/**
 * A chat room shared by several daemons over a real nats-server: each
 * "daemon" is an in-process supervisor with its own listeners, room and bus
 * connection, on loopback ports (the subprocess tests are in
 * chat_bus_daemon_test.ts).
 */

import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { chatListener, type ChatPeer, TcpPeer, UdpPeer } from "./_chat_peers.ts";
import { startServer, type TestServer, waitFor } from "./_helpers.ts";
import { freePort, type NatsServer, startNatsServer } from "./_nats_server.ts";
import { parseConfig } from "../lib/config.ts";
import { SERVICES } from "../handlers/mod.ts";

const LINK_DOWN = "* link to the room is down";
const LINK_BACK = "* link to the room is back";

/** A daemon with a UDP listener "chat" and a TCP listener "chat-tcp" in room "lobby" on `bus`. */
async function daemon(bus: string, fields: Record<string, unknown> = {}): Promise<TestServer> {
  const shared = { room: "lobby", bus, member_burst: 1000, member_rate: "1000/s", ...fields };
  return await startServer(
    chatListener(shared) + chatListener({ ...shared, transport: "tcp" }, "chat-tcp"),
  );
}

function linked(...servers: TestServer[]): Promise<void> {
  return waitFor(() => servers.every((s) => s.supervisor.links.links.every((l) => l.up)), 10_000);
}

function linkDown(...servers: TestServer[]): Promise<void> {
  return waitFor(() => servers.every((s) => s.supervisor.links.links.every((l) => !l.up)), 10_000);
}

/** A UDP member of a daemon's "chat" listener, joined (its `/who` answered). */
async function udpMember(server: TestServer): Promise<UdpPeer> {
  const peer = new UdpPeer(server.port("chat"));
  await peer.send("/who");
  while (!(await peer.next()).startsWith("* members: ")) { /* announcements */ }
  return peer;
}

/** A TCP member of a daemon's "chat-tcp" listener, joined (its `/who` answered). */
async function tcpMember(server: TestServer): Promise<TcpPeer> {
  const peer = await TcpPeer.connect(server.port("chat-tcp"));
  await peer.send("/who");
  while (!(await peer.next()).startsWith("* members: ")) { /* announcements */ }
  return peer;
}

/** Reads the next line and checks it. */
async function expectLine(peer: ChatPeer, expected: string, timeoutMs = 5000): Promise<void> {
  assertEquals(await peer.next(timeoutMs), expected, `${peer.address} expected ${expected}`);
}

/**
 * Reads lines until `member`'s join, skipping the joins of strangers: on a
 * shared machine a UDP port a listener gets may have belonged to an earlier
 * listener whose client still sends keep-alives, and a first datagram joins.
 */
async function expectJoin(peer: ChatPeer, member: ChatPeer): Promise<void> {
  const wanted = `* ${member.address} joined`;
  for (let skipped = 0; skipped < 5; skipped++) {
    const line = await peer.next(5000);
    if (line === wanted) return;
    if (!/^\* 127\.0\.0\.1:\d+ joined$/.test(line)) {
      assertEquals(line, wanted, `${peer.address} expected ${wanted}`);
    }
  }
  throw new Error(`${peer.address}: no ${wanted} after five strangers' joins`);
}

/** Reads `count` lines and returns them sorted (for announcements whose order is not fixed). */
async function lines(peer: ChatPeer, count: number, timeoutMs = 5000): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < count; i++) got.push(await peer.next(timeoutMs));
  return got.sort();
}

/**
 * Waits until `/who` lists `names` (announcements still arriving are read
 * and dropped), then until the peer has been quiet for a moment.
 */
async function settled(peer: ChatPeer, names: string[]): Promise<void> {
  const wanted = JSON.stringify([...names].sort());
  for (let round = 0; round < 30; round++) {
    await peer.send("/who");
    let line = await peer.next();
    while (!line.startsWith("* members: ")) line = await peer.next();
    const listed = JSON.stringify(line.slice("* members: ".length).split(", ").sort());
    if (listed === wanted) {
      while ((await peer.nextBytes(200)) !== undefined) { /* late announcements */ }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`/who never listed ${wanted}`);
}

/**
 * Asks `/who` until it lists exactly `names` (bounded), keeping every other
 * line heard meanwhile.
 * @returns the lines heard besides the `/who` replies
 */
async function untilWho(peer: ChatPeer, names: string[], timeoutMs: number): Promise<string[]> {
  const wanted = JSON.stringify([...names].sort());
  const heard: string[] = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await peer.send("/who");
    let line = await peer.next();
    while (!line.startsWith("* members: ")) {
      heard.push(line);
      line = await peer.next();
    }
    if (JSON.stringify(line.slice("* members: ".length).split(", ").sort()) === wanted) {
      return heard;
    }
    if (performance.now() > deadline) throw new Error(`/who never listed ${wanted}: ${line}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function who(peer: ChatPeer): Promise<string[]> {
  await peer.send("/who");
  const reply = await peer.next();
  assertMatch(reply, /^\* members: /);
  return reply.slice("* members: ".length).split(", ").sort();
}

Deno.test("chat bus: two daemons are one room for UDP and TCP members", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url);
  await linked(one, two);
  await using b = await tcpMember(two);
  await using a = await udpMember(one);
  await expectJoin(b, a);
  await using c = await udpMember(two);
  await expectJoin(a, c);
  await expectJoin(b, c);
  await c.send("hello from two");
  await expectLine(a, `[${c.address}] hello from two`);
  await expectLine(b, `[${c.address}] hello from two`);
  await a.send("hi from one");
  await expectLine(b, `[${a.address}] hi from one`);
  await expectLine(c, `[${a.address}] hi from one`);
  // /who lists the whole room, to the asker only.
  assertEquals(await who(a), [a.address, b.address, c.address].sort());
  assertEquals(await who(b), [a.address, b.address, c.address].sort());
  // Renames and leaves are announced room-wide; the sender hears nothing of its own.
  await b.send("/nick bob");
  await expectLine(a, `* ${b.address} is now bob`);
  await expectLine(c, `* ${b.address} is now bob`);
  await b.send("/leave");
  await expectLine(a, "* bob left");
  await expectLine(c, "* bob left");
  await b.ended;
  assertEquals(await who(c), [a.address, c.address].sort());
  await a.quiet();
  await c.quiet();
});

Deno.test("chat bus: a burst from one sender reaches every member of three daemons once, in order", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url);
  await using three = await daemon(nats.url);
  await linked(one, two, three);
  await using sender = await tcpMember(one);
  await sender.send("/nick sender");
  await using local = await tcpMember(one);
  await using far = await tcpMember(two);
  await using farther = await tcpMember(three);
  await using farUdp = await udpMember(three);
  const receivers = [local, far, farther, farUdp];
  const everyone = ["sender", ...receivers.map((peer) => peer.address)];
  for (const peer of [sender, ...receivers]) await settled(peer, everyone);
  const burst = async (from: number, count: number): Promise<string[]> => {
    const lines = Array.from({ length: count }, (_, i) => `m${from + i}`);
    await sender.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    return lines.map((line) => `[sender] ${line}`);
  };
  // Stream members get all of a large burst, once each, in order.
  const expected = await burst(0, 500);
  for (const peer of [local, far, farther]) {
    const got: string[] = [];
    for (let i = 0; i < expected.length; i++) got.push(await peer.next(10_000));
    assertEquals(got, expected);
    await peer.quiet(200);
  }
  // A datagram member may lose some of it in its own socket buffer (this
  // process runs every daemon and member), but never gets one twice or out of order.
  const seen: number[] = [];
  for (let line = await farUdp.nextBytes(500); line; line = await farUdp.nextBytes(500)) {
    seen.push(Number(/^\[sender\] m(\d+)$/.exec(new TextDecoder().decode(line))![1]));
  }
  assertEquals(seen.every((n, i) => i === 0 || n > seen[i - 1]!), true);
  // A burst that fits its buffer arrives whole.
  const small = await burst(500, 60);
  const got: string[] = [];
  for (let i = 0; i < small.length; i++) got.push(await farUdp.next());
  assertEquals(got, small);
  for (const peer of [local, far, farther]) {
    for (let i = 0; i < small.length; i++) assertEquals(await peer.next(), small[i]);
  }
  for (const peer of [sender, ...receivers]) await peer.quiet(200);
});

Deno.test("chat bus: names are unique and max_members counts the whole room", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url, { max_members: 2 });
  await using two = await daemon(nats.url, { max_members: 2 });
  await linked(one, two);
  await using a = await tcpMember(one);
  await a.send("/nick ana");
  await using b = await tcpMember(two);
  await settled(a, ["ana", b.address]);
  await settled(b, ["ana", b.address]);
  await b.send("/nick ANA");
  await expectLine(b, "error: name taken");
  // Full: a third member is refused on either daemon.
  await using c = await TcpPeer.connect(one.port("chat-tcp"));
  await expectLine(c, "error: room full");
  await using d = new UdpPeer(two.port("chat"));
  await d.send("");
  await expectLine(d, "error: room full");
  await a.quiet();
});

Deno.test("chat bus: a member's timeout is announced on the other daemons", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url, { member_ttl: "1s" });
  await linked(one, two);
  await using a = await tcpMember(one);
  await using b = await udpMember(two);
  await expectLine(a, `* ${b.address} joined`);
  await expectLine(a, `* ${b.address} left (timeout)`, 4000);
  assertEquals(await who(a), [a.address]);
});

Deno.test("chat bus: losing the bus keeps local delivery, tells members once, and membership converges", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url);
  await linked(one, two);
  await using a1 = await tcpMember(one);
  await a1.send("/nick a1");
  await using a2 = await tcpMember(one);
  await a2.send("/nick a2");
  await using b1 = await tcpMember(two);
  await b1.send("/nick b1");
  await using b2 = await tcpMember(two);
  await b2.send("/nick b2");
  for (const peer of [a1, a2, b1, b2]) await settled(peer, ["a1", "a2", "b1", "b2"]);

  await nats.kill();
  await linkDown(one, two);
  for (const peer of [a1, a2, b1, b2]) await expectLine(peer, LINK_DOWN);
  // Local delivery goes on; nothing of it is replayed to the other daemon later.
  await a1.send("only for one");
  await expectLine(a2, "[a1] only for one");
  await b2.send("/leave");
  await expectLine(b1, "* b2 left");
  await using b3 = await tcpMember(two);
  await b3.send("/nick b3");
  await expectLine(b1, `* ${b3.address} joined`);
  await expectLine(b1, `* ${b3.address} is now b3`);
  // The others are still listed while the link is down (they may well be there).
  assertEquals(await who(a1), ["a1", "a2", "b1", "b2"]);

  await nats.restart();
  await linked(one, two);
  for (const peer of [a1, a2, b1, b3]) await expectLine(peer, LINK_BACK, 8000);
  for (const peer of [a1, a2]) {
    assertEquals(await lines(peer, 2), ["* b2 left", "* b3 joined"]);
  }
  for (const peer of [a1, a2, b1, b3]) {
    assertEquals(await who(peer), ["a1", "a2", "b1", "b3"]);
  }
  await a1.send("after");
  for (const peer of [a2, b1, b3]) await expectLine(peer, "[a1] after");
  for (const peer of [a1, a2, b1, b3]) await peer.quiet(300);
});

Deno.test("chat bus: a name claimed on both sides of a partition is resolved visibly", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url);
  await linked(one, two);
  await using a = await tcpMember(one);
  await using b = await tcpMember(two);
  await settled(a, [a.address, b.address]);
  await settled(b, [a.address, b.address]);
  await nats.kill();
  await linkDown(one, two);
  await expectLine(a, LINK_DOWN);
  await expectLine(b, LINK_DOWN);
  await a.send("/nick zed");
  await new Promise((resolve) => setTimeout(resolve, 20));
  await b.send("/nick zed"); // the later claim
  await nats.restart();
  await linked(one, two);
  await expectLine(a, LINK_BACK, 8000);
  await expectLine(b, LINK_BACK, 8000);
  // b's claim came later: b is renamed (zed#2) and told so, and a hears of it.
  // The rosters meet at a heartbeat after both links are back, possibly after
  // a peer timeout while one daemon is still reconnecting; what is promised
  // is the outcome and that it is visible, so wait for it (bounded).
  const heardByB = await untilWho(b, ["zed", "zed#2"], 20_000);
  const heardByA = await untilWho(a, ["zed", "zed#2"], 20_000);
  assertEquals(heardByB.includes("* zed is now zed#2"), true, heardByB.join(" | "));
  assertEquals(heardByA.some((l) => l.endsWith(" is now zed#2")), true, heardByA.join(" | "));
  await b.send("still here");
  await expectLine(a, "[zed#2] still here");
});

Deno.test("chat bus: a daemon that stops says goodbye: its members leave at once", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  const two = await daemon(nats.url);
  try {
    await linked(one, two);
    await using a = await tcpMember(one);
    await using b = await udpMember(two);
    await b.send("/nick bee");
    await expectLine(a, `* ${b.address} joined`);
    await expectLine(a, `* ${b.address} is now bee`);
    await two[Symbol.asyncDispose]();
    await expectLine(a, "* bee left", 2000);
    assertEquals(await who(a), [a.address]);
  } finally {
    await two[Symbol.asyncDispose]();
  }
});

Deno.test("chat bus: an unreachable bus at start leaves the room working locally until it comes", async () => {
  const port = freePort();
  const one = await daemon(`nats://127.0.0.1:${port}`);
  const two = await daemon(`nats://127.0.0.1:${port}`);
  let nats: NatsServer | undefined;
  try {
    await waitFor(() => one.lines.some((l) => /cannot reach the bus/.test(l)));
    await using a = await tcpMember(one);
    await using a2 = await udpMember(one);
    await a2.send("local hello");
    await expectLine(a, `* ${a2.address} joined`);
    await expectLine(a, `[${a2.address}] local hello`);
    nats = await startNatsServer({ port });
    await linked(one, two);
    await expectLine(a, LINK_BACK, 8000);
    await using b = await tcpMember(two);
    await expectLine(a, `* ${b.address} joined`);
    await settled(b, [a.address, a2.address, b.address]);
  } finally {
    await one[Symbol.asyncDispose]();
    await two[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
  }
});

Deno.test("chat bus: a reload that keeps the room keeps its link and its members", async () => {
  await using nats = await startNatsServer();
  await using one = await daemon(nats.url);
  await using two = await daemon(nats.url);
  await linked(one, two);
  await using a = await tcpMember(one);
  await using b = await udpMember(two);
  await expectLine(a, `* ${b.address} joined`);
  const toml = (fields: Record<string, unknown>) => {
    const shared = { room: "lobby", bus: nats.url, member_burst: 1000, member_rate: "1000/s" };
    return chatListener({ ...shared, ...fields }) +
      chatListener({ ...shared, ...fields, transport: "tcp" }, "chat-tcp");
  };
  const summary = await two.supervisor.apply(
    parseConfig(toml({ max_members: 50 }), "test.toml", { services: SERVICES }),
  );
  assertEquals(summary.changed.sort(), ["chat", "chat-tcp"]);
  await b.send("still here");
  await expectLine(a, `[${b.address}] still here`);
  await a.quiet(300);
  assertEquals(two.supervisor.links.links.map((l) => [l.up, l.downs]), [[true, 0]]);
});
