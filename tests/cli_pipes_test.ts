import assert from "node:assert/strict";
import { loadVerbs } from "../main.ts";
import {
  EVERY_SERVICE as N,
  freePort,
  runCliClosedStdout,
  startEveryService,
} from "./_cli_helpers.ts";
import { listenerToml, runCli, tempConfig } from "./_helpers.ts";

const VERBS = await loadVerbs();

async function withRoot(
  fill: (root: string) => Promise<void>,
): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir();
  await fill(path);
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("a closed stdout ends every verb quietly with exit 141", async (t) => {
  await using root = await withRoot(async (dir) => {
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(1 << 20).fill(65));
    for (let i = 0; i < 20; i++) await Deno.writeTextFile(`${dir}/file-${i}.txt`, "x");
  });
  await using server = await startEveryService(root.path);
  await using config = await tempConfig(
    listenerToml({ name: "e", service: "echo", listen: "127.0.0.1:0" }),
  );
  const at = (name: string): string => `127.0.0.1:${server.port(name)}`;
  const cases: [string, string[], string?][] = [
    ["--help", ["--help"]],
    ["help", ["help"]],
    ["--version", ["--version"]],
    ...VERBS.map((verb): [string, string[]] => [`${verb.name} --help`, [verb.name, "--help"]]),
    ["help echo", ["help", "echo"]],
    ["version", ["version"]],
    ["check", ["check", "-c", config.path]],
    ["check --json", ["check", "--json", "-c", config.path]],
    ["echo TEXT", ["echo", at(N.echoTcp), "hello"]],
    ["echo from stdin", ["echo", at(N.echoTcp)], "a\nb\n"],
    ["echo --udp", ["echo", "--udp", at(N.echoUdp), "hello"]],
    ["time", ["time", at(N.timeUdp)]],
    ["time --tcp", ["time", "--tcp", at(N.timeTcp)]],
    ["time --rfc868", ["time", "--rfc868", at(N.rfc868Udp)]],
    ["ls", ["ls", at(N.file)]],
    ["ls -l", ["ls", "-l", at(N.file)]],
    ["ls --json", ["ls", "--json", at(N.file)]],
    ["get -", ["get", at(N.file), "big.bin", "-"]],
    ["cmd", ["cmd", at(N.cmd), "--", "seq 1 100000"]],
    ["chat", ["chat", at(N.chatUdp), "--wait", "300ms"], "hi\n"],
  ];
  for (const [name, args, stdin] of cases) {
    await t.step(name, async () => {
      const result = await runCliClosedStdout(args, stdin === undefined ? {} : { stdin });
      assert.equal(result.stderr, "", "nothing on stderr, no stack trace");
      assert.equal(result.code, 141);
    });
  }
});

Deno.test("every verb that cannot connect says so in one line naming the address", async (t) => {
  const port = freePort();
  await using local = await withRoot((dir) => Deno.writeTextFile(`${dir}/up.txt`, "x"));
  const refused = (verb: string, address = `127.0.0.1:${port}`): string =>
    `switchboard ${verb}: cannot connect to ${address}: connection refused`;
  const cases: [string, string[], number, string][] = [
    ["echo", ["echo", `127.0.0.1:${port}`, "hi"], 1, refused("echo")],
    ["echo over IPv6", ["echo", `[::1]:${port}`, "hi"], 1, refused("echo", `[::1]:${port}`)],
    ["chat --tcp", ["chat", "--tcp", `127.0.0.1:${port}`], 1, refused("chat")],
    ["cmd", ["cmd", `127.0.0.1:${port}`, "--", "true"], 255, refused("cmd")],
    [
      "time --tcp",
      ["time", "--tcp", `127.0.0.1:${port}`],
      1,
      refused("time") +
      " (time services listen on UDP unless configured for TCP: try without --tcp)",
    ],
    ["get", ["get", `127.0.0.1:${port}`, "a.txt", `${local.path}/a.txt`], 1, refused("get")],
    ["put", ["put", `127.0.0.1:${port}`, `${local.path}/up.txt`], 1, refused("put")],
    ["ls", ["ls", `127.0.0.1:${port}`], 1, refused("ls")],
  ];
  for (const [name, args, code, line] of cases) {
    await t.step(name, async () => {
      const result = await runCli(args);
      assert.equal(result.stderr, line + "\n");
      assert.equal(result.code, code);
      assert.equal(result.stdout, "");
    });
  }
  // "echo hi" takes "hi" for the host: the reason says the host is unknown.
  const host = "no-such-host.invalid";
  for (
    const [verb, args] of [
      ["echo", ["echo", host, "hi"]],
      ["echo", ["echo", "--udp", host, "hi"]],
      ["time", ["time", `${host}:7037`]],
      ["chat", ["chat", host]],
      ["ls", ["ls", `${host}:7021`]],
    ] as const
  ) {
    await t.step(`${args.join(" ")}: unknown host`, async () => {
      const result = await runCli([...args]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `^switchboard ${verb}: cannot connect to ${host.replaceAll(".", "\\.")}:\\d+: ` +
            `unknown host "${host.replaceAll(".", "\\.")}" \\([^\\n]+\\)\\n$`,
        ),
      );
    });
  }
});
