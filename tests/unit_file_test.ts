import assert from "node:assert/strict";
import { ROOT } from "./_helpers.ts";

const SERVICE = `${ROOT}/deploy/switchboard.service`;
const SOCKET = `${ROOT}/deploy/switchboard.socket`;
const decoder = new TextDecoder();

async function run(program: string, args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  return { code: output.code, out: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

/** Directives of a unit file, in order, with comments and blank lines dropped. */
function directives(text: string): [string, string][] {
  return text.split("\n").filter((line) => /^[A-Za-z]+=/.test(line)).map((line) => {
    const at = line.indexOf("=");
    return [line.slice(0, at), line.slice(at + 1)];
  });
}

Deno.test("unit: systemd-analyze verify finds nothing wrong with the service and socket units", async () => {
  // verify checks that ExecStart's program exists: point the units at a stand-in.
  const dir = await Deno.makeTempDir({ prefix: "switchboard-unit-" });
  try {
    const program = `${dir}/switchboard`;
    await Deno.writeTextFile(program, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    for (const source of [SERVICE, SOCKET]) {
      const text = await Deno.readTextFile(source);
      await Deno.writeTextFile(
        `${dir}/${source.split("/").pop()}`,
        text.replaceAll("/usr/local/bin/switchboard", program),
      );
    }
    const result = await run("systemd-analyze", [
      "verify",
      `${dir}/switchboard.socket`,
      `${dir}/switchboard.service`,
    ]);
    assert.equal(result.code, 0, result.out);
    assert.equal(result.out.trim(), "", "no warning either");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unit: systemd-analyze security --offline=yes rates the service's exposure at most 2.0", async () => {
  const result = await run("systemd-analyze", ["security", "--offline=yes", SERVICE]);
  assert.equal(result.code, 0, result.out);
  const level = Number(
    /Overall exposure level for switchboard\.service: (\d+\.\d+)/.exec(result.out)?.[1],
  );
  assert.ok(level <= 2.0, `exposure ${level}\n${result.out}`);
});

Deno.test("unit: reload checks the new config before signalling, and the hardening is in place", async () => {
  const all = directives(await Deno.readTextFile(SERVICE));
  const values = (key: string): string[] => all.filter(([k]) => k === key).map(([, v]) => v);
  assert.deepEqual(values("ExecReload"), [
    "/usr/local/bin/switchboard check -c /etc/switchboard/switchboard.toml",
    "/bin/kill -HUP $MAINPID",
  ]);
  for (
    const [key, value] of [
      ["DynamicUser", "yes"],
      ["UMask", "0027"],
      ["ProtectProc", "invisible"],
      ["ProcSubset", "pid"],
      ["PrivateMounts", "yes"],
      ["ProtectSystem", "strict"],
      ["SystemCallErrorNumber", "EPERM"],
      ["Type", "notify"],
    ]
  ) assert.deepEqual(values(key!), [value], key);
  assert.ok(values("SystemCallFilter").some((v) => v.startsWith("@system-service")));
  const text = await Deno.readTextFile(SERVICE);
  assert.match(text, /^#ReadWritePaths=|^# +ReadWritePaths=/m, "upload roots are shown");
  assert.match(text, /^#LoadCredential=cmd-token:/m, "credentials are shown");
  const socket = directives(await Deno.readTextFile(SOCKET));
  assert.ok(socket.some(([k, v]) => k === "FileDescriptorName" && v === "echo"));
  assert.ok(socket.some(([k, v]) => k === "Service" && v === "switchboard.service"));
});
