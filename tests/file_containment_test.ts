import { join } from "node:path";
import {
  assert,
  assertEquals,
  codeOf,
  connect,
  download,
  fileServer,
  makeTree,
  request,
  type Tree,
} from "./_file_helpers.ts";

/** A tree with every kind of path the containment rules care about. */
async function containmentTree(): Promise<Tree> {
  const tree = await makeTree({
    "a.txt": "hello",
    "sub/b.txt": "bee",
    "中文名.txt": "你好",
    ".hidden": "secret",
    ".hiddendir/x.txt": "x",
    "sub/.dot.txt": "dot",
    "back\\slash.txt": "backslash",
  });
  await Deno.writeTextFile(join(tree.outside, "secret.txt"), "outside");
  await Deno.symlink(join(tree.root, "sub/b.txt"), join(tree.root, "link_in"));
  await Deno.symlink("sub", join(tree.root, "linkdir_in"));
  await Deno.symlink(join(tree.outside, "secret.txt"), join(tree.root, "link_out"));
  await Deno.symlink("../outside", join(tree.root, "linkdir_out"));
  await Deno.symlink(".hidden", join(tree.root, "link_hidden"));
  await Deno.symlink("nowhere", join(tree.root, "dangling"));
  return tree;
}

// [path, expected code or content]
const GET_CASES: Array<[unknown, string]> = [
  ["a.txt", "=hello"],
  ["./a.txt", "=hello"],
  ["sub//b.txt", "=bee"],
  ["sub/./b.txt", "=bee"],
  ["中文名.txt", "=你好"],
  ["../outside/secret.txt", "forbidden"],
  ["sub/../a.txt", "forbidden"],
  ["..", "forbidden"],
  ["/etc/passwd", "forbidden"],
  [join("/", "a.txt"), "forbidden"],
  ["a.txt\0.jpg", "forbidden"],
  ["x".repeat(256), "forbidden"],
  ["é".repeat(128), "forbidden"],
  ["x".repeat(255), "not_found"],
  ["..\\outside\\secret.txt", "forbidden"],
  ["sub\\b.txt", "forbidden"],
  ["back\\slash.txt", "forbidden"],
  [".hidden", "not_found"],
  [".hiddendir/x.txt", "not_found"],
  ["sub/.dot.txt", "not_found"],
  ["link_in", "=bee"],
  ["linkdir_in/b.txt", "=bee"],
  ["link_out", "forbidden"],
  ["linkdir_out/secret.txt", "forbidden"],
  ["link_hidden", "not_found"],
  ["dangling", "not_found"],
  ["missing.txt", "not_found"],
  ["a.txt/x", "not_found"],
  [".switchboard-upload-0123456789abcdef.tmp", "not_found"],
  [42, "bad_request"],
  [null, "bad_request"],
  ["\ud800", "bad_request"],
  ["sub", "bad_request"],
  ["", "bad_request"],
  [".", "bad_request"],
];

Deno.test("file get enforces the containment table", async (t) => {
  await using tree = await containmentTree();
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  for (const [path, expected] of GET_CASES) {
    await t.step(`get ${JSON.stringify(path)} → ${expected}`, async () => {
      const result = await download(client, { path });
      if (expected.startsWith("=")) {
        assert("body" in result, `expected content, got ${codeOf(result)}`);
        assertEquals(new TextDecoder().decode(result.body), expected.slice(1), "content");
      } else {
        assertEquals(codeOf(result), expected, "code");
      }
    });
  }
});

const OTHER_CASES: Array<[Record<string, unknown>, string]> = [
  [{ op: "stat", path: ".hidden" }, "not_found"],
  [{ op: "stat", path: "link_out" }, "forbidden"],
  [{ op: "stat", path: "link_in" }, "ok"],
  [{ op: "stat", path: "../outside" }, "forbidden"],
  [{ op: "list", path: ".hiddendir" }, "not_found"],
  [{ op: "list", path: "linkdir_out" }, "forbidden"],
  [{ op: "list", path: "linkdir_in" }, "ok"],
  [{ op: "list", path: "/" }, "forbidden"],
  [{ op: "list", path: "." }, "ok"],
  [{ op: "list", path: "a.txt" }, "bad_request"],
  [{ op: "stat", path: "sub\\b.txt" }, "forbidden"],
  [{ op: "stat", path: "中文名.txt" }, "ok"],
];

Deno.test("file stat and list apply the same rules as get", async (t) => {
  await using tree = await containmentTree();
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  for (const [header, expected] of OTHER_CASES) {
    await t.step(`${header.op} ${JSON.stringify(header.path)} → ${expected}`, async () => {
      assertEquals(codeOf(await request(client, header)), expected, "code");
    });
  }
});

Deno.test("file list shows symlinks inside the root as their targets and hides the rest", async () => {
  await using tree = await containmentTree();
  await using server = await fileServer(tree.root);
  using client = await connect(server);
  const result = await request(client, { op: "list", path: "" });
  assert(result.ok, "list failed");
  const entries = result.header.entries as Array<{ name: string; type: string; size: number }>;
  assertEquals(
    entries.map((e) => `${e.name}:${e.type}:${e.size}`),
    ["a.txt:file:5", "link_in:file:3", "linkdir_in:dir:0", "sub:dir:0", "中文名.txt:file:6"],
    "entries",
  );
  assertEquals(result.header.truncated, false, "truncated");
});

Deno.test("file show_hidden = true serves dot files but never upload temporaries", async () => {
  await using tree = await containmentTree();
  await Deno.writeTextFile(join(tree.root, ".switchboard-upload-0123456789abcdef.tmp"), "part");
  await using server = await fileServer(tree.root, "show_hidden = true");
  using client = await connect(server);
  const hidden = await download(client, { path: ".hidden" });
  assert("body" in hidden, "hidden file not served");
  assertEquals(codeOf(await download(client, { path: "link_hidden" })), "ok", "link to hidden");
  assertEquals(
    codeOf(await download(client, { path: ".switchboard-upload-0123456789abcdef.tmp" })),
    "not_found",
    "temporary",
  );
  const list = await request(client, { op: "list", path: "" });
  assert(list.ok, "list failed");
  const names = (list.header.entries as Array<{ name: string }>).map((e) => e.name);
  assert(names.includes(".hidden") && names.includes(".hiddendir"), `names: ${names}`);
  assert(!names.some((n) => n.startsWith(".switchboard-upload-")), `temp listed: ${names}`);
});

Deno.test("file put applies the containment rules to the target and its directories", async (t) => {
  await using tree = await containmentTree();
  await using server = await fileServer(tree.root, "allow_upload = true");
  using client = await connect(server);
  const body = new TextEncoder().encode("new");
  const cases: Array<[string, string]> = [
    ["../outside/new.txt", "forbidden"],
    ["/tmp/new.txt", "forbidden"],
    ["linkdir_out/new.txt", "forbidden"],
    [".new", "not_found"],
    [".hiddendir/new.txt", "not_found"],
    ["a.txt/new.txt", "bad_request"],
    ["", "bad_request"],
    ["sub\\new.txt", "forbidden"],
    ["linkdir_in/new.txt", "ok"],
    ["新/目录/文件.txt", "ok"],
  ];
  for (const [path, expected] of cases) {
    await t.step(`put ${JSON.stringify(path)} → ${expected}`, async () => {
      assertEquals(codeOf(await request(client, { op: "put", path }, body)), expected, "code");
    });
  }
  assertEquals(await Deno.readTextFile(join(tree.root, "sub/new.txt")), "new", "via dir link");
  assertEquals(await Deno.readTextFile(join(tree.root, "新/目录/文件.txt")), "new", "unicode");
  const outside = [];
  for await (const entry of Deno.readDir(tree.outside)) outside.push(entry.name);
  assertEquals(outside, ["secret.txt"], "nothing written outside");
});

Deno.test("file put treats a symlink at the target as what it points to", async (t) => {
  await using tree = await containmentTree();
  await using server = await fileServer(tree.root, "allow_upload = true\noverwrite = true");
  using client = await connect(server);
  const body = new TextEncoder().encode("new");
  // [path, overwrite, expected code]
  const cases: Array<[string, boolean, string]> = [
    ["link_out", true, "forbidden"],
    ["link_out", false, "forbidden"],
    ["linkdir_out", true, "forbidden"],
    ["linkdir_in", true, "exists"],
    ["link_in", false, "exists"],
    ["link_in", true, "ok"],
    ["dangling", true, "ok"],
  ];
  for (const [path, overwrite, expected] of cases) {
    await t.step(`put ${path} overwrite=${overwrite} → ${expected}`, async () => {
      const reply = await request(client, { op: "put", path, overwrite }, body);
      assertEquals(codeOf(reply), expected, "code");
    });
  }
  for (const name of ["link_out", "linkdir_out", "linkdir_in"]) {
    assert((await Deno.lstat(join(tree.root, name))).isSymlink, `${name} is still a link`);
  }
  assertEquals(await Deno.readTextFile(join(tree.outside, "secret.txt")), "outside", "outside");
  assertEquals(await Deno.readTextFile(join(tree.root, "sub/b.txt")), "bee", "not written through");
  assertEquals(await Deno.readTextFile(join(tree.root, "link_in")), "new", "the link was replaced");
  assert((await Deno.lstat(join(tree.root, "link_in"))).isFile, "link_in is now a file");
});
