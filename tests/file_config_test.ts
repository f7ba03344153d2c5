import { join } from "node:path";
import { runCli } from "./_helpers.ts";
import { assert, assertEquals, makeTree } from "./_file_helpers.ts";

async function check(
  dir: string,
  listener: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = join(dir, "check.toml");
  await Deno.writeTextFile(
    path,
    `[[listener]]\nservice = "file"\nlisten = "127.0.0.1:0"\n${listener}\n`,
  );
  return await runCli(["check", "-c", path]);
}

Deno.test("file config: root must be an existing directory; conflicting keys are reported", async (t) => {
  await using tree = await makeTree({ "a.txt": "a" });
  const cases: Array<[string, string]> = [
    ["", "root: is required"],
    [`root = ${JSON.stringify(join(tree.base, "nope"))}`, "does not exist"],
    [`root = ${JSON.stringify(join(tree.root, "a.txt"))}`, "is not a directory"],
    [`root = "root"\nprotocol = "raw"\ntoken = "t"`, 'token: needs protocol = "framed"'],
    [
      `root = "root"\nprotocol = "raw"\nallow_upload = true`,
      'allow_upload: needs protocol = "framed"',
    ],
    [`root = "root"\nallow_uploads = true`, 'unknown key (did you mean "allow_upload"?)'],
    [`root = "root"\nmax_list = 0`, "max_list: 0 is below the minimum 1"],
    [`root = "root"\nmax_upload = "lots"`, "max_upload"],
    [`root = "root"\nprotocol = "http"`, 'unknown value "http"'],
    [`root = "root"\ntransport = "udp"`, "transport"],
  ];
  for (const [keys, message] of cases) {
    await t.step(`${keys.replaceAll("\n", "; ") || "(no root)"} → ${message}`, async () => {
      const result = await check(tree.base, keys);
      assertEquals(result.code, 78, `exit code; ${result.stdout}${result.stderr}`);
      assert(result.stderr.includes(message), result.stderr);
      assert(
        /check\.toml:\d+: listener\[0\]/.test(result.stderr),
        `file, line and key: ${result.stderr}`,
      );
    });
  }
  await t.step("a valid listener is described", async () => {
    const result = await check(tree.base, `root = "root"\nallow_upload = true\ntoken = "t"`);
    assertEquals(result.code, 0, result.stderr);
    assert(result.stdout.includes(`root=${tree.root} upload max=1GiB token`), result.stdout);
  });
});

Deno.test("the embedded default serves ./files read-only on 127.0.0.1:7021", async () => {
  await using tree = await makeTree();
  await Deno.mkdir(join(tree.base, "files"));
  const result = await runCli(["check"], { cwd: tree.base, env: { SWITCHBOARD_CONFIG: "" } });
  assertEquals(result.code, 0, result.stderr);
  const line = result.stdout.split("\n").find((l) => l.startsWith("file "));
  assert(line?.includes("127.0.0.1:7021") && line.includes("read-only"), result.stdout);
});
