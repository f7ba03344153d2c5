import assert from "node:assert/strict";
import { runCli, spawnDaemon, tempConfig } from "./_helpers.ts";
import { makeCert } from "./_tls_helpers.ts";

function fileListener(keys: string): string {
  return `[[listener]]
name = "files"
service = "file"
listen = "127.0.0.1:0"
root = "."
${keys}
`;
}

Deno.test("credentials: token_credential reads the token from $CREDENTIALS_DIRECTORY", async () => {
  await using config = await tempConfig(fileListener('token_credential = "file-token"'));
  const credentials = `${config.dir}/credentials`;
  await Deno.mkdir(credentials);
  // systemd's copy is readable by the service; the original may be root's 0600 file.
  await Deno.writeTextFile(`${credentials}/file-token`, "cr3dential\n");
  const env = { CREDENTIALS_DIRECTORY: credentials };
  const check = await runCli(["check", "-c", config.path], { env });
  assert.equal(check.code, 0, check.stderr);
  await using daemon = await spawnDaemon(["-c", config.path], { env, cwd: config.dir });
  const at = `127.0.0.1:${daemon.port("files")}`;
  const ok = await runCli(["ls", at, "--token", "cr3dential"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /switchboard\.toml/);
  const refused = await runCli(["ls", at, "--token", "wrong"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /unauthorized/);
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});

Deno.test("credentials: a missing directory or file is exit 78 naming both", async (t) => {
  await using config = await tempConfig(fileListener('token_credential = "file-token"'));
  await t.step("no $CREDENTIALS_DIRECTORY", async () => {
    const result = await runCli(["check", "-c", config.path]);
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      /token_credential: credential "file-token" cannot be read: \$CREDENTIALS_DIRECTORY is not set \(run under systemd with LoadCredential=file-token:/,
    );
  });
  await t.step("no such file in it", async () => {
    const result = await runCli(["serve", "-c", config.path], {
      env: { CREDENTIALS_DIRECTORY: config.dir },
    });
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      new RegExp(
        `credential "file-token" cannot be read from \\$CREDENTIALS_DIRECTORY \\(${config.dir}\\): "${config.dir}/file-token" does not exist`,
      ),
    );
  });
  await t.step("an empty credential", async () => {
    await Deno.writeTextFile(`${config.dir}/file-token`, "\n");
    const result = await runCli(["check", "-c", config.path], {
      env: { CREDENTIALS_DIRECTORY: config.dir },
    });
    assert.equal(result.code, 78);
    assert.match(result.stderr, /token_credential: credential "file-token" is empty/);
  });
});

Deno.test("credentials: one token source at most, and a credential name has no slash", async () => {
  const cases: [string, RegExp][] = [
    [
      'token = "a"\ntoken_credential = "b"',
      /give only one of "token", "token_file" and "token_credential"/,
    ],
    ['token_credential = "../etc/passwd"', /"\.\.\/etc\/passwd" is not a credential name/],
  ];
  for (const [keys, expected] of cases) {
    await using config = await tempConfig(fileListener(keys));
    const result = await runCli(["check", "-c", config.path], {
      env: { CREDENTIALS_DIRECTORY: config.dir },
    });
    assert.equal(result.code, 78, keys);
    assert.match(result.stderr, expected);
  }
});

Deno.test("credentials: cmd takes token_credential, and TLS takes cert_credential and key_credential", async () => {
  await using cert = await makeCert();
  await using config = await tempConfig(`[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:0"
token_credential = "cmd-token"
tls = { cert_credential = "tls.crt", key_credential = "tls.key" }
`);
  await Deno.writeTextFile(`${config.dir}/cmd-token`, "t0ken");
  await Deno.copyFile(cert.cert, `${config.dir}/tls.crt`);
  await Deno.copyFile(cert.key, `${config.dir}/tls.key`);
  await using daemon = await spawnDaemon(["-c", config.path], {
    env: { CREDENTIALS_DIRECTORY: config.dir },
  });
  const result = await runCli([
    "cmd",
    `127.0.0.1:${daemon.port("cmd")}`,
    "--token",
    "t0ken",
    "--ca",
    cert.cert,
    "--",
    "echo",
    "via credentials",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "via credentials\n");
  assert.ok(daemon.lines.some((l) => /tls=credential:tls\.crt/.test(l)));
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});
