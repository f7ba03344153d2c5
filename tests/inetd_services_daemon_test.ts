/**
 * The inetd-style services end to end: `switchboard serve` as a subprocess,
 * ncat as the client, as a user replacing xinetd would try them.
 */

import assert from "node:assert/strict";
import { writeAll } from "../lib/write_all.ts";
import { listenerToml, readBytes, readToEnd, spawnDaemon, tempConfig } from "./_helpers.ts";

const decoder = new TextDecoder();

/** Runs `sh -c script` (for ncat pipelines) and returns its stdout. */
async function shell(script: string): Promise<string> {
  const output = await new Deno.Command("/bin/sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return decoder.decode(output.stdout);
}

Deno.test("exec, redirect, chargen and discard served by the daemon, with banner and ncat clients", async () => {
  // The redirect target: a one-shot upper-casing echo in this process.
  const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    using peer = await target.accept();
    const text = decoder.decode(await readToEnd(peer));
    await writeAll(peer, new TextEncoder().encode(text.toUpperCase()));
    await peer.closeWrite();
  })();
  await using config = await tempConfig(
    listenerToml({ name: "sort", service: "exec", listen: "127.0.0.1:0", argv: ["sort"] }) +
      listenerToml({
        name: "relay",
        service: "redirect",
        listen: "127.0.0.1:0",
        target: `127.0.0.1:${target.addr.port}`,
      }) +
      listenerToml({ name: "gen", service: "chargen", listen: "127.0.0.1:0", banner: "go\r\n" }) +
      listenerToml({ name: "sink", service: "discard", listen: "127.0.0.1:0" }),
  );
  try {
    await using daemon = await spawnDaemon(["-c", config.path]);
    // ncat half-closes when its input ends, as nc -N does.
    assert.equal(
      await shell(`printf 'pear\\napple\\nfig\\n' | ncat 127.0.0.1 ${daemon.port("sort")}`),
      "apple\nfig\npear\n",
    );
    assert.equal(
      await shell(`printf 'through the relay' | ncat 127.0.0.1 ${daemon.port("relay")}`),
      "THROUGH THE RELAY",
    );
    await serving;
    assert.equal(await shell(`head -c 1000 /dev/zero | ncat 127.0.0.1 ${daemon.port("sink")}`), "");
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: daemon.port("gen") });
      const text = decoder.decode(await readBytes(conn, 4 + 74));
      assert.equal(text.slice(0, 8), 'go\r\n !"#');
      assert.ok(text.endsWith("efg\r\n"), JSON.stringify(text));
    }
    await daemon.waitForLine(/Connection closed listener=sort .* outcome=exited pid=\d+ exit=0/);
    await daemon.waitForLine(/Connection closed listener=relay .* in=17 out=17 .*target=127/);
    await daemon.waitForLine(/Connection closed listener=sink .* in=1000 out=0 outcome=closed/);
    await daemon.waitForLine(/Connection closed listener=gen .* in=0 out=\d+/);
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.exit()).code, 0, daemon.lines.join("\n"));
  } finally {
    target.close();
  }
});
