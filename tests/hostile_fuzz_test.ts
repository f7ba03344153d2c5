/**
 * Fuzzing both framed ports of a real daemon subprocess with mutated frames
 * (valid requests of every op with bytes flipped, cut, inserted, bodies
 * short or long, sizes lied about, sent in random pieces): every reply is a
 * frame of the protocol and every error carries a documented code, no reply
 * or log line carries a stack trace, nothing is logged as a failure of ours,
 * the daemon keeps serving and its descriptors come back to the baseline.
 * `SWITCHBOARD_HOSTILE=long` tries ten times as many inputs.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeFrame, encodeHeader, FrameError, FrameReader } from "../lib/header_codec.ts";
import { writeAll } from "../lib/write_all.ts";
import { listenerToml, spawnDaemon, tempConfig } from "./_helpers.ts";
import { fdCount, reaches, scaled, steady, within } from "./_hostile.ts";

const TOKEN = "fuzz-token-0123456789";
const PER_PORT = scaled(1000);
const SEED = Number(Deno.env.get("SWITCHBOARD_PROPERTY_SEED") ?? Date.now() % 2 ** 31);
const CODES = new Set([
  "bad_frame",
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "exists",
  "too_large",
  "checksum_mismatch",
  "busy",
  "io_error",
]);
const REPLY_OPS = new Set([
  "error",
  "stdout",
  "stderr",
  "exit",
  "file",
  "end",
  "ok",
  "list",
  "stat",
]);
// What a stack trace or an internal path would look like in a message.
const LEAK = /\n\s+at |file:\/\/|\.ts:\d+|node_modules|\/work\//;

const token = fc.constantFrom(TOKEN, TOKEN, "wrong", undefined, 42);
const text = fc.oneof(fc.constantFrom("a.txt", "d", "", ".", "..", "d/../a.txt"), fc.string());
const cmdHeaders = fc.oneof(
  fc.record({
    op: fc.constant("exec"),
    argv: fc.oneof(
      fc.constant(["echo", "hi"]),
      fc.constant(["true"]),
      fc.constant(["cat"]),
      fc.array(fc.string(), { maxLength: 3 }),
    ),
    token,
    stdin: fc.constantFrom(undefined, "stream", "none", 5),
    timeout_ms: fc.constantFrom(undefined, 100, -1, "x"),
  }, { requiredKeys: ["op"] }),
  fc.record({ op: fc.constant("exec"), cmd: fc.string(), token }, { requiredKeys: ["op"] }),
  fc.record({ op: fc.constantFrom("stdin", "eof", "bogus", ""), token }, { requiredKeys: ["op"] }),
);
const fileHeaders = fc.oneof(
  fc.record({
    op: fc.constantFrom("get", "stat", "list"),
    path: text,
    token,
    offset: fc.constantFrom(undefined, 0, 3, 1e15, -1),
    sha256: fc.constantFrom(undefined, true, false, "x"),
  }, { requiredKeys: ["op"] }),
  fc.record({
    op: fc.constant("put"),
    path: text,
    token,
    overwrite: fc.boolean(),
    sha256: fc.constantFrom(undefined, "00", "a".repeat(64)),
  }, { requiredKeys: ["op"] }),
);

/** One request, its body (maybe lying about its size), mutated, and how it is split up. */
function input(headers: fc.Arbitrary<Record<string, unknown>>) {
  return fc.record({
    header: headers,
    body: fc.option(fc.uint8Array({ maxLength: 2000 }), { nil: undefined }),
    sizeLie: fc.constantFrom(0, 0, 0, 1, -1, 1000, 5_000_000),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
      maxLength: 3,
    }),
    repeat: fc.integer({ min: 1, max: 3 }),
    pieces: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }),
  }).map(({ header, body, sizeLie, edits, repeat, pieces }) => {
    const clean = Object.fromEntries(Object.entries(header).filter(([, v]) => v !== undefined));
    let bytes: number[];
    if (body !== undefined) {
      const size = Math.max(0, body.length + sizeLie);
      bytes = [...encodeHeader({ ...clean, op: String(clean.op), size }), ...body];
    } else {
      bytes = [...encodeFrame({ ...clean, op: String(clean.op) })];
    }
    for (const [at, value, cut] of edits) {
      const index = at % Math.max(1, bytes.length);
      if (cut) bytes.splice(index, 1);
      else bytes[index] = value;
    }
    const one = new Uint8Array(bytes);
    const all = new Uint8Array(one.length * repeat);
    for (let i = 0; i < repeat; i++) all.set(one, i * one.length);
    return { bytes: all, pieces };
  });
}

interface Outcome {
  codes: string[];
  problems: string[];
}

/** Sends one input on a fresh connection and checks everything that comes back. */
async function tryInput(port: number, bytes: Uint8Array, pieces: number[]): Promise<Outcome> {
  const outcome: Outcome = { codes: [], problems: [] };
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sending = (async () => {
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const n = i < pieces.length ? pieces[i]! : bytes.length - at;
      await writeAll(conn, bytes.subarray(at, at + n));
      at += n;
    }
    await conn.closeWrite();
  })().catch(() => {});
  const reader = new FrameReader(conn);
  const reading = (async () => {
    const sink = new Uint8Array(65536);
    for (;;) {
      const header = await reader.readHeader();
      if (header === null) return;
      if (!REPLY_OPS.has(String(header.op))) outcome.problems.push(`reply op ${header.op}`);
      if (header.op === "error") {
        const code = String(header.code);
        outcome.codes.push(code);
        if (!CODES.has(code)) outcome.problems.push(`undocumented code ${code}`);
      }
      const message = JSON.stringify(header);
      if (LEAK.test(message)) outcome.problems.push(`leak in ${message}`);
      while ((await reader.readBody(sink)) !== null) { /* bodies are not checked */ }
    }
  })().catch((error) => {
    // A reset after a bad_frame is the daemon closing: fine. A broken reply is not.
    if (error instanceof FrameError && error.reason !== "truncated") {
      outcome.problems.push(`unreadable reply: ${error.message}`);
    }
  });
  const done = await within(Promise.all([sending, reading]), 5000);
  if (done === undefined) outcome.problems.push("no end within 5 s");
  conn.close();
  await Promise.all([sending, reading]);
  return outcome;
}

Deno.test("fuzzed frames on both framed ports get only documented errors, no stack trace, no failure", async () => {
  await using config = await tempConfig("");
  const root = `${config.dir}/root`;
  const workdir = `${config.dir}/work`;
  await Deno.mkdir(`${root}/d`, { recursive: true });
  await Deno.mkdir(workdir);
  await Deno.writeTextFile(`${root}/a.txt`, "hello\n");
  await Deno.writeTextFile(
    config.path,
    listenerToml({
      name: "cmd",
      service: "cmd",
      listen: "127.0.0.1:0",
      token: TOKEN,
      allow_commands: ["echo", "true", "cat"],
      workdir,
      timeout: "2s",
      max_stdin: "64KiB",
    }) +
      listenerToml({
        name: "file",
        service: "file",
        listen: "127.0.0.1:0",
        root,
        token: TOKEN,
        allow_upload: true,
        overwrite: true,
        max_upload: "64KiB",
      }),
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const pid = daemon.child.pid;
  const baseline = await steady(() => fdCount(pid), { timeoutMs: 2000 });
  const codes = new Map<string, number>();
  const problems: string[] = [];
  let tried = 0;
  for (
    const [port, headers] of [[daemon.port("cmd"), cmdHeaders], [
      daemon.port("file"),
      fileHeaders,
    ]] as const
  ) {
    const inputs = fc.sample(input(headers), { numRuns: PER_PORT, seed: SEED });
    for (let i = 0; i < inputs.length; i += 8) {
      const outcomes = await Promise.all(
        inputs.slice(i, i + 8).map(({ bytes, pieces }) => tryInput(port, bytes, pieces)),
      );
      for (const outcome of outcomes) {
        tried++;
        for (const code of outcome.codes) codes.set(code, (codes.get(code) ?? 0) + 1);
        problems.push(...outcome.problems);
      }
    }
  }
  assert.deepEqual(problems.slice(0, 10), [], `seed ${SEED}`);
  // The daemon still serves, and took nothing of its own for the fuzz.
  const probe = await tryInput(
    daemon.port("file"),
    encodeFrame({ op: "stat", path: "a.txt", token: TOKEN }),
    [1000],
  );
  assert.deepEqual(probe, { codes: [], problems: [] });
  const after = await reaches(() => fdCount(pid), baseline);
  const failures = daemon.lines.filter((l) => /WARN|ERROR|failed|\n\s+at /.test(l));
  assert.deepEqual(failures.slice(0, 5), [], "no failure of the daemon's own is logged");
  assert.ok(codes.has("bad_frame") && codes.has("unauthorized") && codes.has("bad_request"));
  assert.equal(after, baseline, `fds ${baseline} before, ${after} after`);
  console.log(
    `fuzz: ${tried} inputs, error codes ${JSON.stringify(Object.fromEntries(codes))}, ` +
      `fds ${baseline} → ${after}, seed ${SEED}`,
  );
});
