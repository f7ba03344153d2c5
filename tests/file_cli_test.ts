import { join } from "node:path";
import { runCli, switchboardShell } from "./_helpers.ts";
import {
  assert,
  assertEquals,
  fileServer,
  makeTree,
  patternBytes,
  sha256Hex,
  walk,
} from "./_file_helpers.ts";

/** Runs the CLI under script(1), so that its stdout and stderr are a terminal. */
async function runOnTerminal(
  args: string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  const command = switchboardShell(args);
  const child = new Deno.Command("script", {
    args: ["-qfc", command, "/dev/null"],
    cwd,
    env: { NO_COLOR: "1", COLUMNS: "100" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const output = await child.output();
  clearTimeout(timer);
  return { code: output.code, output: new TextDecoder().decode(output.stdout) };
}

Deno.test("switchboard get downloads to LOCAL quietly when not on a terminal", async () => {
  const content = patternBytes(2 * 1024 * 1024 + 1);
  await using tree = await makeTree({ "dir/data.bin": content });
  await using server = await fileServer(tree.root);
  const addr = `127.0.0.1:${server.port("file")}`;
  const result = await runCli(["get", addr, "dir/data.bin"], { cwd: tree.outside });
  assertEquals([result.code, result.stdout, result.stderr], [0, "", ""], "quiet success");
  assertEquals(
    sha256Hex(await Deno.readFile(join(tree.outside, "data.bin"))),
    sha256Hex(content),
    "content",
  );
  const into = await runCli(["get", addr, "dir/data.bin", "copy.bin"], { cwd: tree.outside });
  assertEquals(into.code, 0, "explicit LOCAL");
  await Deno.mkdir(join(tree.outside, "sub"));
  assertEquals(
    (await runCli(["get", addr, "dir/data.bin", "sub"], { cwd: tree.outside })).code,
    0,
    "into a dir",
  );
  assertEquals(
    await walk(tree.outside),
    ["copy.bin", "data.bin", "sub", "sub/data.bin"],
    "files, no .part",
  );
  const info = await Deno.stat(join(tree.outside, "data.bin"));
  const remote = await Deno.stat(join(tree.root, "dir/data.bin"));
  assertEquals(info.mtime?.getTime(), remote.mtime?.getTime(), "mtime kept");
});

Deno.test("switchboard get - writes the file to stdout", async () => {
  const content = patternBytes(300_000, 9);
  await using tree = await makeTree({ "data.bin": content });
  await using server = await fileServer(tree.root);
  const result = await runCli(["get", `127.0.0.1:${server.port("file")}`, "data.bin", "-"]);
  assertEquals(result.code, 0, "exit code");
  assertEquals(sha256Hex(result.stdoutBytes), sha256Hex(content), "stdout");
  assertEquals(result.stderr, "", "no progress when piped");
});

Deno.test("switchboard get fails with one line and leaves nothing for a missing file", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root);
  const result = await runCli(["get", `127.0.0.1:${server.port("file")}`, "nope.txt"], {
    cwd: tree.outside,
  });
  assertEquals(result.code, 1, "exit code");
  assertEquals(
    result.stderr,
    'switchboard get: No such file or directory: "nope.txt" (not_found)\n',
    "reason",
  );
  assertEquals(await walk(tree.outside), [], "no LOCAL, no .part");
});

Deno.test("switchboard get --continue resumes a .part or a partial LOCAL and verifies the whole file", async (t) => {
  const content = patternBytes(3 * 1024 * 1024 + 77, 4);
  await using tree = await makeTree({ "data.bin": content });
  await using server = await fileServer(tree.root);
  const addr = `127.0.0.1:${server.port("file")}`;
  const local = join(tree.outside, "data.bin");
  await t.step("from data.bin.part", async () => {
    await Deno.writeFile(`${local}.part`, content.subarray(0, 1_000_000));
    const result = await runCli(["get", "--continue", addr, "data.bin"], { cwd: tree.outside });
    assertEquals([result.code, result.stderr], [0, ""], "exit");
    assertEquals(sha256Hex(await Deno.readFile(local)), sha256Hex(content), "content");
    assertEquals(await walk(tree.outside), ["data.bin"], "no .part left");
  });
  await t.step("from a partial LOCAL", async () => {
    await Deno.writeFile(local, content.subarray(0, 2_000_000));
    const result = await runCli(["get", "-c", addr, "data.bin"], { cwd: tree.outside });
    assertEquals(result.code, 0, "exit");
    assertEquals(sha256Hex(await Deno.readFile(local)), sha256Hex(content), "content");
  });
  await t.step("a complete LOCAL is verified and kept", async () => {
    const result = await runCli(["get", "-c", addr, "data.bin"], { cwd: tree.outside });
    assertEquals(result.code, 0, "exit");
    assertEquals(sha256Hex(await Deno.readFile(local)), sha256Hex(content), "content");
  });
  await t.step(
    "a corrupt prefix fails the check and is discarded; LOCAL is untouched",
    async () => {
      const bad = content.slice(0, 1_500_000);
      bad[10] = bad[10]! ^ 0xff;
      await Deno.writeFile(`${local}.part`, bad);
      const result = await runCli(["get", "-c", addr, "data.bin"], { cwd: tree.outside });
      assertEquals(result.code, 1, "exit");
      assert(result.stderr.startsWith("switchboard get: checksum mismatch"), result.stderr);
      assertEquals(await walk(tree.outside), ["data.bin"], ".part discarded");
      assertEquals(sha256Hex(await Deno.readFile(local)), sha256Hex(content), "LOCAL intact");
    },
  );
  await t.step("a .part longer than the remote file is reported", async () => {
    await Deno.writeFile(`${local}.part`, new Uint8Array(content.length + 10));
    const result = await runCli(["get", "-c", addr, "data.bin"], { cwd: tree.outside });
    assertEquals(result.code, 1, "exit");
    assert(result.stderr.includes("longer than the remote file"), result.stderr);
    await Deno.remove(`${local}.part`);
  });
});

Deno.test("switchboard get draws a progress bar on a terminal", async () => {
  await using tree = await makeTree({ "data.bin": patternBytes(2 * 1024 * 1024) });
  await using server = await fileServer(tree.root);
  const result = await runOnTerminal(
    ["get", `127.0.0.1:${server.port("file")}`, "data.bin"],
    tree.outside,
  );
  assertEquals(result.code, 0, `exit code; output: ${result.output}`);
  for (const part of ["\r", "data.bin", "100%", "2MiB/2MiB", "/s", "in 0:0"]) {
    assert(
      result.output.includes(part),
      `missing ${JSON.stringify(part)} in ${JSON.stringify(result.output)}`,
    );
  }
});

Deno.test("switchboard put uploads with its checksum, refuses to overwrite unless asked", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root, "allow_upload = true\noverwrite = true");
  const addr = `127.0.0.1:${server.port("file")}`;
  const content = patternBytes(1_234_567, 2);
  await Deno.writeFile(join(tree.outside, "up.bin"), content);
  const first = await runCli(["put", addr, "up.bin", "in/"], { cwd: tree.outside });
  assertEquals([first.code, first.stdout, first.stderr], [0, "", ""], "quiet success");
  assertEquals(
    sha256Hex(await Deno.readFile(join(tree.root, "in/up.bin"))),
    sha256Hex(content),
    "stored",
  );
  const again = await runCli(["put", addr, "up.bin", "in/up.bin"], { cwd: tree.outside });
  assertEquals(again.code, 1, "exists");
  assert(again.stderr.includes("(exists); use --overwrite"), again.stderr);
  const replaced = await runCli(["put", "--overwrite", addr, "up.bin", "in/up.bin"], {
    cwd: tree.outside,
  });
  assertEquals(replaced.code, 0, "overwrite");
  const missing = await runCli(["put", addr, "nope.bin"], { cwd: tree.outside });
  assertEquals(missing.code, 1, "missing LOCAL");
  assert(missing.stderr.startsWith("switchboard put: cannot read nope.bin"), missing.stderr);
});

Deno.test("switchboard put reports a refused upload with the server's reason", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root);
  await Deno.writeFile(join(tree.outside, "big.bin"), new Uint8Array(3 * 1024 * 1024));
  const result = await runCli(["put", `127.0.0.1:${server.port("file")}`, "big.bin"], {
    cwd: tree.outside,
  });
  assertEquals(result.code, 1, "exit code");
  assertEquals(
    result.stderr,
    "switchboard put: Uploads are disabled on this listener (forbidden)\n",
    "reason",
  );
});

Deno.test("switchboard put draws a progress bar on a terminal", async () => {
  await using tree = await makeTree();
  await using server = await fileServer(tree.root, "allow_upload = true");
  await Deno.writeFile(join(tree.outside, "up.bin"), patternBytes(1024 * 1024));
  const result = await runOnTerminal(
    ["put", `127.0.0.1:${server.port("file")}`, "up.bin"],
    tree.outside,
  );
  assertEquals(result.code, 0, `exit code; output: ${result.output}`);
  assert(
    result.output.includes("100%") && result.output.includes("\r"),
    JSON.stringify(result.output),
  );
});

Deno.test("switchboard ls prints a table with escaped names, every page of it", async () => {
  await using tree = await makeTree({ "b.txt": "bb", "evil\x1b[2J.txt": "e", "中文.txt": "x" });
  for (let i = 0; i < 5; i++) await Deno.writeTextFile(join(tree.root, `n${i}`), "");
  await Deno.mkdir(join(tree.root, "dir"));
  await using server = await fileServer(tree.root, "max_list = 2");
  const addr = `127.0.0.1:${server.port("file")}`;
  const result = await runCli(["ls", addr]);
  assertEquals(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assertEquals(lines.length, 9, `every entry once:\n${result.stdout}`);
  assert(/^file +2B {2}\d{4}-\d\d-\d\d \d\d:\d\d {2}b\.txt$/.test(lines[0]!), lines[0]!);
  assert(/^dir {2,}- {2}.* {2}dir\/$/.test(lines[1]!), lines[1]!);
  assert(lines[2]!.endsWith("evil\\x1b[2J.txt") && !result.stdout.includes("\x1b"), lines[2]!);
  assert(lines[8]!.endsWith("中文.txt"), lines[8]!);
  const file = await runCli(["ls", addr, "b.txt"]);
  assert(file.code === 0 && file.stdout.trimEnd().endsWith("b.txt"), file.stdout);
  const missing = await runCli(["ls", addr, "nope"]);
  assertEquals(missing.code, 1, "missing dir");
});

Deno.test("the file verbs send the token from --token or SWITCHBOARD_TOKEN", async () => {
  await using tree = await makeTree({ "a.txt": "a" });
  await using server = await fileServer(tree.root, 'token = "tok"');
  const addr = `127.0.0.1:${server.port("file")}`;
  const without = await runCli(["ls", addr]);
  assertEquals([without.code, without.stderr], [
    1,
    "switchboard ls: Missing or wrong token (unauthorized)\n",
  ], "no token");
  assertEquals((await runCli(["ls", addr, "--token", "tok"])).code, 0, "--token");
  const env = await runCli(["get", addr, "a.txt", "-"], { env: { SWITCHBOARD_TOKEN: "tok" } });
  assertEquals([env.code, env.stdout], [0, "a"], "SWITCHBOARD_TOKEN");
});

Deno.test("the file verbs report usage errors with exit 64 and have --help", async (t) => {
  const cases: string[][] = [
    ["get"],
    ["get", "127.0.0.1:1"],
    ["get", "127.0.0.1:1", "a", "b", "c"],
    ["get", "--bogus", "127.0.0.1:1", "a"],
    ["get", "-c", "127.0.0.1:1", "a", "-"],
    ["get", "127.0.0.1:1", ""],
    ["get", "127.0.0.1:1", "."],
    ["get", "host:99999", "a"],
    ["put"],
    ["put", "127.0.0.1:1", "-"],
    ["ls"],
    ["ls", "127.0.0.1:1", "a", "b"],
  ];
  for (const args of cases) {
    await t.step(args.join(" "), async () => {
      const result = await runCli(args);
      assertEquals(result.code, 64, `exit code; stderr: ${result.stderr}`);
      assert(result.stderr.startsWith(`switchboard ${args[0]}: `), result.stderr);
    });
  }
  for (const verb of ["get", "put", "ls"]) {
    await t.step(`${verb} --help`, async () => {
      const result = await runCli([verb, "--help"]);
      assertEquals(result.code, 0, "exit code");
      assert(result.stdout.startsWith(`Usage: switchboard ${verb} ADDR`), result.stdout);
    });
  }
  await t.step("connection refused is exit 1 with a reason", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const result = await runCli(["ls", `127.0.0.1:${port}`]);
    assertEquals(result.code, 1, "exit code");
    assert(result.stderr.includes("connection refused"), result.stderr);
  });
});

Deno.test("switchboard get keeps the .part of a broken transfer and --continue finishes it", async () => {
  const content = patternBytes(1024 * 1024, 6);
  await using tree = await makeTree({ "data.bin": content });
  // A server that sends the header and half the body, then hangs up.
  const fake = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await fake.accept();
    const { encodeHeader, FrameReader } = await import("../lib/header_codec.ts");
    await new FrameReader(conn).readHeader();
    const head = encodeHeader({
      op: "file",
      path: "data.bin",
      size: content.length,
      offset: 0,
      mtime: 0,
    });
    await conn.write(head);
    let sent = 0;
    while (sent < content.length / 2) {
      sent += await conn.write(content.subarray(sent, content.length / 2));
    }
    conn.close();
  })();
  const broken = await runCli(["get", `127.0.0.1:${fake.addr.port}`, "data.bin"], {
    cwd: tree.outside,
  });
  await serving;
  fake.close();
  assertEquals(broken.code, 1, "exit code");
  assert(broken.stderr.includes("data.bin.part kept: run again with --continue"), broken.stderr);
  assertEquals(
    (await Deno.stat(join(tree.outside, "data.bin.part"))).size,
    content.length / 2,
    ".part",
  );
  await using server = await fileServer(tree.root);
  const resumed = await runCli(["get", "-c", `127.0.0.1:${server.port("file")}`, "data.bin"], {
    cwd: tree.outside,
  });
  assertEquals(resumed.code, 0, resumed.stderr);
  assertEquals(
    sha256Hex(await Deno.readFile(join(tree.outside, "data.bin"))),
    sha256Hex(content),
    "content",
  );
  assertEquals(await walk(tree.outside), ["data.bin"], "no .part left");
});
