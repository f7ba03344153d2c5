import assert from "node:assert/strict";
import { listenerToml, runCli, startServer, tempConfig } from "./_helpers.ts";

Deno.test("check --json prints the listeners as one JSON document, exit 0", async () => {
  await using config = await tempConfig(
    listenerToml({
      name: "e",
      service: "echo",
      listen: ":7007",
      max_connections: 9,
      transform: "upper",
    }) +
      listenerToml({ name: "t", service: "time", listen: "127.0.0.1:7037", timezone: "UTC" }),
  );
  const result = await runCli(["check", "--json", "-c", config.path]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const report = JSON.parse(result.stdout);
  assert.equal(report.config, config.path);
  assert.equal(report.valid, true);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.listeners[0], {
    name: "e",
    service: "echo",
    transport: "tcp",
    listen: ":7007",
    host: "::",
    port: 7007,
    enabled: true,
    line: 1,
    max_connections: 9,
    idle_timeout_ms: 300_000,
    allow: [],
    deny: [],
    settings: "transform=upper",
  });
  assert.equal(report.listeners[1].transport, "udp");
  assert.equal(report.listeners[1].max_connections, undefined, "no TCP limits on UDP");
  assert.match(report.listeners[1].settings, /timezone=UTC/);
});

Deno.test("check --json prints every problem with file, line and key, exit 78", async () => {
  await using config = await tempConfig(
    '[daemon]\nlog_level = "chatty"\n\n[[listener]]\nservice = "echo"\nlisten = "nowhere"\n',
  );
  const result = await runCli(["check", "--json", "-c", config.path]);
  assert.equal(result.code, 78);
  assert.equal(result.stderr, "", "the problems are in the document, not on stderr");
  const report = JSON.parse(result.stdout);
  assert.equal(report.valid, false);
  assert.deepEqual(report.listeners, []);
  assert.equal(report.problems.length, 2);
  assert.deepEqual(report.problems[0], {
    file: config.path,
    line: 2,
    key: "daemon.log_level",
    message: report.problems[0].message,
  });
  assert.match(report.problems[0].message, /unknown value "chatty"/);
  assert.equal(report.problems[1].line, 6);
  assert.equal(report.problems[1].key, "listener[0].listen");

  const missing = await runCli(["check", "--json", "-c", "/nonexistent/switchboard.toml"]);
  assert.equal(missing.code, 78);
  const unreadable = JSON.parse(missing.stdout);
  assert.equal(unreadable.valid, false);
  assert.equal(unreadable.problems[0].line, null);
  assert.match(unreadable.problems[0].message, /cannot read config/);
});

Deno.test("ls --json and ls -l give exact byte sizes; the table rounds", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${root}/big.bin`, new Uint8Array(1_234_567));
    await Deno.mkdir(`${root}/sub`);
    await Deno.writeTextFile(`${root}/sub/a.txt`, "hello");
    const mtime = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    await Deno.utime(`${root}/big.bin`, mtime, mtime);
    await using server = await startServer(
      listenerToml({ name: "files", service: "file", listen: "127.0.0.1:0", root }),
    );
    const addr = `127.0.0.1:${server.port("files")}`;

    const json = await runCli(["ls", "--json", addr]);
    assert.equal(json.code, 0, json.stderr);
    const listing = JSON.parse(json.stdout);
    assert.equal(listing.path, "");
    assert.deepEqual(
      listing.entries.map((e: Record<string, unknown>) => [e.name, e.type, e.size]),
      [
        ["big.bin", "file", 1_234_567],
        ["sub", "dir", 0],
      ],
    );
    assert.equal(listing.entries[0].mtime, mtime.getTime());

    const one = JSON.parse((await runCli(["ls", "--json", addr, "sub/a.txt"])).stdout);
    assert.deepEqual(one.entries.map((e: Record<string, unknown>) => [e.name, e.size]), [[
      "a.txt",
      5,
    ]]);

    const long = await runCli(["ls", "-l", addr]);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stdout, /^file\s+1234567\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+big\.bin\n/);
    assert.match(long.stdout, /\ndir\s+-\s+.*\ssub\/\n$/);

    const table = await runCli(["ls", addr]);
    assert.match(table.stdout, /^file\s+1\.2MiB\s/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
