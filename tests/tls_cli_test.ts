import assert from "node:assert/strict";
import { runCli, spawnDaemon, tempConfig } from "./_helpers.ts";
import { makeCert } from "./_tls_helpers.ts";

/** One line, naming the verb, the address, TLS and the reason. */
function assertTlsFailure(stderr: string, verb: string, address: string): void {
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.ok(stderr.startsWith(`switchboard ${verb}: `), stderr);
  for (const part of [address, "TLS", "self-signed certificate"]) {
    assert.ok(stderr.includes(part), `no "${part}" in: ${stderr}`);
  }
}

Deno.test("tls clients: every TCP verb talks TLS with --ca, refuses an untrusted server in one line", async (t) => {
  await using cert = await makeCert();
  await using other = await makeCert({ name: "other", cn: "other" });
  await using config = await tempConfig("");
  const root = `${config.dir}/files`;
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/hello.txt`, "hello over tls\n");
  const tls = `tls = { cert = "${cert.cert}", key = "${cert.key}" }`;
  await Deno.writeTextFile(
    config.path,
    `[[listener]]
name = "echo"
service = "echo"
listen = "127.0.0.1:0"
${tls}
[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:0"
token = "s3cret"
${tls}
[[listener]]
name = "file"
service = "file"
listen = "127.0.0.1:0"
root = "${root}"
allow_upload = true
${tls}
[[listener]]
name = "time"
service = "time"
transport = "tcp"
listen = "127.0.0.1:0"
${tls}
[[listener]]
name = "chat"
service = "chat"
transport = "tcp"
listen = "127.0.0.1:0"
${tls}
`,
  );
  await using daemon = await spawnDaemon(["-c", config.path]);
  const at = (name: string): string => `127.0.0.1:${daemon.port(name)}`;
  const ca = ["--ca", cert.cert];

  await t.step("echo --ca", async () => {
    const result = await runCli(["echo", at("echo"), "hi", "there", ...ca]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "hi there\n");
  });
  await t.step("echo --tls against a self-signed server: exit 1, one line", async () => {
    const result = await runCli(["echo", at("echo"), "hi", "--tls"]);
    assert.equal(result.code, 1);
    assertTlsFailure(result.stderr, "echo", at("echo"));
    assert.match(result.stderr, /\(trust it with --ca FILE\)\n$/);
  });
  await t.step("echo --ca with another certificate: exit 1", async () => {
    const result = await runCli(["echo", at("echo"), "hi", "--ca", other.cert]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  });
  await t.step("echo --insecure: works, with a warning", async () => {
    const result = await runCli(["echo", at("echo"), "hi", "--insecure"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "hi\n");
    assert.match(result.stderr, /^switchboard echo: warning: --insecure: .*not verified/);
  });
  await t.step("echo --ca on a missing file: exit 1, one line", async () => {
    const result = await runCli(["echo", at("echo"), "hi", "--ca", `${config.dir}/nope.pem`]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^switchboard echo: cannot connect to 127\.0\.0\.1:\d+: TLS: cannot read the CA file ".*nope\.pem": does not exist\n$/,
    );
  });
  await t.step("usage: --udp with --tls, --ca with --insecure", async () => {
    assert.equal((await runCli(["echo", at("echo"), "--udp", "--tls", "x"])).code, 64);
    assert.equal((await runCli(["echo", at("echo"), "--insecure", ...ca, "x"])).code, 64);
  });
  await t.step("cmd --ca runs; an untrusted server is exit 255", async () => {
    const ok = await runCli(["cmd", at("cmd"), "--token", "s3cret", ...ca, "--", "echo", "remote"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "remote\n");
    const bad = await runCli(["cmd", at("cmd"), "--token", "s3cret", "--tls", "--", "true"]);
    assert.equal(bad.code, 255);
    assertTlsFailure(bad.stderr, "cmd", at("cmd"));
  });
  await t.step("ls, get and put --ca", async () => {
    const ls = await runCli(["ls", at("file"), ...ca]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /hello\.txt/);
    const get = await runCli(["get", at("file"), "hello.txt", "-", ...ca]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "hello over tls\n");
    const local = `${config.dir}/up.txt`;
    await Deno.writeTextFile(local, "uploaded over tls\n");
    const put = await runCli(["put", at("file"), local, "up.txt", ...ca]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(await Deno.readTextFile(`${root}/up.txt`), "uploaded over tls\n");
    const refused = await runCli(["ls", at("file"), "--tls"]);
    assert.equal(refused.code, 1);
    assertTlsFailure(refused.stderr, "ls", at("file"));
  });
  await t.step("time --ca (TLS implies TCP)", async () => {
    const result = await runCli(["time", at("time"), "%Y", ...ca]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d{4}\n$/);
  });
  await t.step("chat --ca (TLS implies TCP)", async () => {
    const result = await runCli(["chat", at("chat"), "--name", "alice", "--wait", "200ms", ...ca], {
      stdin: "/who\n",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\* members: alice/);
  });
  daemon.child.kill("SIGTERM");
  assert.equal((await daemon.exit()).code, 0);
});
