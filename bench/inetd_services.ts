/**
 * A few seconds of figures for the inetd-style services, in-process on
 * loopback: redirect's throughput (client → redirect → discard), how much a
 * redirect reads from a client while its target does not read (the
 * back-pressure bound), and exec's cost per connection (`cat`, one byte,
 * one connection after another) beside a bare `setsid -- true` spawn.
 *
 * usage: deno run -A bench/inetd_services.ts [MIB]
 *
 * @module
 */

import { listenerToml, readToEnd, startServer, waitForStall } from "../tests/_helpers.ts";
import { groupStrategy, ProcessGroup } from "../lib/process_group.ts";
import { writeAll } from "../lib/write_all.ts";

const mib = Number(Deno.args[0] ?? 512);

async function redirectThroughput(): Promise<void> {
  await using sink = await startServer(
    listenerToml({ name: "sink", service: "discard", listen: "127.0.0.1:0" }),
  );
  await using relay = await startServer(
    listenerToml({
      name: "r",
      service: "redirect",
      listen: "127.0.0.1:0",
      target: `127.0.0.1:${sink.port("sink")}`,
    }),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port("r") });
  const chunk = new Uint8Array(1 << 20);
  const started = performance.now();
  for (let i = 0; i < mib; i++) await writeAll(conn, chunk);
  await conn.closeWrite();
  await readToEnd(conn, 120_000);
  const ms = performance.now() - started;
  console.log(
    `redirect to discard: ${mib} MiB in ${ms.toFixed(0)} ms = ${
      (mib / (ms / 1000)).toFixed(0)
    } MiB/s`,
  );
}

async function backPressureBound(): Promise<void> {
  const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = target.accept();
  try {
    await using relay = await startServer(
      listenerToml({
        name: "r",
        service: "redirect",
        listen: "127.0.0.1:0",
        target: `127.0.0.1:${target.addr.port}`,
      }),
    );
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port("r") });
    const sending = writeAll(conn, new Uint8Array(256 << 20)).catch(() => {});
    const taken = await waitForStall(() => relay.supervisor.listeners[0]!.stats.bytesIn);
    console.log(
      `redirect, target not reading: the daemon read ${taken} bytes of 256 MiB, then waited`,
    );
    conn.close();
    await sending;
  } finally {
    (await accepted).close();
    target.close();
  }
}

async function execPerConnection(): Promise<void> {
  await using exec = await startServer(
    listenerToml({ name: "x", service: "exec", listen: "127.0.0.1:0", argv: ["cat"] }),
  );
  const count = 200;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: exec.port("x") });
    await conn.write(new Uint8Array([65]));
    await conn.closeWrite();
    await readToEnd(conn);
  }
  const ms = (performance.now() - started) / count;
  const spawnStarted = performance.now();
  for (let i = 0; i < 50; i++) {
    const group = ProcessGroup.spawn("true", {
      args: [],
      cwd: "/",
      env: { PATH: "/usr/bin:/bin" },
      stdin: "null",
    });
    group.stdout.cancel();
    group.stderr?.cancel();
    await group.status;
  }
  const spawnMs = (performance.now() - spawnStarted) / 50;
  console.log(
    `exec cat: ${ms.toFixed(2)} ms per connection (${(1000 / ms).toFixed(0)}/s, one at a time); ` +
      `a bare group spawn of true (${groupStrategy()}): ${spawnMs.toFixed(2)} ms`,
  );
}

if (import.meta.main) {
  await redirectThroughput();
  await backPressureBound();
  await execPerConnection();
}
