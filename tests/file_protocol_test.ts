import { join } from "node:path";
import { FramedClient } from "../cli/framed_client.ts";
import { encodeFrame, encodeHeader } from "../lib/header_codec.ts";
import { waitFor } from "./_helpers.ts";
import {
  assert,
  assertEquals,
  codeOf,
  connect,
  download,
  fileServer,
  makeTree,
  patternBytes,
  reply,
  request,
  sha256Hex,
  walk,
} from "./_file_helpers.ts";

Deno.test("file get sends header, body and an end frame with the body's sha256", async () => {
  const content = patternBytes(200_000);
  await using tree = await makeTree({ "data.bin": content, "empty": "" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  const result = await download(client, { path: "data.bin" });
  assert("body" in result, "download failed");
  const info = await Deno.stat(join(tree.root, "data.bin"));
  assertEquals(result.head, {
    op: "file",
    path: "data.bin",
    size: content.length,
    offset: 0,
    mtime: Math.floor(info.mtime!.getTime()),
  }, "file header");
  assertEquals(sha256Hex(result.body), sha256Hex(content), "body");
  assertEquals(result.end, { op: "end", sha256: sha256Hex(content) }, "end frame");
  const empty = await download(client, { path: "empty" });
  assert("body" in empty, "empty download failed");
  assertEquals([empty.head.size, empty.end.sha256], [0, sha256Hex("")], "empty file");
});

Deno.test("file get resumes at an offset and hashes only the bytes sent", async (t) => {
  const content = patternBytes(3 * 1024 * 1024 + 17, 7);
  await using tree = await makeTree({ "data.bin": content });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  for (const offset of [1, 65536, 1024 * 1024, content.length - 1, content.length]) {
    await t.step(`offset ${offset}`, async () => {
      const result = await download(client, { path: "data.bin", offset });
      assert("body" in result, "download failed");
      assertEquals(
        [result.head.offset, result.head.size],
        [offset, content.length - offset],
        "head",
      );
      const expected = content.subarray(offset);
      assertEquals(sha256Hex(result.body), sha256Hex(expected), "body");
      assertEquals(result.end.sha256, sha256Hex(expected), "end sha256");
    });
  }
  await t.step("offset past the end is bad_request", async () => {
    assertEquals(
      codeOf(await download(client, { path: "data.bin", offset: content.length + 1 })),
      "bad_request",
      "code",
    );
  });
  await t.step("a bad offset is bad_request and the connection stays usable", async () => {
    for (const offset of [-1, 1.5, "3", null]) {
      assertEquals(
        codeOf(await download(client, { path: "data.bin", offset })),
        "bad_request",
        `${offset}`,
      );
    }
    assertEquals(codeOf(await request(client, { op: "stat", path: "data.bin" })), "ok", "after");
  });
});

Deno.test('file get with "sha256": false sends an end frame without a hash', async () => {
  const content = patternBytes(5 * 1024 * 1024);
  await using tree = await makeTree({ "big.bin": content, "small.txt": "x" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  for (const path of ["big.bin", "small.txt"]) {
    const result = await download(client, { path, sha256: false });
    assert("body" in result, "download failed");
    assertEquals(result.end, { op: "end" }, `${path} end frame`);
  }
  assertEquals(
    codeOf(await download(client, { path: "small.txt", sha256: "no" })),
    "bad_request",
    "type",
  );
});

Deno.test("file stat reports type, length and mtime, and the whole file's sha256 when asked", async () => {
  const content = patternBytes(6 * 1024 * 1024, 3);
  await using tree = await makeTree({ "dir/big.bin": content, "dir/small.txt": "abc" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  const plain = await request(client, { op: "stat", path: "dir/small.txt" });
  assert(plain.ok, "stat failed");
  const info = await Deno.stat(join(tree.root, "dir/small.txt"));
  assertEquals(plain.header, {
    op: "stat",
    path: "dir/small.txt",
    type: "file",
    length: 3,
    mtime: Math.floor(info.mtime!.getTime()),
  }, "stat");
  for (const path of ["dir/small.txt", "dir/big.bin"]) {
    const hashed = await request(client, { op: "stat", path, sha256: true });
    assert(hashed.ok, "stat failed");
    const expected = path.endsWith("big.bin") ? content : new TextEncoder().encode("abc");
    assertEquals(hashed.header.sha256, sha256Hex(expected), `${path} sha256`);
  }
  const dir = await request(client, { op: "stat", path: "dir" });
  assert(dir.ok, "stat dir failed");
  assertEquals([dir.header.type, dir.header.length], ["dir", 0], "dir");
  const root = await request(client, { op: "stat", path: "" });
  assert(root.ok && root.header.type === "dir", "root is a dir");
});

Deno.test("file list sorts by UTF-8 bytes, caps with max_list and continues after a name", async () => {
  // UTF-16 order would put U+1F600 before U+FB00; UTF-8 byte order puts it after.
  const names = ["b", "B", "a", "é", "\u{1F600}", "\uFB00", "z"];
  await using tree = await makeTree(Object.fromEntries(names.map((n) => [n, n])));
  await Deno.mkdir(join(tree.root, "m"));
  await using server = await fileServer(tree.root, "max_list = 3");
  using client = await connect(server);
  const seen: string[] = [];
  let after: string | undefined;
  for (let page = 0; page < 10; page++) {
    const result = await request(client, { op: "list", path: "", ...(after ? { after } : {}) });
    assert(result.ok, "list failed");
    const entries = result.header.entries as Array<{ name: string; type: string }>;
    assert(entries.length <= 3, "more than max_list");
    seen.push(...entries.map((e) => e.name));
    if (!result.header.truncated) break;
    after = entries.at(-1)!.name;
  }
  assertEquals(seen, ["B", "a", "b", "m", "z", "é", "\uFB00", "\u{1F600}"], "order");
  assertEquals(
    codeOf(await request(client, { op: "list", path: "", after: 3 })),
    "bad_request",
    "after type",
  );
});

Deno.test("file list replies fit the 64 KiB header limit and say truncated", async () => {
  await using tree = await makeTree();
  const names: string[] = [];
  for (let i = 0; i < 1500; i++) {
    const name = `file-${String(i).padStart(5, "0")}-${"n".repeat(40)}`;
    names.push(name);
    await Deno.writeTextFile(join(tree.root, name), "x");
  }
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  const seen: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (; pages < 20; pages++) {
    await client.send({ op: "list", path: "", ...(after ? { after } : {}) });
    const header = await client.next();
    const entries = header.entries as Array<{ name: string }>;
    seen.push(...entries.map((e) => e.name));
    if (!header.truncated) break;
    after = entries.at(-1)!.name;
  }
  assert(pages >= 1, "a single reply held 1500 long names: the header limit was not applied");
  assertEquals(seen.length, names.length, "every name once");
  assertEquals(seen.join("\n"), names.join("\n"), "in order");
});

Deno.test("file get of a directory and list of a file are bad_request; missing is not_found", async () => {
  await using tree = await makeTree({ "d/f.txt": "f" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  assertEquals(codeOf(await download(client, { path: "d" })), "bad_request", "get dir");
  assertEquals(
    codeOf(await request(client, { op: "list", path: "d/f.txt" })),
    "bad_request",
    "list file",
  );
  assertEquals(
    codeOf(await request(client, { op: "list", path: "nope" })),
    "not_found",
    "list missing",
  );
  assertEquals(codeOf(await download(client, { path: "nope" })), "not_found", "get missing");
  assertEquals(codeOf(await request(client, { op: "get" })), "bad_request", "get without path");
  assertEquals(codeOf(await request(client, { op: "frobnicate" })), "bad_request", "unknown op");
  const noOp = new TextEncoder().encode('{"path":"d"}');
  await client.conn.write(new Uint8Array([0, 0, 0, noOp.length, ...noOp]));
  assertEquals(codeOf(await reply(client)), "bad_request", "missing op");
});

Deno.test("file answers a malformed frame with bad_frame and closes", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  await client.conn.write(new Uint8Array([0, 0, 0, 0]));
  const result = await reply(client);
  assertEquals(codeOf(result), "bad_frame", "code");
  assertEquals(await client.frames.readHeader(), null, "closed");
});

Deno.test("file put stores atomically with mode 0644, creating parents, and replies with the sha256", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root, "allow_upload = true");
  using client = await connect(server);
  const body = patternBytes(3 * 1024 * 1024 + 5);
  const result = await request(
    client,
    { op: "put", path: "a/b/c.bin", sha256: sha256Hex(body) },
    body,
  );
  assert(result.ok, `put failed: ${JSON.stringify(result)}`);
  assertEquals(result.header, {
    op: "ok",
    path: "a/b/c.bin",
    length: body.length,
    sha256: sha256Hex(body),
  }, "reply");
  const stored = await Deno.readFile(join(tree.root, "a/b/c.bin"));
  assertEquals(sha256Hex(stored), sha256Hex(body), "stored content");
  const mode = (await Deno.stat(join(tree.root, "a/b/c.bin"))).mode! & 0o777;
  assertEquals(mode.toString(8), (0o644 & ~Deno.umask()).toString(8), "mode");
  assertEquals(await walk(tree.root), ["a", "a/b", "a/b/c.bin"], "no temporaries left");
  const upper = await request(client, {
    op: "put",
    path: "u.txt",
    sha256: sha256Hex("u").toUpperCase(),
  }, new TextEncoder().encode("u"));
  assert(upper.ok, "an upper-case sha256 is accepted");
});

Deno.test("file put without size, with a bad sha256 or over max_upload is refused before writing", async (t) => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root, 'allow_upload = true\nmax_upload = "1KiB"');
  using client = await connect(server);
  await t.step("no size", async () => {
    assertEquals(codeOf(await request(client, { op: "put", path: "x" })), "bad_request", "code");
  });
  await t.step("bad sha256", async () => {
    const body = new Uint8Array(3);
    assertEquals(
      codeOf(await request(client, { op: "put", path: "x", sha256: "abc" }, body)),
      "bad_request",
      "short",
    );
    assertEquals(
      codeOf(await request(client, { op: "put", path: "x", sha256: 5 }, body)),
      "bad_request",
      "type",
    );
    assertEquals(
      codeOf(await request(client, { op: "put", path: "x", overwrite: "yes" }, body)),
      "bad_request",
      "overwrite",
    );
  });
  await t.step("over max_upload", async () => {
    const result = await request(client, { op: "put", path: "big" }, new Uint8Array(2048));
    assertEquals(codeOf(result), "too_large", "code");
    assertEquals(codeOf(await request(client, { op: "stat", path: "" })), "ok", "connection kept");
  });
  assertEquals(await walk(tree.root), [], "nothing written");
});

Deno.test("file put checks the sha256 before the file becomes visible", async () => {
  await using tree = await makeTree({ "old.txt": "old content" });
  await using server = await fileServer(tree.root, "allow_upload = true\noverwrite = true");
  using client = await connect(server);
  const body = new TextEncoder().encode("new content");
  const wrong = sha256Hex("something else");
  const fresh = await request(client, { op: "put", path: "new.txt", sha256: wrong }, body);
  assertEquals(codeOf(fresh), "checksum_mismatch", "new file");
  const replace = await request(client, {
    op: "put",
    path: "old.txt",
    sha256: wrong,
    overwrite: true,
  }, body);
  assertEquals(codeOf(replace), "checksum_mismatch", "replacement");
  assertEquals(
    await Deno.readTextFile(join(tree.root, "old.txt")),
    "old content",
    "old file intact",
  );
  assertEquals(await walk(tree.root), ["old.txt"], "no new file, no temporaries");
  assertEquals(
    codeOf(await request(client, { op: "stat", path: "old.txt" })),
    "ok",
    "connection kept",
  );
});

Deno.test("file put replaces only when both the listener and the request allow it", async (t) => {
  const cases: Array<[string, boolean | undefined, string]> = [
    ["", undefined, "exists"],
    ["", true, "exists"],
    ["overwrite = true", undefined, "exists"],
    ["overwrite = true", false, "exists"],
    ["overwrite = true", true, "ok"],
  ];
  for (const [setting, asked, expected] of cases) {
    await t.step(
      `listener "${setting || "default"}", request overwrite ${asked} → ${expected}`,
      async () => {
        await using tree = await makeTree({ "f.txt": "old", "d/x": "x" });
        await using server = await fileServer(tree.root, `allow_upload = true\n${setting}`);
        using client = await connect(server);
        const header: Record<string, unknown> = { op: "put", path: "f.txt" };
        if (asked !== undefined) header.overwrite = asked;
        assertEquals(
          codeOf(await request(client, header, new TextEncoder().encode("new"))),
          expected,
          "code",
        );
        assertEquals(
          await Deno.readTextFile(join(tree.root, "f.txt")),
          expected === "ok" ? "new" : "old",
          "content",
        );
        const dir = await request(
          client,
          { op: "put", path: "d", overwrite: true },
          new Uint8Array(1),
        );
        assertEquals(codeOf(dir), "exists", "a directory is never replaced");
      },
    );
  }
});

Deno.test("file put is forbidden without allow_upload; a refused body ≤ 1 MiB keeps the connection, a larger one closes it", async () => {
  await using tree = await makeTree({ "a.txt": "a" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  const small = await request(client, { op: "put", path: "x" }, new Uint8Array(1024 * 1024));
  assertEquals(codeOf(small), "forbidden", "small body");
  assertEquals(
    codeOf(await request(client, { op: "stat", path: "a.txt" })),
    "ok",
    "connection kept",
  );
  await client.sendHeader({ op: "put", path: "y", size: 2 * 1024 * 1024 });
  const large = await reply(client);
  assertEquals(codeOf(large), "forbidden", "large body");
  assertEquals(await client.frames.readHeader(), null, "connection closed");
  assertEquals(await walk(tree.root), ["a.txt"], "nothing written");
});

Deno.test("file put interrupted mid-body leaves nothing behind", async () => {
  await using tree = await makeTree({ "keep.txt": "keep" });
  await using server = await fileServer(tree.root, "allow_upload = true\noverwrite = true");
  for (const path of ["dir/partial.bin", "keep.txt"]) {
    const client = await connect(server);
    await client.sendHeader({ op: "put", path, size: 8 * 1024 * 1024, overwrite: true });
    await client.writeBody(patternBytes(1024 * 1024 + 3));
    client.close();
    await waitFor(() =>
      server.lines.some((line) => line.includes("op=put") && line.includes(`path=${path}`))
    );
  }
  assertEquals(await walk(tree.root), ["dir", "keep.txt"], "no partial file, no temporary");
  assertEquals(await Deno.readTextFile(join(tree.root, "keep.txt")), "keep", "old file intact");
});

Deno.test("file removes upload temporaries left by a crash when it starts", async () => {
  await using tree = await makeTree({ "sub/deeper/file.txt": "f" });
  const stale = [
    ".switchboard-upload-0123456789abcdef.tmp",
    "sub/.switchboard-upload-fedcba9876543210.tmp",
    "sub/deeper/.switchboard-upload-00000000000000ff.tmp",
  ];
  for (const path of stale) await Deno.writeTextFile(join(tree.root, path), "partial");
  await Deno.writeTextFile(join(tree.root, ".switchboard-upload-notours.tmp"), "other");
  await using server = await fileServer(tree.root, "allow_upload = true");
  assertEquals(await walk(tree.root), [
    ".switchboard-upload-notours.tmp",
    "sub",
    "sub/deeper",
    "sub/deeper/file.txt",
  ], "stale temporaries removed, other files kept");
  assert(server.lines.some((line) => line.includes("Removed 3 unfinished upload(s)")), "logged");
});

Deno.test("file requires the token on every request when one is set", async () => {
  await using tree = await makeTree({ "a.txt": "a" });
  await using server = await fileServer(tree.root, 'allow_upload = true\ntoken = "s3cret"');
  {
    using client = await connect(server);
    for (
      const header of [
        { op: "get", path: "a.txt" },
        { op: "list", path: "" },
        { op: "stat", path: "a.txt" },
      ]
    ) {
      assertEquals(
        codeOf(await request(client, header)),
        "unauthorized",
        `${header.op} without token`,
      );
    }
    const put = await request(client, { op: "put", path: "b.txt" }, new Uint8Array(10));
    assertEquals(codeOf(put), "unauthorized", "put without token");
    assertEquals(
      codeOf(await request(client, { op: "stat", path: "a.txt", token: "wrong" })),
      "unauthorized",
      "wrong token",
    );
  }
  {
    using client = await connect(server, "s3cret");
    assertEquals(codeOf(await download(client, { path: "a.txt" })), "ok", "get with token");
    assertEquals(
      codeOf(await request(client, { op: "put", path: "b.txt" }, new Uint8Array(10))),
      "ok",
      "put with token",
    );
  }
  assert(
    server.lines.some((l) => l.includes("op=get") && l.includes("outcome=unauthorized")),
    "refused requests are logged",
  );
  assert(!server.lines.some((l) => l.includes("s3cret")), "the token is never logged");
});

Deno.test("file logs every request at info with peer, op, path, bytes and outcome", async () => {
  await using tree = await makeTree({ "a.txt": "hello" });
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  await download(client, { path: "a.txt" });
  await download(client, { path: "evil\x1b[2J" });
  const get = server.lines.find((l) => l.includes("op=get") && l.includes("path=a.txt"));
  assert(get, "get not logged");
  for (const part of ["INFO", "peer=127.0.0.1:", "bytes=5", "outcome=ok", "listener=file"]) {
    assert(get.includes(part), `missing ${part} in ${get}`);
  }
  const evil = server.lines.find((l) => l.includes("outcome=not_found"));
  assert(
    evil && /evil(\\x1b|\\u001b)\[2J/.test(evil) && !evil.includes("\x1b"),
    `not escaped: ${evil}`,
  );
});

Deno.test("file serves concurrent gets correctly", async () => {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 4; i++) {
    files[`f${i}.bin`] = patternBytes(1024 * 1024 * (i * 2 + 1) + i, i + 1);
  }
  await using tree = await makeTree(files);
  await using server = await fileServer(tree.root);
  const clients = await Promise.all(Array.from({ length: 8 }, () => connect(server)));
  try {
    const results = await Promise.all(clients.map(async (client, index) => {
      const name = `f${index % 4}.bin`;
      const result = await download(client, { path: name });
      assert("body" in result, "download failed");
      return [sha256Hex(result.body), result.end.sha256, sha256Hex(files[name]!)];
    }));
    for (const [got, sent, expected] of results) {
      assertEquals([got, sent], [expected, expected], "content and end sha256");
    }
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("file frames several requests in one write and answers them in order", async () => {
  await using tree = await makeTree({ "a.txt": "A", "b.txt": "BB" });
  await using server = await fileServer(tree.root);
  using client = await FramedClient.connect({ hostname: "127.0.0.1", port: server.port("file") });
  const batch = [
    encodeFrame({ op: "get", path: "a.txt" }),
    encodeFrame({ op: "stat", path: "b.txt" }),
    encodeHeader({ op: "get", path: "b.txt", sha256: false }),
  ];
  const all = new Uint8Array(batch.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const part of batch) {
    all.set(part, at);
    at += part.length;
  }
  await client.conn.write(all);
  const ops: string[] = [];
  for (let i = 0; i < 5; i++) {
    const header = await client.next();
    ops.push(String(header.op));
    await client.frames.skipBody();
  }
  assertEquals(ops, ["file", "end", "stat", "file", "end"], "replies");
});

Deno.test("file lets idle_timeout close a transfer whose client stopped reading or sending", async () => {
  await using tree = await makeTree({ "big.bin": new Uint8Array(64 * 1024 * 1024) });
  await using server = await fileServer(tree.root, 'allow_upload = true\nidle_timeout = "1s"');
  {
    using client = await connect(server);
    await client.send({ op: "get", path: "big.bin", sha256: false });
    await client.next(); // the header; the body is never read
    await waitFor(
      () => server.lines.some((l) => l.includes("op=get") && l.includes("path=big.bin")),
      15_000,
    );
  }
  {
    using client = await connect(server);
    await client.sendHeader({ op: "put", path: "stalled.bin", size: 8 * 1024 * 1024 });
    await client.writeBody(new Uint8Array(1024 * 1024));
    await waitFor(
      () => server.lines.some((l) => l.includes("op=put") && l.includes("path=stalled.bin")),
      15_000,
    );
  }
  assertEquals(await walk(tree.root), ["big.bin"], "the stalled upload left nothing");
});

Deno.test("file logs an upload whose body never arrives as disconnected at info, not as a failure", async () => {
  await using tree = await makeTree({});
  await using server = await fileServer(tree.root, "allow_upload = true");
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port("file") });
    await conn.write(encodeHeader({ op: "put", path: "cut.bin", size: 1000 }));
    await conn.write(new Uint8Array(10));
  }
  await waitFor(() => server.lines.some((l) => l.includes("op=put")));
  const put = server.lines.find((l) => l.includes("op=put"))!;
  assert(put.includes("INFO") && put.includes("outcome=disconnected"), put);
  assert(!server.lines.some((l) => /WARN|ERROR/.test(l)), server.lines.join("\n"));
  assertEquals([...Deno.readDirSync(tree.root)].length, 0, "nothing is left in the root");
});
