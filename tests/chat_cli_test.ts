import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { chatListener, FakeClock, UdpPeer } from "./_chat_peers.ts";
import {
  ROOT,
  runCli,
  startServer,
  switchboardCommand,
  switchboardShell,
  waitFor,
} from "./_helpers.ts";

Deno.test("chat --help prints the usage and exits 0", async () => {
  const result = await runCli(["chat", "--help"]);
  assertEquals(result.code, 0);
  assertMatch(result.stdout, /^Usage: switchboard chat ADDR \[--name NAME\] \[--tcp\]/);
});

Deno.test("chat without ADDR is a usage error", async () => {
  const result = await runCli(["chat"]);
  assertEquals(result.code, 64);
  assertMatch(result.stderr, /switchboard chat: missing ADDR/);
});

/** A room with a UDP and a TCP door, and ana in it (over UDP). */
interface AnasRoom extends AsyncDisposable {
  /** Ana. */
  a: UdpPeer;
  /** The client's command line joining as bob through the `transport` door. */
  bob(wait: string): string[];
}

async function anasRoom(transport: string): Promise<AnasRoom> {
  const server = await startServer(
    chatListener({ room: "r" }) + chatListener({ room: "r", transport: "tcp" }, "chat-tcp"),
  );
  const a = new UdpPeer(server.port("chat"));
  await a.send("/nick ana");
  const port = server.port(transport === "udp" ? "chat" : "chat-tcp");
  return {
    a,
    bob: (wait) => [
      "chat",
      `127.0.0.1:${port}`,
      "--name",
      "bob",
      "--wait",
      wait,
      ...(transport === "tcp" ? ["--tcp"] : []),
    ],
    async [Symbol.asyncDispose]() {
      await a[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
    },
  };
}

Deno.test("chat with piped input sends each line, shows replies, then leaves", async (t) => {
  for (const transport of ["udp", "tcp"]) {
    await t.step(transport, async () => {
      await using room = await anasRoom(transport);
      const { a } = room;
      await a.send("/who");
      assertEquals(await a.next(), "* members: ana");
      const running = runCli(room.bob("2s"), { stdin: "hello\n/nick bobby\nsecond\n" });
      if (transport === "udp") {
        // The first datagram is "/nick bob": it joins under that name.
        assertEquals(await a.next(), "* bob joined");
      } else {
        // A TCP member joins when it connects, then renames.
        assertMatch(await a.next(), /^\* 127\.0\.0\.1:\d+ joined$/);
        assertMatch(await a.next(), / is now bob$/);
      }
      assertEquals(await a.next(), "[bob] hello");
      assertEquals(await a.next(), "* bob is now bobby");
      assertEquals(await a.next(), "[bobby] second");
      await a.send("hi bob \x1b[31m");
      assertEquals(await a.next(5000), "* bobby left");
      const result = await running;
      assertEquals(result.code, 0, result.stderr);
      const lines = result.stdout.split("\n");
      assertEquals(lines.includes("* members: ana, bob"), true, result.stdout);
      // Piped output is raw: the bytes as they came.
      assertEquals(lines.includes("[ana] hi bob \x1b[31m"), true, result.stdout);
    });
  }
});

Deno.test("chat: a /leave line leaves the room and ends the client; later lines are not sent", async (t) => {
  for (const transport of ["udp", "tcp"]) {
    await t.step(transport, async () => {
      await using room = await anasRoom(transport);
      const { a } = room;
      // With --wait 60s the client would be killed after runCli's 20 s: /leave ends it at once.
      const result = await runCli(room.bob("60s"), { stdin: "before\n/leave\nafter\n" });
      assertEquals(result.code, 0, result.stderr);
      const heard: string[] = [];
      for (let line = await a.nextBytes(500); line; line = await a.nextBytes(500)) {
        heard.push(new TextDecoder().decode(line));
      }
      assertEquals(heard.includes("[bob] before"), true, heard.join("\n"));
      assertEquals(heard.at(-1), "* bob left", heard.join("\n"));
      assertEquals(heard.some((line) => line.includes("after")), false, heard.join("\n"));
      assertEquals(heard.filter((line) => line.endsWith(" joined")).length, 1, heard.join("\n"));
    });
  }
});

Deno.test("chat fails with a reason when no room answers", async () => {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  try {
    const result = await runCli(["chat", `127.0.0.1:${port}`, "--timeout", "200ms"], {
      stdin: "hello\n",
    });
    assertEquals(result.code, 1);
    assertMatch(
      result.stderr,
      /^switchboard chat: no answer from 127\.0\.0\.1:\d+\/udp within 200ms/,
    );
  } finally {
    socket.close();
  }
});

Deno.test("chat fails when the room is full", async () => {
  await using server = await startServer(chatListener({ max_members: 1 }));
  await using a = new UdpPeer(server.port("chat"));
  await a.send("");
  const result = await runCli(["chat", `127.0.0.1:${server.port("chat")}`], { stdin: "hi\n" });
  assertEquals(result.code, 1);
  assertMatch(result.stderr, /switchboard chat: the room at .* is full/);
  await a.quiet();
});

Deno.test("chat sends keep-alives while the user is silent", async () => {
  const clock = new FakeClock();
  await using server = await startServer(chatListener({ member_ttl: "1m" }), {
    clock: clock.now,
  });
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await a.send("");
  // stdin stays open with nothing typed: only keep-alives keep the client in.
  const chat = switchboardCommand(["chat", `127.0.0.1:${port}`, "--keepalive", "100ms"]);
  const command = new Deno.Command(chat.program, {
    args: chat.args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const output = child.output();
  try {
    const joined = await a.next(10_000);
    assertMatch(joined, /^\* 127\.0\.0\.1:\d+ joined$/);
    const name = joined.slice(2, -" joined".length);
    for (let i = 0; i < 3; i++) {
      clock.advance(40_000); // more than the TTL in all
      await a.send(""); // a keeps itself in too
      await new Promise((resolve) => setTimeout(resolve, 400)); // a few keep-alive periods
    }
    await a.send("/who");
    assertEquals(await a.next(), `* members: ${a.address}, ${name}`);
  } finally {
    await child.stdin.close();
    const result = await output;
    assertEquals(result.code, 0, new TextDecoder().decode(result.stderr));
  }
});

/** Runs a command in a pseudo-terminal (script(1)) with stdin fed by the test. */
class Terminal implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reading: Promise<void>;
  /** Everything the terminal showed so far. */
  screen = "";

  constructor(command: string) {
    this.#child = new Deno.Command("script", {
      args: ["-qfc", command, "/dev/null"],
      cwd: ROOT,
      env: { NO_COLOR: "1", TERM: "xterm" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const stdout = this.#child.stdout;
    this.#reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stdout) {
        this.screen += decoder.decode(chunk, { stream: true });
      }
    })();
  }

  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  async status(): Promise<Deno.CommandStatus> {
    const status = await this.#child.status;
    await this.#reading;
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#child.status;
    await this.#reading;
    await this.#child.stderr.cancel().catch(() => {});
  }
}

Deno.test("chat on a terminal shows messages while typing, escaped, and /leave ends it", async () => {
  await using server = await startServer(chatListener());
  const port = server.port("chat");
  await using a = new UdpPeer(port);
  await a.send("/nick ana");
  await a.send("/who");
  assertEquals(await a.next(), "* members: ana");
  await using terminal = new Terminal(
    switchboardShell(["chat", `127.0.0.1:${port}`, "--name", "pty"]),
  );
  assertEquals(await a.next(10_000), "* pty joined");
  await waitFor(() => terminal.screen.includes("* members: ana, pty"), 10_000);
  await terminal.type("hel"); // half a line typed when a message comes in
  await waitFor(() => terminal.screen.includes("hel"), 5000);
  await a.send("look \x1b[2J here");
  await waitFor(() => terminal.screen.includes("[ana] look \\x1b[2J here"), 5000);
  await terminal.type("lo\r");
  assertEquals(await a.next(), "[pty] hello");
  await terminal.type("/leave\r");
  assertEquals(await a.next(), "* pty left");
  const status = await terminal.status();
  assertEquals(status.code, 0, terminal.screen);
  await a.quiet(); // /leave was sent once, and nothing rejoined
  // The escape sequence from the network never reached the terminal raw.
  assertEquals(terminal.screen.includes("\x1b[2J"), false);
});
