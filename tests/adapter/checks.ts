/**
 * Checks of the self-contained executable's `Deno` adapter, run under bun by
 * `tests/deno_adapter_test.ts` (the adapter is for bun, so it is tested
 * there). Each check prints one JSON line `{ "name", "ok", "detail" }`.
 *
 * Usage: `bun tests/adapter/checks.ts UNIX_SOCKET_PATH`
 *
 * @module
 */

import process from "node:process";
import * as net from "node:net";
import { bridgeUncaughtErrors, createDeno } from "../../deploy/executable/deno_adapter.ts";

// The adapter is installed as the daemon gets it; `D` is the same object, typed.
const D = createDeno(process.argv.slice(3)) as unknown as typeof Deno;
(globalThis as { Deno?: unknown }).Deno = D;
bridgeUncaughtErrors();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function readAll(conn: { read(p: Uint8Array): Promise<number | null> }): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return text;
    text += decoder.decode(buffer.subarray(0, n));
  }
}

async function writeAll(conn: { write(p: Uint8Array): Promise<number> }, data: Uint8Array) {
  let rest = data;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}

/** Pids of the live (non-zombie) processes in process group `pgid`, from /proc. */
function liveMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of D.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = D.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // exited meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry.name));
  }
  return members;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const checks: Record<string, () => Promise<string>> = {
  async "tcp half-close both ways, nodelay and keepalive"() {
    const listener = await D.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const served = (async () => {
      const conn = await listener.accept();
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
      const got = await readAll(conn); // until the client's FIN
      await writeAll(conn, encoder.encode(`got ${got.length} bytes`));
      conn.close();
      return got;
    })();
    const client = await D.connect({ hostname: "127.0.0.1", port });
    const big = "x".repeat(1_000_000);
    await writeAll(client, encoder.encode(big));
    await client.closeWrite();
    const reply = await within(readAll(client), 5000, "reply after half-close");
    client.close();
    const got = await served;
    listener.close();
    if (got !== big) throw new Error(`server got ${got.length} bytes`);
    if (reply !== "got 1000000 bytes") throw new Error(`reply ${reply}`);
    return reply;
  },

  async "a closed listener ends accept with BadResource (and iteration), a bound port is AddrInUse"() {
    const listener = await D.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    let inUse = "";
    try {
      await D.listen({ hostname: "127.0.0.1", port });
    } catch (error) {
      inUse = error instanceof D.errors.AddrInUse ? (error as Error).message : String(error);
    }
    const accepting = listener.accept();
    listener.close();
    const error = await accepting.then(() => undefined, (e) => e);
    if (!(error instanceof D.errors.BadResource)) throw new Error(`accept: ${error}`);
    // Iterating a listener ends quietly once it is closed.
    const other = await D.listen({ hostname: "127.0.0.1", port: 0 });
    const iterating = (async () => {
      for await (const conn of other) conn.close();
      return "ended";
    })();
    other.close();
    if (await within(iterating, 2000, "iteration") !== "ended") throw new Error("iteration");
    if (!inUse.includes("(os error 98)")) throw new Error(`second bind: ${inUse}`);
    return inUse;
  },

  async "connection refused is ConnectionRefused with Deno's message"() {
    const listener = await D.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const error = await D.connect({ hostname: "127.0.0.1", port }).then(() => undefined, (e) => e);
    if (!(error instanceof D.errors.ConnectionRefused)) throw new Error(String(error));
    if ((error as Error).message !== "Connection refused (os error 111)") {
      throw new Error((error as Error).message);
    }
    return (error as Error).message;
  },

  async "two listeners share a port with reusePort, and both accept ([daemon] workers)"() {
    const first = await D.listen({ hostname: "127.0.0.1", port: 0, reusePort: true });
    const port = (first.addr as Deno.NetAddr).port;
    const second = await D.listen({ hostname: "127.0.0.1", port, reusePort: true });
    const counts = [0, 0];
    const serve = (listener: Deno.Listener, index: number) =>
      (async () => {
        for await (const conn of listener) {
          counts[index]!++;
          conn.close();
        }
      })();
    const serving = [serve(first, 0), serve(second, 1)];
    for (let i = 0; i < 200 && (counts[0] === 0 || counts[1] === 0); i++) {
      const client = await D.connect({ hostname: "127.0.0.1", port });
      await within(readAll(client), 2000, "close by the server");
      client.close();
    }
    first.close();
    second.close();
    await Promise.all(serving);
    if (counts[0] === 0 || counts[1] === 0) throw new Error(`accepted ${counts}`);
    return `accepted ${counts.join(" + ")} on port ${port}`;
  },

  async "udp carries 65,507-byte datagrams into a reused buffer"() {
    const server = await D.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const client = await D.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const payload = new Uint8Array(65_507).map((_, i) => i % 251);
    await client.send(payload, server.addr);
    const buffer = new Uint8Array(65_536);
    const [data, from] = await within(server.receive(buffer), 5000, "receive");
    await server.send(data, from);
    const [echoed] = await within(client.receive(), 5000, "echo");
    server.close();
    client.close();
    if (data.buffer !== buffer.buffer) throw new Error("not received into the given buffer");
    if (echoed.length !== 65_507 || echoed.some((b, i) => b !== i % 251)) {
      throw new Error(`echoed ${echoed.length} bytes`);
    }
    return `${echoed.length} bytes`;
  },

  async "unix datagrams reach a socket path (sd_notify)"() {
    const target = process.argv[2];
    if (!target) throw new Error("no socket path given");
    const socket = D.listenDatagram(
      {
        transport: "unixpacket",
        path: `\0switchboard-adapter-${process.pid}`,
      } as Deno.UnixListenOptions & { transport: "unixpacket" },
    );
    await socket.send(encoder.encode("READY=1\nSTATUS=adapter"), {
      transport: "unixpacket",
      path: target,
    });
    socket.close();
    return "sent";
  },

  async "Command: clearEnv, env, cwd, piped output, exit codes and signals"() {
    const output = await new D.Command("sh", {
      args: ["-c", 'echo "$ONLY $HOME" ; pwd; echo oops >&2; exit 3'],
      clearEnv: true,
      env: { ONLY: "yes", PATH: "/usr/bin:/bin" },
      cwd: "/tmp",
    }).output();
    const stdout = decoder.decode(output.stdout);
    if (stdout !== "yes \n/tmp\n" || decoder.decode(output.stderr) !== "oops\n") {
      throw new Error(`output ${JSON.stringify(stdout)}`);
    }
    if (output.code !== 3 || output.success) throw new Error(`code ${output.code}`);
    const child = new D.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
    child.kill("SIGKILL");
    const status = await child.status;
    if (status.signal !== "SIGKILL" || status.code !== 137) throw new Error(JSON.stringify(status));
    let missing = "";
    try {
      new D.Command("/nonexistent/program").spawn();
    } catch (error) {
      missing = error instanceof D.errors.NotFound ? "NotFound" : String(error);
    }
    if (missing !== "NotFound") throw new Error(`missing program: ${missing}`);
    return `code ${output.code}, ${status.signal}, ${missing}`;
  },

  async "Command stdin and stdout as byte streams (BYOB readers)"() {
    const child = new D.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode("through cat"));
    await writer.close();
    const reader = child.stdout.getReader({ mode: "byob" });
    let text = "";
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(64));
      if (done) break;
      text += decoder.decode(value);
    }
    const status = await child.status;
    if (text !== "through cat" || !status.success) throw new Error(text);
    return text;
  },

  async "detached children lead a process group that Deno.kill(-pgid) ends"() {
    const child = new D.Command("sh", {
      args: ["-c", "sleep 30 & sleep 30 & echo started; wait"],
      detached: true,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await within(reader.read(), 5000, "start");
    reader.releaseLock();
    D.kill(-child.pid, "SIGTERM");
    const status = await within(child.status, 5000, "group end");
    // Every member is gone (zombies waiting for a reaper do not count).
    let alive = liveMembers(child.pid);
    for (let i = 0; i < 100 && alive.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      alive = liveMembers(child.pid);
    }
    if (alive.length > 0) throw new Error(`group members still alive: ${alive.join(" ")}`);
    return `leader ${status.signal}`;
  },

  async "signal listeners are called and removed"() {
    let calls = 0;
    const handler = (): void => {
      calls++;
    };
    D.addSignalListener("SIGUSR2", handler);
    process.kill(process.pid, "SIGUSR2");
    await new Promise((resolve) => setTimeout(resolve, 100));
    D.removeSignalListener("SIGUSR2", handler);
    if (calls !== 1) throw new Error(`${calls} calls`);
    return "1 call";
  },

  async "files: positions, seeks, sync and async reads, Web streams, errors"() {
    const dir = await D.makeTempDir({ prefix: "adapter-" });
    const path = `${dir}/f.bin`;
    const file = await D.open(path, { write: true, read: true, createNew: true, mode: 0o600 });
    await writeAll(file, encoder.encode("hello world"));
    await file.seek(6, D.SeekMode.Start);
    const buffer = new Uint8Array(5);
    await file.read(buffer);
    file.seekSync(0, D.SeekMode.Start);
    const first = new Uint8Array(5);
    file.readSync(first);
    await file.syncData();
    const info = await file.stat();
    file.close();
    let exists = "";
    try {
      await D.open(path, { write: true, createNew: true });
    } catch (error) {
      exists = error instanceof D.errors.AlreadyExists ? "AlreadyExists" : String(error);
    }
    let text = "";
    const streamed = await D.open(path);
    for await (const chunk of streamed.readable) text += decoder.decode(chunk);
    let missing = "";
    try {
      D.statSync(`${dir}/nope`);
    } catch (error) {
      missing = error instanceof D.errors.NotFound ? (error as Error).message : String(error);
    }
    await D.remove(dir, { recursive: true });
    const got = `${decoder.decode(buffer)} ${decoder.decode(first)} ${info.size}`;
    if (got !== "world hello 11" || text !== "hello world" || exists !== "AlreadyExists") {
      throw new Error(`${got} / ${text} / ${exists}`);
    }
    if (!missing.startsWith("No such file or directory (os error 2)")) throw new Error(missing);
    return `${got}; ${missing}`;
  },

  async "Deno.serve answers over HTTP and shuts down"() {
    const controller = new AbortController();
    const server = D.serve(
      { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
      (request) => new Response(`path ${new URL(request.url).pathname}`),
    );
    const body = await (await fetch(`http://127.0.0.1:${server.addr.port}/metrics`)).text();
    controller.abort();
    await within(server.finished, 5000, "shutdown");
    if (body !== "path /metrics") throw new Error(body);
    return body;
  },

  async "an uncaught error is an error event on globalThis that may be cancelled"() {
    let seen = "";
    const listener = (event: ErrorEvent): void => {
      seen = (event.error as { code?: string })?.code ?? String(event.error);
      event.preventDefault();
    };
    globalThis.addEventListener("error", listener);
    const server = net.createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect(port, "127.0.0.1", () => {
      client.removeAllListeners(); // as a library that let go too early
      client.write("x");
    });
    for (let i = 0; i < 100 && !seen; i++) await new Promise((r) => setTimeout(r, 10));
    globalThis.removeEventListener("error", listener);
    server.close();
    if (seen !== "ECONNRESET") throw new Error(`saw ${seen || "nothing"}`);
    return "ECONNRESET cancelled, still running";
  },

  "dlopen calls libc with Deno's type names"() {
    const libc = D.dlopen("libc.so.6", {
      getpid: { parameters: [], result: "i32" },
      strlen: { parameters: ["buffer"], result: "usize" },
    });
    const pid = libc.symbols.getpid();
    const length = Number(libc.symbols.strlen(encoder.encode("seven!!\0")));
    libc.close();
    if (pid !== process.pid || length !== 7) throw new Error(`pid ${pid}, strlen ${length}`);
    return Promise.resolve(`getpid ${pid}, strlen 7`);
  },

  "process facts: execPath, pid, env, args"() {
    if (!D.execPath().startsWith("/")) throw new Error(D.execPath());
    if (D.pid !== process.pid) throw new Error("pid");
    D.env.set("ADAPTER_CHECK", "1");
    if (D.env.get("ADAPTER_CHECK") !== "1") throw new Error("env");
    return Promise.resolve(D.execPath());
  },
};

const only = process.env.ADAPTER_CHECK_ONLY;
for (const [name, check] of Object.entries(checks)) {
  if (only && !name.includes(only)) continue;
  try {
    const detail = await within(check(), 20_000, name);
    console.log(JSON.stringify({ name, ok: true, detail }));
  } catch (error) {
    console.log(
      JSON.stringify({ name, ok: false, detail: String((error as Error)?.stack ?? error) }),
    );
  }
}
process.exit(0);
