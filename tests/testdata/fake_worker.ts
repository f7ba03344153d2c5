// A stand-in worker for tests/worker_pool_test.ts: speaks the worker
// channel (JSON lines on stdin/stdout) and misbehaves as asked.
//   late-revoke          leases every slot of listener "x" (max 8), asks once
//                        more, and answers the revoke that follows late
//                        (after the pool stopped waiting)
//   hang-on-restart PATH applies the first config, then exits; started again
//                        (PATH exists), never answers the config
// Every mode obeys "stop" at once.

type Message = Record<string, unknown>;

const LATE_MS = 3_000;
const [mode, marker] = Deno.args;
const encoder = new TextEncoder();
const writer = Deno.stdout.writable.getWriter();
const waiting = new Map<number, (m: Message) => void>();
let nextId = 1_000_000;
let granted = 0;

function send(message: Message): void {
  void writer.write(encoder.encode(JSON.stringify(message) + "\n"));
}

function request(message: Message): Promise<Message> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    send({ ...message, id });
  });
}

async function leaseEverything(): Promise<void> {
  const ask = { op: "lease", kind: "connections", listener: "x", max: 8, want: 16 };
  for (let i = 0; i < 16 && granted < 8; i++) {
    const answer = await request(ask);
    if (answer.ok !== true) break;
    granted += Number(answer.granted);
  }
  // None left: the pool revokes our spare slots before it answers.
  await request(ask);
}

function apply(message: Message): void {
  if (mode === "hang-on-restart") {
    try {
      Deno.statSync(marker!);
      return; // Started again: hangs.
    } catch {
      Deno.writeTextFileSync(marker!, "");
    }
    send({ ok: true, re: message.id, listeners: [] });
    setTimeout(() => Deno.exit(3), 10);
    return;
  }
  send({ ok: true, re: message.id, listeners: [] });
  if (mode === "late-revoke") void leaseEverything();
}

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
    const message = JSON.parse(pending.slice(0, newline)) as Message;
    pending = pending.slice(newline + 1);
    if (typeof message.re === "number") {
      waiting.get(message.re)?.(message);
      waiting.delete(message.re);
    } else if (message.op === "apply") {
      apply(message);
    } else if (message.op === "revoke") {
      const returned = granted;
      granted = 0;
      setTimeout(() => send({ ok: true, returned, re: message.id }), LATE_MS);
    } else if (message.op === "stop") {
      Deno.exit(0);
    } else if (typeof message.id === "number") {
      send({ ok: true, re: message.id, listeners: [] });
    }
  }
}
