import assert from "node:assert/strict";
import { join } from "node:path";
import { parseExecRequest, resolveCwd } from "../handlers/cmd/request.ts";
import { checkProgram } from "../lib/program_check.ts";
import { RequestError } from "../lib/framed_server.ts";
import type { FrameHeader } from "../lib/header_codec.ts";

const OPTIONS = {
  shell: ["/bin/sh", "-c"],
  timeoutMs: 30_000,
  maxStdin: 1000,
  allowCommands: undefined as string[] | undefined,
  allowShell: true,
};

function refusal(header: FrameHeader, options = OPTIONS): RequestError {
  try {
    parseExecRequest(header, options);
  } catch (error) {
    assert.ok(error instanceof RequestError, `not a RequestError: ${error}`);
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(header)}`);
}

Deno.test("exec requests become argv: shell text through the shell, argv as it is", () => {
  const shell = parseExecRequest({ op: "exec", cmd: "echo $HOME" }, OPTIONS);
  assert.deepEqual(shell.argv, ["/bin/sh", "-c", "echo $HOME"]);
  assert.equal(shell.shell, true);
  assert.equal(shell.stdin, "none");
  const argv = parseExecRequest({ op: "exec", argv: ["printf", "%s", "a b"], size: 3 }, OPTIONS);
  assert.deepEqual(argv.argv, ["printf", "%s", "a b"]);
  assert.equal(argv.stdin, "body");
  assert.equal(argv.size, 3);
  assert.equal(
    parseExecRequest({ op: "exec", cmd: "cat", stdin: "stream" }, OPTIONS).stdin,
    "stream",
  );
});

Deno.test("a request's timeout_ms may lower the listener's timeout, never raise it", () => {
  assert.equal(parseExecRequest({ op: "exec", cmd: "x", timeout_ms: 500 }, OPTIONS).timeoutMs, 500);
  assert.equal(
    parseExecRequest({ op: "exec", cmd: "x", timeout_ms: 99e9 }, OPTIONS).timeoutMs,
    30_000,
  );
  assert.equal(parseExecRequest({ op: "exec", cmd: "x", timeout_ms: 0.5 }, OPTIONS).timeoutMs, 1);
});

Deno.test("malformed exec requests are bad_request", async (t) => {
  const cases: [string, FrameHeader][] = [
    ["neither cmd nor argv", { op: "exec" }],
    ["both cmd and argv", { op: "exec", cmd: "ls", argv: ["ls"] }],
    ["cmd not a string", { op: "exec", cmd: ["ls"] }],
    ["argv not an array", { op: "exec", argv: "ls" }],
    ["argv empty", { op: "exec", argv: [] }],
    ["argv with a number", { op: "exec", argv: ["ls", 1] }],
    ["argv with null", { op: "exec", argv: ["ls", null] }],
    ["argv[0] empty", { op: "exec", argv: [""] }],
    ["NUL in cmd", { op: "exec", cmd: "ls\0x" }],
    ["NUL in argv", { op: "exec", argv: ["ls", "a\0"] }],
    ["timeout_ms a string", { op: "exec", cmd: "ls", timeout_ms: "5" }],
    ["timeout_ms negative", { op: "exec", cmd: "ls", timeout_ms: -1 }],
    ["timeout_ms zero", { op: "exec", cmd: "ls", timeout_ms: 0 }],
    ["cwd not a string", { op: "exec", cmd: "ls", cwd: 5 }],
    ["cwd empty", { op: "exec", cmd: "ls", cwd: "" }],
    ["stdin neither stream nor absent", { op: "exec", cmd: "ls", stdin: "body" }],
    ["stdin streamed and a body", { op: "exec", cmd: "ls", stdin: "stream", size: 3 }],
  ];
  for (const [name, header] of cases) {
    await t.step(name, () => assert.equal(refusal(header).code, "bad_request"));
  }
});

Deno.test("stdin over max_stdin is too_large", () => {
  assert.equal(refusal({ op: "exec", cmd: "cat", size: 1001 }).code, "too_large");
  assert.equal(parseExecRequest({ op: "exec", cmd: "cat", size: 1000 }, OPTIONS).size, 1000);
});

Deno.test("allow_commands limits argv[0] and refuses shell text unless allow_shell", () => {
  const strict = { ...OPTIONS, allowCommands: ["ls", "/usr/bin/id"], allowShell: false };
  assert.deepEqual(parseExecRequest({ op: "exec", argv: ["ls", "-l"] }, strict).argv, ["ls", "-l"]);
  assert.equal(refusal({ op: "exec", argv: ["rm", "-rf", "/"] }, strict).code, "forbidden");
  assert.equal(refusal({ op: "exec", argv: ["/bin/ls"] }, strict).code, "forbidden", "exact match");
  assert.equal(refusal({ op: "exec", cmd: "ls" }, strict).code, "forbidden");
  assert.equal(
    parseExecRequest({ op: "exec", cmd: "ls" }, { ...strict, allowShell: true }).shell,
    true,
  );
});

Deno.test("cwd resolves inside the workdir; escapes are forbidden", async (t) => {
  const root = await Deno.makeTempDir();
  const workdir = await Deno.realPath(root);
  try {
    await Deno.mkdir(join(workdir, "sub"));
    await Deno.writeTextFile(join(workdir, "file"), "x");
    await Deno.symlink("/tmp", join(workdir, "escape"));
    await Deno.symlink("sub", join(workdir, "inner"));
    const options = { workdir };
    await t.step(
      "default is the workdir",
      () => assert.equal(resolveCwd(undefined, options), workdir),
    );
    await t.step(
      "relative inside",
      () => assert.equal(resolveCwd("sub", options), join(workdir, "sub")),
    );
    await t.step("absolute inside", () => {
      assert.equal(resolveCwd(join(workdir, "sub"), options), join(workdir, "sub"));
    });
    await t.step(
      "symlink inside",
      () => assert.equal(resolveCwd("inner", options), join(workdir, "sub")),
    );
    const code = (cwd: string): string => {
      try {
        resolveCwd(cwd, options);
        return "accepted";
      } catch (error) {
        return (error as RequestError).code;
      }
    };
    await t.step("dot-dot out", () => assert.equal(code("../.."), "forbidden"));
    await t.step("absolute out", () => assert.equal(code("/etc"), "forbidden"));
    await t.step("symlink out", () => assert.equal(code("escape"), "forbidden"));
    await t.step(
      "missing outside does not reveal",
      () => assert.equal(code("/nonexistent"), "forbidden"),
    );
    await t.step("missing inside", () => assert.equal(code("nope"), "not_found"));
    await t.step("a file", () => assert.equal(code("file"), "bad_request"));
    await t.step("without workdir anything", () => {
      assert.equal(resolveCwd("/", {}), "/");
      assert.equal(resolveCwd(undefined, {}, "/srv"), "/srv");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("programs are looked up as a shell does: 127 not found, 126 not executable", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.writeTextFile(join(dir, "plain"), "#!/bin/sh\n", { mode: 0o644 });
    await Deno.writeTextFile(join(dir, "tool"), "#!/bin/sh\n", { mode: 0o755 });
    assert.equal(checkProgram("sh", "/usr/bin:/bin", "/"), undefined);
    assert.equal(checkProgram("tool", dir, "/"), undefined);
    assert.equal(checkProgram("./tool", "", dir), undefined);
    assert.deepEqual(checkProgram("nope-xyz", "/usr/bin:/bin", "/"), {
      code: 127,
      message: "nope-xyz: command not found",
    });
    assert.equal(checkProgram("/nonexistent/x", "", "/")?.code, 127);
    assert.equal(checkProgram(join(dir, "plain"), "", "/")?.code, 126);
    assert.equal(checkProgram("plain", dir, "/")?.code, 126);
    assert.equal(checkProgram(dir, "", "/")?.code, 126, "a directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
