/**
 * The plainest Deno TCP echo server: a `conn.read`/`conn.write` loop per
 * connection, no supervisor, no counting. bench/run runs it (as
 * `deno_bare`) to show how much of switchboard's cost is Deno itself.
 *
 * usage: deno run -A bench/deno_echo_bare.ts PORT [BUFFER_BYTES]
 *
 * @module
 */

async function echo(conn: Deno.TcpConn, size: number): Promise<void> {
  const buffer = new Uint8Array(size);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await conn.write(buffer.subarray(off, n));
    }
  } catch {
    // The peer went away.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  const size = Number(Deno.args[1] ?? 65536);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch {
      continue;
    }
    conn.setNoDelay(true);
    void echo(conn, size);
  }
}
