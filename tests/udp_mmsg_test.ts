import assert from "node:assert/strict";
import { MmsgSocket, mmsgUnavailable, RECEIVE_BATCH } from "../lib/udp_mmsg.ts";
import { bindUdp } from "../lib/udp_listener.ts";
import { defineService, type Service } from "../lib/service.ts";
import { SERVICES } from "../handlers/mod.ts";
import {
  listenerToml,
  spawnDaemon,
  startServer,
  tempConfig,
  udpReceive,
  udpRequest,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Receives one batch (waiting for it), bounded by a timer. */
async function receiveSome(socket: MmsgSocket): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const received = socket.receive();
    const n = typeof received === "number" ? received : await received;
    if (n > 0) return n;
  }
  throw new Error("nothing received");
}

function bindOrSkip(hostname: string): MmsgSocket {
  const socket = MmsgSocket.bind({ hostname, port: 0 });
  assert.ok(socket, `FFI socket on ${hostname}: ${mmsgUnavailable() ?? "bind failed"}`);
  return socket;
}

Deno.test("under deno run the FFI socket is used, and SWITCHBOARD_UDP=portable turns it off", () => {
  assert.equal(mmsgUnavailable(), undefined);
  const fast = bindUdp({ hostname: "127.0.0.1", port: 0 });
  assert.ok(fast instanceof MmsgSocket);
  fast.close();
  Deno.env.set("SWITCHBOARD_UDP", "portable");
  try {
    assert.equal(mmsgUnavailable(), "SWITCHBOARD_UDP=portable");
    const portable = bindUdp({ hostname: "127.0.0.1", port: 0 });
    assert.ok(!(portable instanceof MmsgSocket));
    assert.equal((portable.addr as Deno.NetAddr).transport, "udp");
    portable.close();
  } finally {
    Deno.env.delete("SWITCHBOARD_UDP");
  }
});

Deno.test("a port in use fails as Deno.listenDatagram does", () => {
  const first = bindOrSkip("127.0.0.1");
  try {
    assert.throws(
      () => bindUdp({ hostname: "127.0.0.1", port: first.addr.port }),
      Deno.errors.AddrInUse,
    );
  } finally {
    first.close();
  }
});

Deno.test("reuseAddress lets two sockets share a port, on both paths", () => {
  for (const portable of [false, true]) {
    if (portable) Deno.env.set("SWITCHBOARD_UDP", "portable");
    try {
      const first = bindUdp({ hostname: "127.0.0.1", port: 0, reuseAddress: true });
      const port = (first.addr as Deno.NetAddr).port;
      const second = bindUdp({ hostname: "127.0.0.1", port, reuseAddress: true });
      assert.equal(first instanceof MmsgSocket, !portable);
      assert.equal((second.addr as Deno.NetAddr).port, port);
      second.close();
      first.close();
    } finally {
      Deno.env.delete("SWITCHBOARD_UDP");
    }
  }
});

Deno.test("sources read as Deno reads them: IPv4, IPv4-mapped on a dual-stack socket, IPv6", async () => {
  const pairs: [string, string, string][] = [
    ["127.0.0.1", "127.0.0.1", "127.0.0.1"],
    ["::", "127.0.0.1", "127.0.0.1"],
    ["::", "::1", "::1"],
    ["::1", "::1", "::1"],
  ];
  for (const [bind, client, target] of pairs) {
    const fast = bindOrSkip(bind);
    const deno = Deno.listenDatagram({ hostname: bind, port: 0, transport: "udp" });
    const peer = Deno.listenDatagram({ hostname: client, port: 0, transport: "udp" });
    try {
      const payload = encoder.encode(`from ${client} to ${bind}`);
      await peer.send(payload, { transport: "udp", hostname: target, port: fast.addr.port });
      await peer.send(payload, {
        transport: "udp",
        hostname: target,
        port: (deno.addr as Deno.NetAddr).port,
      });
      assert.equal(await receiveSome(fast), 1);
      const [, expected] = await deno.receive();
      assert.deepEqual(fast.from(0), expected, `${client} → ${bind}`);
      assert.deepEqual(fast.data(0), payload);
      assert.equal(fast.addr.hostname, (deno.addr as Deno.NetAddr).hostname);
      // A reply reaches the source, whichever family it is written in.
      await fast.send(encoder.encode("reply"), fast.from(0));
      fast.flush();
      assert.equal(decoder.decode((await udpReceive(peer, 2000))!), "reply");
    } finally {
      fast.close();
      deno.close();
      peer.close();
    }
  }
});

Deno.test("a batch larger than one recvmmsg, empty and 65,507-byte datagrams, replies in one flush", async () => {
  const fast = bindOrSkip("127.0.0.1");
  const peer = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: fast.addr.port };
    const count = RECEIVE_BATCH + 8;
    for (let i = 0; i < count; i++) await peer.send(encoder.encode(`${i}`), to);
    const seen: string[] = [];
    while (seen.length < count) {
      const n = await receiveSome(fast);
      const sends: Promise<number>[] = [];
      for (let i = 0; i < n; i++) {
        seen.push(decoder.decode(fast.data(i)));
        sends.push(fast.send(fast.data(i), fast.from(i)));
      }
      fast.flush();
      await Promise.all(sends);
      assert.ok(n <= RECEIVE_BATCH);
    }
    assert.deepEqual(seen, Array.from({ length: count }, (_, i) => `${i}`));
    for (let i = 0; i < count; i++) {
      assert.equal(decoder.decode((await udpReceive(peer, 2000))!), `${i}`);
    }
    for (const size of [0, 65_507]) {
      await peer.send(new Uint8Array(size).fill(0x61), to);
      assert.equal(await receiveSome(fast), 1);
      assert.equal(fast.data(0).length, size);
      const sent = fast.send(fast.data(0), fast.from(0));
      fast.flush();
      assert.equal(await sent, size);
      assert.equal((await udpReceive(peer, 2000))!.length, size);
    }
    assert.ok(fast.bytesOut >= 65_507);
    await fast.allSent();
  } finally {
    fast.close();
    peer.close();
  }
});

Deno.test("close wakes a receive waiting on the worker thread; later sends are refused", async () => {
  const fast = bindOrSkip("127.0.0.1");
  const waiting = fast.receive();
  assert.ok(waiting instanceof Promise);
  fast.close();
  await assert.rejects(waiting, Deno.errors.BadResource);
  assert.throws(() => fast.receive(), Deno.errors.BadResource);
  await assert.rejects(
    fast.send(encoder.encode("late"), { transport: "udp", hostname: "127.0.0.1", port: 9 }),
    Deno.errors.BadResource,
  );
  assert.throws(() => fast.close(), Deno.errors.BadResource);
});

Deno.test("a send that cannot be addressed rejects without stopping the others", async () => {
  const fast = bindOrSkip("127.0.0.1");
  const peer = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const bad = fast.send(encoder.encode("x"), { transport: "udp", hostname: "::1", port: 5 });
    const good = fast.send(encoder.encode("ok"), peer.addr as Deno.NetAddr);
    fast.flush();
    await assert.rejects(bad);
    assert.equal(await good, 2);
    assert.equal(decoder.decode((await udpReceive(peer, 2000))!), "ok");
  } finally {
    fast.close();
    peer.close();
  }
});

/**
 * A socket whose C calls are interposed: the first `fail` non-blocking
 * `sendmmsg` calls report EAGAIN, and each blocking `sendmmsg` (the drain)
 * waits for `release()` before it runs. Loopback UDP never reports EAGAIN
 * (the kernel frees a datagram's send buffer as it hands it over, and drops
 * what the receiver has no room for), so the backlog is reached this way.
 */
function stallingSocket(fail: number): {
  socket: MmsgSocket;
  drains: () => number;
  release: () => void;
} {
  let failed = false;
  let drains = 0;
  let gate = Promise.withResolvers<void>();
  const socket = MmsgSocket.bind({ hostname: "127.0.0.1", port: 0 }, (libc) => ({
    ...libc,
    errno: () => {
      if (!failed) return libc.errno();
      failed = false;
      return 11; // EAGAIN
    },
    symbols: {
      ...libc.symbols,
      sendmmsg: (fd, headers, count, flags) => {
        failed = fail > 0;
        if (fail-- > 0) return -1;
        return libc.symbols.sendmmsg(fd, headers, count, flags);
      },
      sendmmsg_wait: async (fd, headers, count, flags) => {
        drains++;
        await gate.promise;
        return await libc.symbols.sendmmsg_wait(fd, headers, count, flags);
      },
    },
  }));
  assert.ok(socket, `FFI socket: ${mmsgUnavailable() ?? "bind failed"}`);
  return {
    socket,
    drains: () => drains,
    release: () => {
      gate.resolve();
      gate = Promise.withResolvers<void>();
      gate.resolve();
    },
  };
}

Deno.test("a send the socket has no room for waits in the backlog and leaves in order; sends meanwhile join it", async () => {
  const { socket, drains, release } = stallingSocket(1);
  const peer = bindOrSkip("127.0.0.1");
  try {
    const to = peer.addr;
    const first = ["a", "b", "c"].map((text) => socket.send(encoder.encode(text), to));
    socket.flush(); // EAGAIN: all three go to the backlog, drained one by one
    assert.equal(drains(), 1, "the drain started");
    const during = ["d", "e"].map((text) => socket.send(encoder.encode(text), to));
    socket.flush(); // nothing queued: the drain owns the socket
    let allSent = false;
    const sent = socket.allSent().then(() => allSent = true);
    await Promise.resolve();
    assert.equal(allSent, false, "held by the drain");
    release();
    assert.deepEqual(await Promise.all([...first, ...during]), [1, 1, 1, 1, 1]);
    await sent;
    assert.equal(socket.bytesOut, 5);
    const got: string[] = [];
    for (let i = 0; i < 10 && got.length < 5; i++) {
      const n = await receiveSome(peer);
      for (let j = 0; j < n; j++) got.push(decoder.decode(peer.data(j)));
    }
    assert.deepEqual(got, ["a", "b", "c", "d", "e"]);
    // Drained: sends go by sendmmsg again.
    assert.equal(await socket.send(encoder.encode("f"), to), 1);
    assert.equal(drains(), 5);
  } finally {
    socket.close();
    peer.close();
  }
});

Deno.test("close during a drain refuses the backlog, settles allSent, and closes the descriptor after the drain", async () => {
  const { socket, release } = stallingSocket(1);
  const to = { transport: "udp", hostname: "127.0.0.1", port: 9 } as const;
  const backlog = ["a", "b", "c"].map((text) => socket.send(encoder.encode(text), to));
  socket.flush();
  const allSent = socket.allSent();
  socket.close();
  await assert.rejects(socket.send(encoder.encode("late"), to), Deno.errors.BadResource);
  // The datagram on the (stalled) worker thread finds the socket shut down.
  release();
  for (const send of backlog) await assert.rejects(send, Deno.errors.BadResource);
  await allSent;
  assert.equal(socket.bytesOut, 0);
  // The sanitizers check the rest: no library and no descriptor left open.
});

Deno.test("the backlog is bounded: beyond it a send rejects with WouldBlock", async () => {
  const { socket, release } = stallingSocket(1);
  const to = { transport: "udp", hostname: "127.0.0.1", port: 9 } as const;
  const byte = new Uint8Array(1);
  const sends: Promise<number>[] = [];
  try {
    sends.push(socket.send(byte, to));
    socket.flush(); // the drain takes this one to its worker thread
    for (let i = 0; i < 16384; i++) sends.push(socket.send(byte, to));
    await assert.rejects(socket.send(byte, to), Deno.errors.WouldBlock);
  } finally {
    socket.close();
    release();
    await Promise.allSettled(sends);
  }
});

for (const mode of ["ffi", "portable"]) {
  Deno.test(`the daemon serves UDP echo and chat on the ${mode} path, v4 and v6`, async () => {
    await using config = await tempConfig(
      listenerToml({ name: "e4", service: "echo", transport: "udp", listen: "127.0.0.1:0" }) +
        listenerToml({ name: "e6", service: "echo", transport: "udp", listen: "[::]:0" }) +
        listenerToml({ name: "c", service: "chat", transport: "udp", listen: "127.0.0.1:0" }),
    );
    await using daemon = await spawnDaemon(["-c", config.path], {
      env: mode === "portable" ? { SWITCHBOARD_UDP: "portable" } : {},
    });
    assert.equal(
      decoder.decode((await udpRequest(daemon.port("e4"), encoder.encode("four")))!),
      "four",
    );
    assert.equal(
      decoder.decode((await udpRequest(daemon.port("e6"), encoder.encode("mapped")))!),
      "mapped",
    );
    const six = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
    try {
      await six.send(encoder.encode("six"), {
        transport: "udp",
        hostname: "::1",
        port: daemon.port("e6"),
      });
      assert.equal(decoder.decode((await udpReceive(six, 2000))!), "six");
    } finally {
      six.close();
    }
    // A message to three members: one sendmmsg on the FFI path, three sends on the other.
    const members = [0, 1, 2, 3].map(() =>
      Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" })
    );
    try {
      const room = { transport: "udp" as const, hostname: "127.0.0.1", port: daemon.port("c") };
      for (const [i, member] of members.entries()) {
        await member.send(encoder.encode(`/nick m${i}`), room);
        // The others hear of the newcomer; drain those notices.
        for (const other of members.slice(0, i)) await udpReceive(other, 2000);
      }
      await members[0]!.send(encoder.encode("hello all"), room);
      for (const member of members.slice(1)) {
        assert.equal(decoder.decode((await udpReceive(member, 2000))!), "[m0] hello all");
      }
    } finally {
      for (const member of members) member.close();
    }
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.exit()).code, 0);
  });
}

// A handler that holds its datagram across an await: the listener must not
// receive into that buffer (or slot) until the handler's promise settles.
let gateOpen: () => void = () => {};
let gate = new Promise<void>((resolve) => gateOpen = resolve);
let called = 0;
const gated: Service = defineService<Record<string, never>>({
  name: "gated",
  transports: ["udp"],
  defaultPort: 1,
  parseOptions: () => ({}),
  open: (_options, listener) => ({
    datagram: async (data, from) => {
      called++;
      await gate;
      await listener.send(data, from);
    },
  }),
});

for (const mode of ["ffi", "portable"]) {
  Deno.test(`${mode} path: a datagram stays intact while its handler awaits`, async () => {
    called = 0;
    gate = new Promise<void>((resolve) => gateOpen = resolve);
    if (mode === "portable") Deno.env.set("SWITCHBOARD_UDP", "portable");
    const peer = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    try {
      await using server = await startServer(
        listenerToml({ name: "g", service: "gated", transport: "udp", listen: "127.0.0.1:0" }),
        { services: [...SERVICES, gated] },
      );
      Deno.env.delete("SWITCHBOARD_UDP");
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port("g") };
      const sent = ["first", "other", "third", "forth", "fifth", "sixth"];
      for (const text of sent) await peer.send(encoder.encode(text), to);
      for (let i = 0; i < 200 && called === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      gateOpen();
      const replies: string[] = [];
      for (let i = 0; i < sent.length; i++) {
        replies.push(decoder.decode((await udpReceive(peer, 2000))!));
      }
      assert.deepEqual(replies.sort(), [...sent].sort());
    } finally {
      Deno.env.delete("SWITCHBOARD_UDP");
      gateOpen();
      peer.close();
    }
  });
}
