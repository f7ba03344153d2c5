/**
 * The floor for a Deno remote-command server: per connection, spawn
 * `/bin/sh -c true` with piped output, drain it, wait, close. No protocol,
 * no limits, no process group unless --setsid (then through setsid(1)).
 *
 *   deno run -A bench/deno_cmd_bare.ts PORT [--setsid]
 *
 * @module
 */

import { spawnTrue } from "./spawn_true.ts";

const port = Number(Deno.args[0] ?? 17110);
const viaSetsid = Deno.args.includes("--setsid");
const listener = Deno.listen({ hostname: "127.0.0.1", port });

async function drain(stream: ReadableStream<Uint8Array>, conn: Deno.Conn): Promise<void> {
  for await (const chunk of stream) await conn.write(chunk);
}

async function serve(conn: Deno.Conn): Promise<void> {
  try {
    const child = spawnTrue(viaSetsid);
    await Promise.all([drain(child.stdout, conn), drain(child.stderr, conn), child.status]);
  } finally {
    conn.close();
  }
}

for await (const conn of listener) serve(conn).catch(() => {});
