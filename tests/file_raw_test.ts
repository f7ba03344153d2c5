import { assert, assertEquals, fileServer, makeTree } from "./_file_helpers.ts";
import { readToEnd } from "./_helpers.ts";

async function rawGet(port: number, request: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  return new TextDecoder().decode(await readToEnd(conn, 5000));
}

Deno.test('file protocol = "raw" sends the named file and closes, as a plain downloader expects', async (t) => {
  await using tree = await makeTree({
    "a.txt": "hello\n",
    "sub/b.txt": "bee",
    ".hidden": "secret",
  });
  await using server = await fileServer(tree.root, 'protocol = "raw"');
  const port = server.port("file");
  const cases: Array<[string, string]> = [
    ["a.txt\n", "hello\n"],
    ["a.txt\r\n", "hello\n"],
    ["sub/b.txt\n", "bee"],
    ["a.txt", "hello\n"],
    ["../etc/passwd\n", ""],
    ["/etc/passwd\n", ""],
    [".hidden\n", ""],
    ["sub\n", ""],
    ["missing\n", ""],
    ["\n", ""],
  ];
  for (const [request, expected] of cases) {
    await t.step(`${JSON.stringify(request)} → ${JSON.stringify(expected)}`, async () => {
      assertEquals(await rawGet(port, request), expected, "reply");
    });
  }
  assert(
    server.lines.some((l) => l.includes("op=get") && l.includes("outcome=forbidden")),
    "refusals logged",
  );
});

Deno.test('file protocol = "raw" works with "echo name | ncat host port"', async () => {
  await using tree = await makeTree({ "a.txt": "hello from switchboard\n" });
  await using server = await fileServer(tree.root, 'protocol = "raw"');
  const output = await new Deno.Command("bash", {
    args: ["-c", `echo a.txt | ncat 127.0.0.1 ${server.port("file")}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
  assertEquals(new TextDecoder().decode(output.stdout), "hello from switchboard\n", "stdout");
});
