import { createHash } from "node:crypto";
import { Sha256Pool } from "../lib/sha256_pool.ts";
import { assert, assertEquals, patternBytes } from "./_file_helpers.ts";
import { captureLog } from "./_helpers.ts";

function shared(data: Uint8Array): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(data.length));
  view.set(data);
  return view;
}

Deno.test("Sha256Pool hashes small transfers inline and large ones in its worker", async () => {
  const pool = new Sha256Pool({ workerMinBytes: 1024 });
  try {
    const small = await pool.job(10);
    assert(!small.shared, "small transfers hash inline");
    const data = patternBytes(5000);
    const a = await pool.job(5000);
    const b = await pool.job(5000);
    assert(a.shared && b.shared, "large transfers use the worker");
    // Two interleaved jobs keep their own state.
    await a.update(shared(data.subarray(0, 100)));
    await b.update(shared(data.subarray(0, 2000)));
    await a.update(shared(data.subarray(100)));
    await b.update(shared(data.subarray(2000)));
    const expected = createHash("sha256").update(data).digest("hex");
    assertEquals([await a.digest(), await b.digest()], [expected, expected], "digests");
    const dropped = await pool.job(5000);
    dropped.drop();
  } finally {
    pool.close();
  }
});

Deno.test("Sha256Pool falls back to inline hashing, once warned, when its worker cannot start", async () => {
  const { log, lines } = captureLog();
  const pool = new Sha256Pool({
    workerMinBytes: 1,
    log,
    workerUrl: new URL("data:application/javascript,throw new Error('broken on purpose')"),
  });
  try {
    const job = await pool.job(100);
    assert(!job.shared, "fell back to inline");
    job.update(new TextEncoder().encode("abc"));
    assertEquals(await job.digest(), createHash("sha256").update("abc").digest("hex"), "digest");
    await pool.job(100);
    assertEquals(
      lines.filter((l) => l.includes("SHA-256 worker unavailable")).length,
      1,
      "one warning",
    );
  } finally {
    pool.close();
  }
});
