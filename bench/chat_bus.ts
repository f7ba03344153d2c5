/**
 * A chat room on one daemon against the same room spread over two daemons
 * on a NATS bus, measured in one run:
 *
 *   node_modules/.bin/deno run -A bench/chat_bus.ts [--seconds 10] [--members 8] [--rate 500]
 *
 * It starts a nats-server and `switchboard serve` subprocesses on loopback
 * (fresh ones for each case). MEMBERS TCP members join (alone: all on daemon
 * A; bus: half on A, half on B); member 0, on A, sends `<seq> <t>` messages.
 * Closed loop: at most 64 messages in flight (sent but not yet delivered to
 * every member), for SECONDS: deliveries/s. Paced: RATE messages/s for
 * SECONDS: delivery latency (send to receipt) p50/p99, over every member,
 * and separately over the members on daemon B. Every delivery is checked to
 * arrive exactly once and in order. Prints one table.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    members: { type: "string", default: "8" },
    rate: { type: "string", default: "500" },
  },
});
const SECONDS = Number(values.seconds);
const MEMBERS = Number(values.members);
const RATE = Number(values.rate);
const WINDOW = 64;
const ROOT = new URL("..", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function untilReachable(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error(`Nothing listens on ${port}`);
}

interface Process {
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

function spawn(program: string, args: string[]): Process {
  const child = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Gone.
        }
      }, 5000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

async function daemon(port: number, bus: string | undefined, dir: string): Promise<Process> {
  const path = `${dir}/d${port}.toml`;
  await Deno.writeTextFile(
    path,
    `[daemon]\nlog_level = "warn"\n\n[[listener]]\nservice = "chat"\ntransport = "tcp"\n` +
      `listen = "127.0.0.1:${port}"\nroom = "bench"\nmember_rate = "1000000/s"\n` +
      `member_burst = 1000000\nmember_queue = "64MiB"\nmax_members = 1000\n` +
      (bus ? `bus = "${bus}"\n` : ""),
  );
  const process = spawn(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, "serve", "-c", path]);
  await untilReachable(port);
  return process;
}

/** One member: reads lines and hands them to `onLine`. */
class Member {
  conn!: Deno.TcpConn;
  onLine: (line: string) => void = () => {};
  #loop?: Promise<void>;

  static async join(port: number): Promise<Member> {
    const member = new Member();
    member.conn = await Deno.connect({ hostname: "127.0.0.1", port });
    member.#loop = member.#read();
    return member;
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(65536);
    let pending = "";
    for (;;) {
      let n: number | null;
      try {
        n = await this.conn.read(buffer);
      } catch {
        return;
      }
      if (n === null) return;
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        this.onLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf("\n");
      }
    }
  }

  async send(text: string): Promise<void> {
    const bytes = encoder.encode(text + "\n");
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Closed.
    }
    await this.#loop;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

interface Result {
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
  farP50: number;
  farP99: number;
  errors: number;
}

async function runCase(bus: boolean, dir: string): Promise<Result> {
  const natsPort = freePort();
  const processes: Process[] = [];
  const members: Member[] = [];
  try {
    let url: string | undefined;
    if (bus) {
      processes.push(spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(natsPort)]));
      await untilReachable(natsPort);
      url = `nats://127.0.0.1:${natsPort}`;
    }
    const portA = freePort();
    processes.push(await daemon(portA, url, dir));
    let portB = portA;
    if (bus) {
      portB = freePort();
      processes.push(await daemon(portB, url, dir));
    }
    // Give the daemons time to link and hear each other.
    await new Promise((resolve) => setTimeout(resolve, bus ? 1500 : 100));
    for (let i = 0; i < MEMBERS; i++) {
      members.push(await Member.join(i < MEMBERS / 2 ? portA : portB));
      // Joins reach the other daemon before the next member joins.
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    const sender = members[0]!;
    await sender.send("/nick s");
    await new Promise((resolve) => setTimeout(resolve, 500));

    // Bookkeeping: per receiver, the next sequence number it must get.
    const receivers = members.slice(1);
    const far = new Set(receivers.filter((_, i) => i + 1 >= MEMBERS / 2));
    const expected = new Map<Member, number>();
    let errors = 0;
    let deliveries = 0;
    let recording = false;
    const latencies: number[] = [];
    const farLatencies: number[] = [];
    const delivered = new Map<number, number>();
    let completed = -1;
    let wake: (() => void) | undefined;
    let seq = 0;
    for (const member of receivers) {
      expected.set(member, -1);
      member.onLine = (line) => {
        const match = /^\[s\] (\d+) ([\d.]+)$/.exec(line);
        if (!match) return; // announcements
        const n = Number(match[1]);
        const want = expected.get(member)!;
        // The first message a member sees sets its start; then none may be missed or repeated.
        if (want !== -1 && n !== want) errors++;
        expected.set(member, n + 1);
        deliveries++;
        if (recording) {
          const latency = performance.now() - Number(match[2]);
          latencies.push(latency);
          if (far.has(member)) farLatencies.push(latency);
        }
        const count = (delivered.get(n) ?? 0) + 1;
        if (count === receivers.length) {
          delivered.delete(n);
          completed = Math.max(completed, n);
          wake?.();
        } else {
          delivered.set(n, count);
        }
      };
    }

    // Closed loop: deliveries/s.
    const start = performance.now();
    const end = start + SECONDS * 1000;
    const deliveriesBefore = deliveries;
    while (performance.now() < end) {
      while (seq - completed - 1 >= WINDOW) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
        wake = undefined;
      }
      const batch: string[] = [];
      while (seq - completed - 1 < WINDOW && batch.length < 16) {
        batch.push(`${seq++} ${performance.now().toFixed(3)}`);
      }
      await sender.send(batch.join("\n"));
    }
    const elapsed = (performance.now() - start) / 1000;
    const deliveriesPerSecond = (deliveries - deliveriesBefore) / elapsed;
    // Let the window drain.
    for (let i = 0; i < 50 && completed < seq - 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // Paced: latency at RATE messages/s.
    recording = true;
    const interval = 1000 / RATE;
    const paceStart = performance.now();
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = paceStart + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      await sender.send(`${seq++} ${performance.now().toFixed(3)}`);
    }
    for (let i = 0; i < 50 && completed < seq - 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (completed < seq - 1) errors += seq - 1 - completed;
    const sorted = Float64Array.from(latencies).sort();
    const farSorted = Float64Array.from(farLatencies).sort();
    return {
      deliveriesPerSecond,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      farP50: percentile(farSorted, 0.5),
      farP99: percentile(farSorted, 0.99),
      errors,
    };
  } finally {
    for (const member of members) await member.close();
    for (const process of processes.reverse()) await process.stop();
  }
}

const dir = await Deno.makeTempDir({ prefix: "switchboard-bench-bus-" });
try {
  const alone = await runCase(false, dir);
  const spread = await runCase(true, dir);
  const ms = (x: number) => `${(x * 1000).toFixed(0)} µs`;
  console.log(
    `chat room, ${MEMBERS} TCP members, closed loop (window ${WINDOW}) ${SECONDS}s, ` +
      `then ${RATE} msg/s for ${SECONDS}s`,
  );
  console.log("| case | deliveries/s | p50 | p99 | p50 / p99 on daemon B | errors |");
  console.log("|---|---|---|---|---|---|");
  console.log(
    `| one daemon | ${alone.deliveriesPerSecond.toFixed(0)} | ${ms(alone.p50)} | ` +
      `${ms(alone.p99)} | — | ${alone.errors} |`,
  );
  console.log(
    `| two daemons on NATS | ${spread.deliveriesPerSecond.toFixed(0)} | ${ms(spread.p50)} | ` +
      `${ms(spread.p99)} | ${ms(spread.farP50)} / ${ms(spread.farP99)} | ${spread.errors} |`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
