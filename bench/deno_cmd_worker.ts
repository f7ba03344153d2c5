/**
 * An experiment: bench/deno_cmd_bare.ts with the spawning moved to a worker
 * thread, to see whether taking Deno's blocking spawn off the thread that
 * serves sockets pays. Per connection the main thread asks the worker to
 * spawn `/bin/sh -c true` (through setsid(1) with --setsid); the worker
 * relays the output (transferred) and the exit, the main thread writes and
 * closes. Results in bench/history/cmd.md ("Tried and dropped").
 *
 *   deno run -A bench/deno_cmd_worker.ts PORT [--setsid]
 *
 * @module
 */

/** What the worker sends back. */
type Reply = { id: number; type: "out"; chunk: Uint8Array } | { id: number; type: "exit" };

const port = Number(Deno.args[0] ?? 17111);
const viaSetsid = Deno.args.includes("--setsid");
const worker = new Worker(new URL("./deno_cmd_worker_spawner.ts", import.meta.url), {
  type: "module",
});
const connections = new Map<number, Deno.Conn>();
const writes = new Map<number, Promise<unknown>>();

worker.onmessage = (event: MessageEvent<Reply>) => {
  const reply = event.data;
  const conn = connections.get(reply.id);
  if (!conn) return;
  const before = writes.get(reply.id) ?? Promise.resolve();
  if (reply.type === "out") {
    writes.set(reply.id, before.then(() => conn.write(reply.chunk)).catch(() => {}));
  } else {
    connections.delete(reply.id);
    writes.delete(reply.id);
    before.finally(() => conn.close());
  }
};

let nextId = 0;
for await (const conn of Deno.listen({ hostname: "127.0.0.1", port })) {
  const id = nextId++;
  connections.set(id, conn);
  worker.postMessage({ id, setsid: viaSetsid });
}
