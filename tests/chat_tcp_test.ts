import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { chatListener, FakeClock, tcpPair, TcpPeer, UdpPeer } from "./_chat_peers.ts";
import { startServer } from "./_helpers.ts";
import { parseConfig } from "../lib/config.ts";
import { SERVICES } from "../handlers/mod.ts";
import { SharedState } from "../lib/shared_state.ts";

const enc = new TextEncoder();

function tcpChat(fields: Record<string, unknown> = {}, name = "chat"): string {
  return chatListener({ transport: "tcp", ...fields }, name);
}

Deno.test("chat over TCP: members exchange lines with the same server lines", async () => {
  await using server = await startServer(tcpChat());
  const port = server.port("chat");
  await using a = await TcpPeer.connect(port);
  await a.send("/who");
  assertEquals(await a.next(), `* members: ${a.address}`);
  await using b = await TcpPeer.connect(port);
  assertEquals(await a.next(), `* ${b.address} joined`);
  await b.send("hello\r"); // a CRLF line
  assertEquals(await a.next(), `[${b.address}] hello`);
  await b.send("/nick bob");
  assertEquals(await a.next(), `* ${b.address} is now bob`);
  await b.write(enc.encode("two\nlines\n"));
  assertEquals(await a.next(), "[bob] two");
  assertEquals(await a.next(), "[bob] lines");
  await b.send(""); // an empty line is a keep-alive
  await b.quiet();
  await a.quiet();
});

Deno.test("chat over TCP: UTF-8 split across writes and invalid bytes pass untouched", async () => {
  await using pair = await tcpPair(tcpChat());
  const { a, b } = pair;
  const text = enc.encode("日本語 ✓");
  await b.write(text.subarray(0, 2));
  await new Promise((resolve) => setTimeout(resolve, 20));
  await b.write(text.subarray(2));
  await b.write(new Uint8Array([0x20, 0xff, 0xc3, 0x0a]));
  assertEquals(
    await a.nextBytes(),
    new Uint8Array([...enc.encode(`[${b.address}] 日本語 ✓`), 0x20, 0xff, 0xc3]),
  );
});

Deno.test("chat over TCP: a line over max_message is refused and skipped to its newline", async () => {
  await using pair = await tcpPair(tcpChat({ max_message: 10 }));
  const { a, b } = pair;
  await b.write(enc.encode("x".repeat(25)));
  await new Promise((resolve) => setTimeout(resolve, 20));
  await b.write(enc.encode("y".repeat(5000) + "\nok\n0123456789\r\n"));
  assertMatch(await b.next(), /^error: message too long \(over \d+ bytes, limit 10\); not sent$/);
  assertEquals(await a.next(), `[${b.address}] ok`);
  assertEquals(await a.next(), `[${b.address}] 0123456789`);
  await b.quiet();
});

Deno.test("chat over TCP: a last line without a newline is relayed at end of stream", async () => {
  await using server = await startServer(tcpChat());
  const port = server.port("chat");
  await using a = await TcpPeer.connect(port);
  await a.send("/who");
  await a.next();
  const b = await TcpPeer.connect(port);
  assertEquals(await a.next(), `* ${b.address} joined`);
  await b.write(enc.encode("bye"));
  await b.conn.closeWrite();
  assertEquals(await a.next(), `[${b.address}] bye`);
  assertEquals(await a.next(), `* ${b.address} left`);
  await b.ended;
  await b[Symbol.asyncDispose]();
});

Deno.test("chat over TCP: /leave and a closed connection are announced", async () => {
  await using pair = await tcpPair(tcpChat());
  const { port, a, b } = pair;
  await b.send("/leave");
  assertEquals(await a.next(), `* ${b.address} left`);
  await b.ended; // the server closes the connection
  const c = await TcpPeer.connect(port);
  assertEquals(await a.next(), `* ${c.address} joined`);
  await c[Symbol.asyncDispose]();
  assertEquals(await a.next(), `* ${c.address} left`);
});

Deno.test("chat over TCP: a newcomer beyond max_members gets 'room full' and is closed", async () => {
  await using server = await startServer(tcpChat({ max_members: 1 }));
  const port = server.port("chat");
  await using a = await TcpPeer.connect(port);
  await a.send("/who");
  await a.next();
  await using b = await TcpPeer.connect(port);
  assertEquals(await b.next(), "error: room full");
  await b.ended;
  await a.quiet();
});

Deno.test("chat over TCP: a member that never reads is dropped; the others keep receiving", async () => {
  await using server = await startServer(
    tcpChat({ member_queue: "64KiB", member_rate: "1000000/s", member_burst: 1_000_000 }),
  );
  const port = server.port("chat");
  await using fast = await TcpPeer.connect(port);
  await fast.send("/nick fast");
  await fast.send("/who");
  assertEquals(await fast.next(), "* members: fast");
  await using slow = await TcpPeer.connect(port, { read: false });
  await slow.send("/nick slow");
  assertEquals(await fast.next(), `* ${slow.address} joined`);
  assertEquals(await fast.next(), `* ${slow.address} is now slow`);
  await using sender = await TcpPeer.connect(port);
  await sender.send("/nick sender");
  assertEquals(await fast.next(), `* ${sender.address} joined`);
  assertEquals(await fast.next(), `* ${sender.address} is now sender`);

  // Far more than the kernel's socket buffers and the queue can hold, sent
  // in batches the fast member takes in before the next one.
  const line = "x".repeat(1000);
  const batch = 32;
  const batches = 1000;
  const payload = enc.encode(`${line}\n`.repeat(batch));
  let relayed = 0;
  let dropped = false;
  for (let i = 0; i < batches; i++) {
    await sender.write(payload);
    for (let got = 0; got < batch;) {
      const text = await fast.next(10_000);
      if (text === "* slow left (too slow)") dropped = true;
      else if (text === `[sender] ${line}`) got++;
      else throw new Error(`unexpected line ${JSON.stringify(text.slice(0, 80))}`);
    }
    relayed += batch;
  }
  assertEquals(dropped, true);
  assertEquals(relayed, batch * batches);
  // The slow member's connection was closed: draining it reaches end of stream.
  const buffer = new Uint8Array(1 << 16);
  while (await slow.conn.read(buffer) !== null) { /* drain */ }
});

Deno.test("chat: a UDP member and a TCP member share a room", async () => {
  await using server = await startServer(
    chatListener({ room: "lobby" }, "chat-udp") +
      chatListener({ room: "lobby", transport: "tcp" }, "chat-tcp") +
      chatListener({}, "elsewhere"),
  );
  await using udp = new UdpPeer(server.port("chat-udp"));
  await udp.send("/nick u");
  await udp.send("/who");
  assertEquals(await udp.next(), "* members: u");
  await using tcp = await TcpPeer.connect(server.port("chat-tcp"));
  assertEquals(await udp.next(), `* ${tcp.address} joined`);
  await tcp.send("/nick t");
  assertEquals(await udp.next(), `* ${tcp.address} is now t`);
  await udp.send("from udp\n");
  assertEquals(await tcp.next(), "[u] from udp");
  await tcp.send("from tcp");
  assertEquals(await udp.next(), "[t] from tcp");
  // A datagram's inner newlines cannot forge lines for TCP members.
  await udp.send("one\n* t left\n[t] forged");
  assertEquals(await tcp.next(), "[u] one");
  assertEquals(await tcp.next(), "  * t left");
  assertEquals(await tcp.next(), "  [t] forged");
  await tcp.send("/who");
  assertEquals(await tcp.next(), "* members: u, t");
  // A listener with another room hears nothing.
  await using other = new UdpPeer(server.port("elsewhere"));
  await other.send("/who");
  assertEquals(await other.next(), `* members: ${other.address}`);
  await udp.quiet();
});

Deno.test("chat over TCP: a silent member expires and is disconnected", async () => {
  const clock = new FakeClock();
  await using server = await startServer(tcpChat({ member_ttl: "1m" }), { clock: clock.now });
  const port = server.port("chat");
  await using a = await TcpPeer.connect(port);
  await a.send("/who");
  await a.next();
  await using b = await TcpPeer.connect(port);
  assertEquals(await a.next(), `* ${b.address} joined`);
  clock.advance(30_000);
  await a.send("/who"); // a lives until 90s; b until 60s
  await a.next();
  clock.advance(31_000);
  assertEquals(await a.next(5000), `* ${b.address} left (timeout)`);
  await b.ended;
});

Deno.test("chat: shutdown closes TCP members", async () => {
  const server = await startServer(tcpChat());
  const port = server.port("chat");
  await using a = await TcpPeer.connect(port);
  await a.send("/who");
  await a.next();
  await server[Symbol.asyncDispose]();
  await a.ended;
});

Deno.test("chat: a reload that keeps the listener keeps its members and applies new limits", async () => {
  await using server = await startServer(chatListener({ room: "r" }) + tcpChat({ room: "r" }, "t"));
  await using c = await TcpPeer.connect(server.port("t"));
  await c.send("/who");
  assertEquals(await c.next(), `* members: ${c.address}`);
  await using a = new UdpPeer(server.port("chat"));
  await using b = new UdpPeer(server.port("chat"));
  await a.send("");
  assertEquals(await c.next(), `* ${a.address} joined`);
  await b.send("");
  assertEquals(await a.next(), `* ${b.address} joined`);
  assertEquals(await c.next(), `* ${b.address} joined`);
  const reloaded = parseConfig(
    chatListener({ room: "r", max_message: 5 }) + tcpChat({ room: "r" }, "t"),
    "test.toml",
    { services: SERVICES },
  );
  const summary = await server.supervisor.apply(reloaded);
  assertEquals(summary.changed, ["chat"]);
  await b.send("123456");
  assertEquals(await b.next(), "error: message too long (6 bytes, limit 5); not sent");
  await b.send("12345");
  assertEquals(await a.next(), `[${b.address}] 12345`); // no new join: still a member
  assertEquals(await c.next(), `[${b.address}] 12345`);

  // Removing the UDP listener removes its members from the room the TCP one keeps.
  await server.supervisor.apply(
    parseConfig(tcpChat({ room: "r" }, "t"), "test.toml", { services: SERVICES }),
  );
  const left = [await c.next(), await c.next()].sort();
  assertEquals(left, [`* ${a.address} left`, `* ${b.address} left`].sort());
  await c.send("/who");
  assertEquals(await c.next(), `* members: ${c.address}`);
});

Deno.test("chat: the room is shared while any listener uses it and removed after", async () => {
  const { chatService } = await import("../handlers/chat/mod.ts");
  const { Logger } = await import("../lib/log.ts");
  const { LinkBoard } = await import("../lib/link_board.ts");
  const shared = new SharedState();
  const links = new LinkBoard();
  const context = (name: string, port: number) => ({
    name,
    transport: "udp" as const,
    addr: { transport: "udp" as const, hostname: "127.0.0.1", port },
    log: new Logger({ sink: () => {} }),
    signal: new AbortController().signal,
    shared,
    links,
    now: () => 0,
    send: () => Promise.resolve(),
  });
  const config = parseConfig(chatListener({ room: "x" }), "test.toml", { services: SERVICES });
  const options = config.listeners[0]!.options;
  const first = await chatService.open(options, context("one", 1));
  const second = await chatService.open(options, context("two", 2));
  assertEquals(shared.keys(), ["chat:room:x"]);
  await first.close?.();
  assertEquals(shared.keys(), ["chat:room:x"]);
  await first.close?.(); // closing twice releases once
  assertEquals(shared.keys(), ["chat:room:x"]);
  await second.close?.();
  assertEquals(shared.keys(), []);
});

Deno.test("chat over TCP: the lines of one read reach each member in one write of shared bytes", async () => {
  const { ChatRoom } = await import("../handlers/chat/room.ts");
  const { serveChatConnection } = await import("../handlers/chat/tcp.ts");
  const { MeteredConn } = await import("../lib/metered_conn.ts");
  const { Logger } = await import("../lib/log.ts");
  const { waitFor } = await import("./_helpers.ts");
  // The server side of each member: real sockets, with every write recorded.
  class RecordingConn extends MeteredConn {
    writes: Uint8Array[] = [];
    /** Bytes the first read waits for, so the four lines arrive as one read. */
    fill = 0;
    override async read(p: Uint8Array): Promise<number | null> {
      let got = 0;
      do {
        const n = await super.read(p.subarray(got));
        if (n === null) return got > 0 ? got : null;
        got += n;
      } while (got < this.fill);
      this.fill = 0;
      return got;
    }
    override writeAll(p: Uint8Array): Promise<void> {
      this.writes.push(p);
      return super.writeAll(p);
    }
    override writeNow(p: Uint8Array): number {
      const sent = super.writeNow(p);
      if (sent > 0) this.writes.push(p);
      return sent;
    }
  }
  const log = new Logger({ sink: () => {} });
  const room = new ChatRoom({ name: "t", now: () => performance.now(), log });
  const limits = {
    maxMessage: 1000,
    rate: { count: 1000, perMs: 1000 },
    burst: 1000,
    ttlMs: 60_000,
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const controller = new AbortController();
  const members: { client: Deno.TcpConn; server: RecordingConn; served: Promise<void> }[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const accepted = await listener.accept();
    const server = new RecordingConn(accepted, accepted.remoteAddr, { direct: true });
    if (i === 2) server.fill = 8;
    const served = serveChatConnection(server, {
      signal: controller.signal,
      log,
      peer: "p",
      setBusy: () => {},
      note: () => {},
      closing: controller.signal,
      setHeaderPending: () => {},
    }, { room, limits, maxMembers: 10, maxQueue: 1 << 20 });
    members.push({ client, server, served });
  }
  const [first, second, sender] = members as [
    typeof members[0],
    typeof members[0],
    typeof members[0],
  ];
  // Join lines: the first member hears two, the second one.
  await waitFor(() => first.server.writes.length + second.server.writes.length >= 2);
  await waitFor(() => room.size === 3);
  await new Promise((resolve) => setTimeout(resolve, 20));
  first.server.writes = [];
  second.server.writes = [];
  await sender.client.write(enc.encode("a\nb\nc\nd\n"));
  const name = `127.0.0.1:${sender.client.localAddr.port}`;
  const expected = ["a", "b", "c", "d"].map((text) => `[${name}] ${text}\n`).join("");
  await waitFor(() => first.server.writes.length > 0 && second.server.writes.length > 0);
  const dec = new TextDecoder();
  assertEquals(first.server.writes.map((w) => dec.decode(w)), [expected]);
  assertEquals(second.server.writes.map((w) => dec.decode(w)), [expected]);
  // Joined once for both.
  assertEquals(first.server.writes[0] === second.server.writes[0], true);
  for (const { client } of members) client.close();
  await Promise.all(members.map((m) => m.served));
  for (const { server } of members) server.close();
  room.close();
  listener.close();
});
