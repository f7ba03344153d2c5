import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { chatListener, FakeClock, udpPair, UdpPeer } from "./_chat_peers.ts";
import { startServer } from "./_helpers.ts";

const enc = new TextEncoder();

Deno.test("chat: a first datagram joins its sender and is relayed to the others", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("");
  await b.send("hello\n");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await a.next(), `[${b.address}] hello`);
  // Nothing goes back to the sender: not its own join, not its own message.
  await b.quiet();
});

Deno.test("chat: an empty datagram is a keep-alive that relays nothing", async () => {
  await using pair = await udpPair();
  const { a, b } = pair;
  await b.send("");
  await b.send("\n"); // what `nc -u` sends for an empty line
  await a.quiet();
  await b.quiet();
});

Deno.test("chat: each message reaches every other member exactly once, never its sender", async () => {
  await using server = await startServer(chatListener({ member_burst: 100 }));
  const port = server.port("chat");
  const peers = Array.from({ length: 6 }, () => new UdpPeer(port));
  try {
    for (const peer of peers) await peer.send("");
    // Each peer hears about everyone who joined after it.
    for (const [index, peer] of peers.entries()) {
      for (const later of peers.slice(index + 1)) {
        assertEquals(await peer.next(), `* ${later.address} joined`);
      }
    }
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      for (const [index, peer] of peers.entries()) await peer.send(`m${round}-${index}`);
    }
    for (const [index, peer] of peers.entries()) {
      const got: string[] = [];
      for (let i = 0; i < rounds * (peers.length - 1); i++) got.push(await peer.next());
      await peer.quiet(150);
      const expected = [];
      for (let round = 0; round < rounds; round++) {
        for (const [other, sender] of peers.entries()) {
          if (other !== index) expected.push(`[${sender.address}] m${round}-${other}`);
        }
      }
      assertEquals(got.sort(), expected.sort());
    }
  } finally {
    for (const peer of peers) await peer[Symbol.asyncDispose]();
  }
});

Deno.test("chat: one trailing newline is stripped; bytes pass through untouched", async (t) => {
  await using pair = await udpPair();
  const { a, b } = pair;
  const prefix = enc.encode(`[${b.address}] `);
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["LF", enc.encode("x\n"), enc.encode("x")],
    ["CRLF", enc.encode("x\r\n"), enc.encode("x")],
    ["only one newline", enc.encode("x\n\n"), enc.encode("x\n")],
    ["a lone CR stays", enc.encode("x\r"), enc.encode("x\r")],
    ["UTF-8", enc.encode("héllo 世界 🎉\n"), enc.encode("héllo 世界 🎉")],
    [
      "invalid UTF-8",
      new Uint8Array([0xff, 0xfe, 0x80, 0x00, 0x41]),
      new Uint8Array([0xff, 0xfe, 0x80, 0x00, 0x41]),
    ],
    ["inner newlines", enc.encode("a\nb\n"), enc.encode("a\nb")],
  ];
  for (const [name, sent, relayed] of cases) {
    await t.step(name, async () => {
      await b.send(sent);
      const got = await a.nextBytes();
      const expected = new Uint8Array(prefix.length + relayed.length);
      expected.set(prefix);
      expected.set(relayed, prefix.length);
      assertEquals(got, expected);
    });
  }
});

Deno.test("chat: /nick renames, tells the others, and later messages carry the name", async () => {
  await using pair = await udpPair();
  const { a, b } = pair;
  await b.send("/nick bob\n");
  assertEquals(await a.next(), `* ${b.address} is now bob`);
  await b.send("hi");
  assertEquals(await a.next(), "[bob] hi");
  await b.send("/nick Bob"); // a change of case is a rename of one's own name
  assertEquals(await a.next(), "* bob is now Bob");
  await b.send("/nick Bob"); // no change: nothing to announce
  await a.quiet();
  await b.quiet();
});

Deno.test("chat: /nick refuses invalid and taken names, to the sender only", async (t) => {
  await using server = await startServer(chatListener({ member_burst: 100 }));
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("/nick ana");
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  const cases: [string, Uint8Array, string][] = [
    ["missing", enc.encode("/nick"), "error: usage: /nick NAME"],
    ["blank", enc.encode("/nick   "), "error: usage: /nick NAME"],
    [
      "with a space",
      enc.encode("/nick a b"),
      "error: invalid name: a name must not contain spaces",
    ],
    [
      "with a colon",
      enc.encode("/nick a:b"),
      'error: invalid name: a name must not contain ":" (addresses are reserved)',
    ],
    [
      "with a control character",
      enc.encode("/nick a\x1bb"),
      "error: invalid name: a name must not contain control or invisible characters",
    ],
    [
      "with a bidi override",
      enc.encode("/nick a\u202eb"),
      "error: invalid name: a name must not contain control or invisible characters",
    ],
    [
      "over 32 bytes",
      enc.encode(`/nick ${"é".repeat(17)}`),
      "error: invalid name: a name must be at most 32 bytes",
    ],
    [
      "invalid UTF-8",
      new Uint8Array([...enc.encode("/nick a"), 0xff]),
      "error: a name must be valid UTF-8",
    ],
    ["taken", enc.encode("/nick ana"), "error: name taken"],
    ["taken in another case", enc.encode("/nick ANA"), "error: name taken"],
    ["taken in full width", enc.encode("/nick ａｎａ"), "error: name taken"],
  ];
  for (const [name, command, reply] of cases) {
    await t.step(name, async () => {
      await b.send(command);
      assertEquals(await b.next(), reply);
      await a.quiet(50);
    });
  }
  await t.step("32 bytes is accepted", async () => {
    await b.send(`/nick ${"é".repeat(16)}`);
    assertEquals(await a.next(), `* ${b.address} is now ${"é".repeat(16)}`);
    await b.quiet(50);
  });
});

Deno.test("chat: /who lists the members to the sender only", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("/nick ana");
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  await b.send("/who\n");
  assertEquals(await b.next(), `* members: ana, ${b.address}`);
  await a.quiet();
});

Deno.test("chat: /leave removes the member; its next datagram joins again", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("");
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  await b.send("/nick bob");
  assertEquals(await a.next(), `* ${b.address} is now bob`);
  await b.send("/leave");
  assertEquals(await a.next(), "* bob left");
  await a.send("anyone?");
  await b.quiet(); // no longer a member
  await b.send("back");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await a.next(), `[${b.address}] back`);
});

Deno.test("chat: a first /nick NAME joins under NAME, with no rename line", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("/nick ana");
  await b.send("/nick bob");
  assertEquals(await a.next(), "* bob joined");
  await b.send("hi");
  assertEquals(await a.next(), "[bob] hi");
  await b.send("/who");
  assertEquals(await b.next(), "* members: ana, bob");
  await a.quiet(); // no "* … is now bob"
});

Deno.test("chat: a first /nick with a taken or bad name joins under the address and is told why", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await using c = new UdpPeer(port);
  await a.send("/nick ana");
  await b.send("/nick ANA");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await b.next(), "error: name taken");
  await c.send("/nick c:3");
  assertEquals(await a.next(), `* ${c.address} joined`);
  assertMatch(await c.next(), /^error: invalid name: /);
  await a.quiet();
});

Deno.test("chat: a /leave from a stranger does not join it", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("");
  await b.send("/leave");
  await a.quiet();
  await b.send("/who");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await b.next(), `* members: ${a.address}, ${b.address}`);
});

Deno.test("chat: unknown commands are refused; // sends a line starting with /", async () => {
  await using pair = await udpPair();
  const { a, b } = pair;
  await b.send("/shrug oh well");
  assertMatch(await b.next(), /^error: unknown command "\/shrug"/);
  await b.send("//shrug oh well");
  assertEquals(await a.next(), `[${b.address}] /shrug oh well`);
  await a.quiet();
});

Deno.test("chat: members silent for member_ttl expire with a timeout notice", async (t) => {
  const clock = new FakeClock();
  await using server = await startServer(chatListener({ member_ttl: "1m" }), { clock: clock.now });
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  // c's /who replies prove that what a and b sent before was handled, so
  // the clock moves only between datagrams.
  await using c = new UdpPeer(port);
  const settle = async (): Promise<void> => {
    await c.send("/who");
    assertMatch(await c.next(), /^\* members: /);
  };
  await a.send("");
  await b.send("");
  await c.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await a.next(), `* ${c.address} joined`);
  assertEquals(await b.next(), `* ${c.address} joined`);

  await t.step("a keep-alive keeps a member; a silent one expires", async () => {
    clock.advance(40_000);
    await b.send(""); // b lives until 100s; a is silent since 0s
    await settle();
    clock.advance(21_000); // 61s: a's TTL has run out
    await b.send("still here?");
    assertEquals(await c.next(), `[${b.address}] still here?`);
    assertEquals(await c.next(), `* ${a.address} left (timeout)`);
    assertEquals(await b.next(), `* ${a.address} left (timeout)`);
    await a.quiet(); // an expired member gets nothing more
  });

  await t.step("an expired member's next datagram joins it again", async () => {
    await a.send("back");
    assertEquals(await b.next(), `* ${a.address} joined`);
    assertEquals(await b.next(), `[${a.address}] back`);
    assertEquals(await c.next(), `* ${a.address} joined`);
    assertEquals(await c.next(), `[${a.address}] back`);
  });

  await t.step("the sweep expires members without any traffic", async () => {
    clock.advance(34_000); // 95s: a and b live until 121s, c until 100s
    await a.send("");
    await settle(); // a and c now live until 155s
    clock.advance(31_000); // 126s, and nobody sends
    assertEquals(await a.next(5000), `* ${b.address} left (timeout)`);
    assertEquals(await c.next(), `* ${b.address} left (timeout)`);
  });
});

Deno.test("chat: with the real clock a silent member expires soon after member_ttl", async () => {
  await using pair = await udpPair(chatListener({ member_ttl: "1s" }));
  const { a, b } = pair;
  let notice: string | undefined;
  const deadline = performance.now() + 10_000;
  while (notice === undefined && performance.now() < deadline) {
    await b.send(""); // b stays; a says nothing
    const got = await b.nextBytes(200);
    if (got !== undefined) notice = new TextDecoder().decode(got);
  }
  assertEquals(notice, `* ${a.address} left (timeout)`);
});

Deno.test("chat: a newcomer beyond max_members gets one 'room full' and is not a member", async () => {
  await using server = await startServer(chatListener({ max_members: 2 }));
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await using c = new UdpPeer(port);
  await a.send("");
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  await c.send("let me in");
  assertEquals(await c.next(), "error: room full");
  await c.quiet();
  await a.quiet();
  await b.quiet();
  await b.send("/leave");
  assertEquals(await a.next(), `* ${b.address} left`);
  await c.send("now?");
  assertEquals(await a.next(), `* ${c.address} joined`);
  assertEquals(await a.next(), `[${c.address}] now?`);
});

Deno.test("chat: a message over max_message is dropped and the sender alone is told", async () => {
  await using pair = await udpPair(chatListener({ max_message: 10 }));
  const { a, b } = pair;
  await b.send("0123456789A");
  assertEquals(await b.next(), "error: message too long (11 bytes, limit 10); not sent");
  await a.quiet();
  await b.send("0123456789\r\n"); // the limit applies after the newline is stripped
  assertEquals(await a.next(), `[${b.address}] 0123456789`);
});

Deno.test("chat: a member over its rate loses the excess and is told once per period", async () => {
  const clock = new FakeClock();
  await using server = await startServer(
    chatListener({ member_rate: "2/s", member_burst: 3 }),
    { clock: clock.now },
  );
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await using b = new UdpPeer(port);
  await a.send("");
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  for (let i = 0; i < 6; i++) await b.send(`m${i}`);
  for (let i = 0; i < 3; i++) assertEquals(await a.next(), `[${b.address}] m${i}`);
  await a.quiet();
  assertEquals(await b.next(), "error: rate limit exceeded (2/s, burst 3); messages dropped");
  await b.quiet(); // told once, not once per dropped message
  clock.advance(1000); // two tokens back, and a new notice period
  for (let i = 6; i < 9; i++) await b.send(`m${i}`);
  assertEquals(await a.next(), `[${b.address}] m6`);
  assertEquals(await a.next(), `[${b.address}] m7`);
  assertEquals(await b.next(), "error: rate limit exceeded (2/s, burst 3); messages dropped");
  await a.quiet();
});

Deno.test("chat: replies to a flood never outnumber the datagrams received", async (t) => {
  const clock = new FakeClock();
  await using server = await startServer(
    chatListener({ member_rate: "1/s", member_burst: 5, max_members: 1 }),
    { clock: clock.now },
  );
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await a.send("");

  await t.step("a member's errors are bounded by its rate", async () => {
    for (let i = 0; i < 50; i++) await a.send("/bogus");
    let replies = 0;
    while (await a.nextBytes(300) !== undefined) replies++;
    assertEquals(replies, 6); // five errors within the burst, then one rate notice
  });

  await t.step("refusals to strangers are bounded room-wide", async () => {
    const strangers = Array.from({ length: 30 }, () => new UdpPeer(port));
    try {
      for (const stranger of strangers) await stranger.send("hi");
      let refusals = 0;
      for (const stranger of strangers) {
        while (await stranger.nextBytes(refusals === 0 ? 1000 : 30) !== undefined) refusals++;
      }
      assertEquals(refusals, 10);
    } finally {
      for (const stranger of strangers) await stranger[Symbol.asyncDispose]();
    }
  });
});

Deno.test("chat: a /who reply to a datagram member is capped", async () => {
  await using server = await startServer(chatListener({ member_burst: 100 }));
  const port = server.port("chat");
  const peers = Array.from({ length: 40 }, () => new UdpPeer(port));
  try {
    for (const [index, peer] of peers.entries()) {
      await peer.send(`/nick member-with-a-long-name-${String(index).padStart(2, "0")}`);
    }
    const last = peers.at(-1)!;
    await new Promise((resolve) => setTimeout(resolve, 300));
    while (await last.nextBytes(50) !== undefined) { /* drain the announcements */ }
    await last.send("/who");
    const reply = await last.next();
    assertMatch(reply, /^\* members: member-with-a-long-name-00, .* \(\+\d+ more\)$/);
    assertEquals(enc.encode(reply).length <= 512, true);
  } finally {
    for (const peer of peers) await peer[Symbol.asyncDispose]();
  }
});

Deno.test("chat: IPv4-mapped and IPv6 members are named by their plain address", async () => {
  await using server = await startServer(
    '[[listener]]\nname = "chat"\nservice = "chat"\nlisten = ":0"\n',
  );
  const port = server.port("chat");
  await using v4 = new UdpPeer(port, "127.0.0.1");
  await using v6 = new UdpPeer(port, "::1");
  await v4.send("");
  await v6.send("hi");
  assertEquals(await v4.next(), `* [::1]:${v6.port} joined`);
  assertEquals(await v4.next(), `[[::1]:${v6.port}] hi`);
  await v4.send("hello");
  assertEquals(await v6.next(), `[127.0.0.1:${v4.port}] hello`);
});

Deno.test("chat append_newline ends each datagram of that listener with a newline", async () => {
  // Two UDP doors into one room: only the one with append_newline adds "\n".
  await using server = await startServer(
    chatListener({ room: "lobby", append_newline: true }, "nl") +
      chatListener({ room: "lobby" }, "plain"),
  );
  await using a = new UdpPeer(server.port("nl"));
  await using b = new UdpPeer(server.port("plain"));
  await a.send("/nick ana");
  // The two doors are two sockets read independently: ana is a member
  // before bob arrives only once the room has answered her.
  await a.send("/who");
  assertEquals(await a.next(), "* members: ana\n");
  await b.send("/nick bob");
  assertEquals(await a.next(), "* bob joined\n");
  await b.send("hi\n");
  assertEquals(await a.next(), "[bob] hi\n");
  await a.send("hello");
  assertEquals(await b.next(), "[ana] hello");
  await a.send("/who");
  assertEquals(await a.next(), "* members: ana, bob\n");
  await a.send("/nick bob");
  assertEquals(await a.next(), "error: name taken\n");
  await b.quiet();
});

Deno.test("chat append_newline is refused on a tcp listener", async () => {
  const { parseConfig, ConfigError } = await import("../lib/config.ts");
  const { SERVICES } = await import("../handlers/mod.ts");
  try {
    parseConfig(chatListener({ transport: "tcp", append_newline: true }), "t.toml", {
      services: SERVICES,
    });
    throw new Error("accepted");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assertMatch(error.problems[0]!.message, /^has no effect on a tcp listener/);
  }
});
