import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, ConfigError, parseConfig } from "../lib/config.ts";
import { defaultConfig, EMBEDDED, findConfigSource, loadConfig } from "../lib/config_file.ts";
import { formatProblem } from "../lib/option_reader.ts";
import { defineService, type Service } from "../lib/service.ts";
import { workerCount } from "../lib/worker_config.ts";
import { SERVICES } from "../handlers/mod.ts";

/** A TCP-only service with a path option, to test what echo cannot show. */
const tcpOnly: Service = defineService<{ root?: string }>({
  name: "tcponly",
  transports: ["tcp"],
  defaultPort: 9,
  parseOptions: (reader) => ({ root: reader.path("root", { mustBe: "dir" }) }),
  open: () => ({ stream: () => Promise.resolve() }),
});
const services = [...SERVICES, tcpOnly];

function parse(text: string): Config {
  return parseConfig(text, "/etc/sb.toml", { services, baseDir: "/" });
}

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(formatProblem);
    throw error;
  }
  throw new Error("Expected a ConfigError");
}

Deno.test("a minimal listener gets the documented defaults", () => {
  const config = parse('[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:7007"\n');
  assert.deepEqual(config.daemon, {
    logLevel: "info",
    logFormat: "text",
    shutdownTimeoutMs: 10_000,
    workers: 1,
  });
  const [listener] = config.listeners;
  assert.equal(listener!.name, "echo-tcp-7007");
  assert.equal(listener!.transport, "tcp");
  assert.equal(listener!.enabled, true);
  assert.equal(listener!.maxConnections, 512);
  assert.equal(listener!.idleTimeoutMs, 300_000);
  assert.equal(listener!.headerTimeoutMs, 10_000);
  assert.deepEqual([listener!.allow, listener!.deny], [[], []]);
  assert.deepEqual(listener!.options, { transform: "none" });
  assert.equal(listener!.line, 1);
});

Deno.test("every key is read with its type, unit and default", () => {
  const config = parse(`
[daemon]
log_level = "debug"
log_format = "json"
shutdown_timeout = "2500ms"

[[listener]]
name = "up"
service = "echo"
transport = "udp"
listen = ":7007"
enabled = false
allow = ["127.0.0.0/8", "::1"]
deny = ["127.0.0.2"]
transform = "upper"

[[listener]]
service = "echo"
listen = "[::1]:7008"
max_connections = 3
idle_timeout = "1m30s"
`);
  assert.deepEqual(config.daemon, {
    logLevel: "debug",
    logFormat: "json",
    shutdownTimeoutMs: 2500,
    workers: 1,
  });
  const [up, second] = config.listeners;
  assert.equal(up!.name, "up");
  assert.equal(up!.transport, "udp");
  assert.equal(up!.enabled, false);
  assert.deepEqual(up!.address, { hostname: "::", port: 7007, scope: "all" });
  assert.deepEqual(up!.allow, ["127.0.0.0/8", "::1"]);
  assert.deepEqual(up!.deny, ["127.0.0.2"]);
  assert.deepEqual(up!.options, { transform: "upper" });
  assert.equal(second!.name, "echo-tcp-7008");
  assert.equal(second!.maxConnections, 3);
  assert.equal(second!.idleTimeoutMs, 90_000);
});

Deno.test("each kind of mistake is reported with file, line and key path", async (t) => {
  const cases: { name: string; toml: string; expected: string }[] = [
    {
      name: "unknown key, with a suggestion",
      toml: '[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:1"\ntranform = "upper"\n',
      expected: '/etc/sb.toml:4: listener[0].tranform: unknown key (did you mean "transform"?)',
    },
    {
      name: "unknown daemon key, with a suggestion",
      toml: '[daemon]\nlog_levl = "info"\n',
      expected: '/etc/sb.toml:2: daemon.log_levl: unknown key (did you mean "log_level"?)',
    },
    {
      name: "unknown top-level table",
      toml: "[deamon]\n",
      expected: '/etc/sb.toml:1: deamon: unknown key (did you mean "daemon"?)',
    },
    {
      name: "wrong type",
      toml: '[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:1"\nmax_connections = "10"\n',
      expected:
        '/etc/sb.toml:4: listener[0].max_connections: expected an integer, found the string "10"',
    },
    {
      name: "value out of range",
      toml: '[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:1"\nmax_connections = 0\n',
      expected: "/etc/sb.toml:4: listener[0].max_connections: 0 is below the minimum 1",
    },
    {
      name: "bad choice, with a suggestion",
      toml: '[daemon]\nlog_level = "warning"\n',
      expected:
        '/etc/sb.toml:2: daemon.log_level: unknown value "warning" (did you mean "warn"?): expected "error", "warn", "info" or "debug"',
    },
    {
      name: "bad duration",
      toml: '[daemon]\nshutdown_timeout = "10"\n',
      expected:
        '/etc/sb.toml:2: daemon.shutdown_timeout: Cannot parse duration "10": expected a number with a unit (ms, s, m, h, d), e.g. "10s"',
    },
    {
      name: "bad address",
      toml: '[[listener]]\nservice = "echo"\nlisten = "localhost"\n',
      expected:
        '/etc/sb.toml:3: listener[0].listen: Cannot parse address "localhost": expected "host:port", "[v6]:port" or ":port"',
    },
    {
      name: "bad CIDR, pointing at the array",
      toml:
        '[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:1"\nallow = ["10.0.0.0/8", "10.0.0.0/40"]\n',
      expected:
        '/etc/sb.toml:4: listener[0].allow[1]: Cannot parse CIDR "10.0.0.0/40": expected an address or address/prefix, e.g. "10.0.0.0/8"',
    },
    {
      name: "unknown service, with a suggestion",
      toml: '[[listener]]\nservice = "ecko"\nlisten = "127.0.0.1:1"\n',
      expected: '/etc/sb.toml:2: listener[0].service: unknown value "ecko" (did you mean "echo"?)',
    },
    {
      name: "transport the service does not support",
      toml: '[[listener]]\nservice = "tcponly"\ntransport = "udp"\nlisten = "127.0.0.1:1"\n',
      expected:
        '/etc/sb.toml:3: listener[0].transport: "udp" is not supported by the "tcponly" service (it supports "tcp")',
    },
    {
      name: "missing required keys",
      toml: '[[listener]]\nname = "x"\n',
      expected: "/etc/sb.toml:1: listener[0].service: is required",
    },
    {
      name: "duplicate name",
      toml:
        '[[listener]]\nname = "a"\nservice = "echo"\nlisten = "127.0.0.1:1"\n\n[[listener]]\nname = "a"\nservice = "echo"\nlisten = "127.0.0.1:2"\n',
      expected: '/etc/sb.toml:7: listener[1].name: duplicate name "a" (also used at line 1)',
    },
    {
      name: "duplicate address on one transport, through :port overlap",
      toml:
        '[[listener]]\nname = "a"\nservice = "echo"\nlisten = ":7007"\n\n[[listener]]\nname = "b"\nservice = "echo"\nlisten = "127.0.0.1:7007"\n',
      expected:
        '/etc/sb.toml:9: listener[1].listen: 127.0.0.1:7007/tcp overlaps "a" (:7007, line 1)',
    },
    {
      name: "a TCP-only limit on a UDP listener",
      toml:
        '[[listener]]\nservice = "echo"\ntransport = "udp"\nlisten = "127.0.0.1:1"\nmax_connections = 5\n',
      expected: "/etc/sb.toml:5: listener[0].max_connections: has no effect on a udp listener",
    },
    {
      name: "header_timeout on a UDP listener",
      toml:
        '[[listener]]\nservice = "time"\ntransport = "udp"\nlisten = "127.0.0.1:1"\nheader_timeout = "5s"\n',
      expected: "/etc/sb.toml:5: listener[0].header_timeout: has no effect on a udp listener",
    },
    {
      name: "header_timeout that is not a duration",
      toml: '[[listener]]\nservice = "echo"\nlisten = "127.0.0.1:1"\nheader_timeout = "soon"\n',
      expected: "/etc/sb.toml:4: listener[0].header_timeout:",
    },
    {
      name: "listener written as a single table",
      toml: '[listener]\nservice = "echo"\n',
      expected:
        "/etc/sb.toml:1: listener: must be an array of tables: write each one as [[listener]]",
    },
    {
      name: "invalid name",
      toml: '[[listener]]\nname = "a b"\nservice = "echo"\nlisten = "127.0.0.1:1"\n',
      expected:
        '/etc/sb.toml:2: listener[0].name: "a b" is not a valid name: use letters, digits, ".", "_" and "-" (at most 64)',
    },
    {
      name: "a path that must be a directory",
      toml: '[[listener]]\nservice = "tcponly"\nlisten = "127.0.0.1:1"\nroot = "no/such/dir"\n',
      expected: '/etc/sb.toml:4: listener[0].root: "/no/such/dir" does not exist',
    },
    {
      name: "TOML syntax error",
      toml: '[daemon]\nlog_level = "info"\nshutdown_timeout = \n',
      expected: "/etc/sb.toml:3: invalid TOML",
    },
  ];
  for (const { name, toml, expected } of cases) {
    await t.step(name, () => {
      const found = problems(toml);
      assert.ok(
        found.some((line) => line.startsWith(expected)),
        `expected a line starting with:\n  ${expected}\ngot:\n  ${found.join("\n  ")}`,
      );
    });
  }
});

Deno.test("every problem of a file is reported at once, in line order", () => {
  const found = problems(`[daemon]
log_level = "loud"

[[listener]]
service = "echo"
listen = "127.0.0.1:99999"
transfrom = "upper"

[[listener]]
service = "nope"
listen = "127.0.0.1:1"

[[listener]]
service = "echo"
listen = "127.0.0.1:2"
deny = ["300.0.0.1"]
`);
  assert.equal(found.length, 5, found.join("\n"));
  assert.deepEqual(found.map((line) => line.split(":")[1]), ["2", "6", "7", "10", "16"]);
});

Deno.test("duplicates are reported beside the other problems of the listeners involved", () => {
  const found = problems(`[[listener]]
name = "x"
service = "echo"
listen = ":17001"
transform = "lower"

[[listener]]
name = "x"
service = "echo"
listen = "0.0.0.0:17001"
transfrom = "upper"

[[listener]]
service = "nope"
listen = "127.0.0.1:17002"

[[listener]]
service = "nope"
listen = "127.0.0.1:17003"
`);
  assert.deepEqual(found.map((line) => line.split(":")[1]), ["5", "8", "10", "11", "14", "18"]);
  assert.match(found[1]!, /listener\[1\]\.name: duplicate name "x"/);
  assert.match(found[2]!, /listener\[1\]\.listen: 0\.0\.0\.0:17001\/tcp overlaps "x"/);
  assert.ok(!found.some((line) => line.includes('duplicate name ""')), found.join("\n"));
});

Deno.test("a duplicate name is found on a listener whose service is unknown", () => {
  const found = problems(`[[listener]]
name = "a"
service = "echo"
listen = "127.0.0.1:17100"

[[listener]]
name = "a"
service = "ecko"
listen = "127.0.0.1:17101"

[[listener]]
name = "a"
service = "echo"
listen = "nowhere"
`);
  assert.equal(found.length, 4, found.join("\n"));
  assert.match(found[0]!, /:7: listener\[1\]\.name: duplicate name "a" \(also used at line 1\)/);
  assert.match(found[1]!, /:8: listener\[1\]\.service: unknown value "ecko"/);
  assert.match(found[2]!, /:12: listener\[2\]\.name: duplicate name "a" \(also used at line 1\)/);
  assert.match(found[3]!, /:14: listener\[2\]\.listen: Cannot parse address/);
});

Deno.test("disabled listeners do not claim their address", () => {
  const config = parse(`
[[listener]]
name = "old"
service = "echo"
listen = "127.0.0.1:7007"
enabled = false

[[listener]]
name = "new"
service = "echo"
listen = "127.0.0.1:7007"
`);
  assert.deepEqual(config.listeners.map((l) => l.name), ["old", "new"]);
});

Deno.test("the same port on tcp and udp is not a duplicate", () => {
  const config = parse(`
[[listener]]
service = "echo"
listen = ":7007"
[[listener]]
service = "echo"
transport = "udp"
listen = ":7007"
`);
  assert.deepEqual(config.listeners.map((l) => l.name), ["echo-tcp-7007", "echo-udp-7007"]);
});

Deno.test("a config without enabled listeners is valid but noted", () => {
  assert.deepEqual(parse("").notes, ["No listener is enabled"]);
});

Deno.test("the embedded default listens on loopback only and says what it skipped", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const config = await loadConfig({ kind: "embedded" }, { services, env: () => undefined, cwd });
    assert.equal(config.file, EMBEDDED);
    assert.ok(config.listeners.length >= 2);
    for (const listener of config.listeners) {
      assert.equal(listener.address.hostname, "127.0.0.1", listener.name);
    }
    assert.deepEqual(
      config.listeners.map((l) => `${l.service}/${l.transport}:${l.address.port}`),
      ["echo/tcp:7007", "echo/udp:7007", "chat/udp:7008", "time/udp:7037"],
    );
    assert.ok(config.notes.some((n) => n.includes("file service skipped")), config.notes.join());
    assert.ok(config.notes.some((n) => n.includes("cmd service skipped (SWITCHBOARD_TOKEN")));
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("the embedded default adds file on ./files and cmd with SWITCHBOARD_TOKEN", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(cwd, "files"));
    const env = (name: string): string | undefined =>
      name === "SWITCHBOARD_TOKEN" ? "s3cret" : undefined;
    const { text, notes } = defaultConfig(SERVICES, { env, cwd });
    assert.ok(!notes.some((n) => n.includes("file service skipped")));
    assert.ok(!notes.some((n) => n.includes("cmd service skipped")));
    assert.ok(text.includes('service = "file"'));
    assert.ok(text.includes('service = "cmd"') && text.includes('token = "s3cret"'));
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("the config is searched in the documented order", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const none = (): undefined => undefined;
    const search = ["switchboard.toml", join(cwd, "etc.toml")];
    assert.deepEqual(findConfigSource(undefined, { env: none, cwd, searchPaths: search }), {
      kind: "embedded",
    });
    await Deno.writeTextFile(join(cwd, "etc.toml"), "");
    assert.equal(
      (findConfigSource(undefined, { env: none, cwd, searchPaths: search }) as { path: string })
        .path,
      join(cwd, "etc.toml"),
    );
    await Deno.writeTextFile(join(cwd, "switchboard.toml"), "");
    assert.equal(
      (findConfigSource(undefined, { env: none, cwd, searchPaths: search }) as { path: string })
        .path,
      join(cwd, "switchboard.toml"),
    );
    const env = (name: string): string | undefined =>
      name === "SWITCHBOARD_CONFIG" ? "from-env.toml" : undefined;
    assert.deepEqual(findConfigSource(undefined, { env, cwd, searchPaths: search }), {
      kind: "file",
      path: join(cwd, "from-env.toml"),
      why: "SWITCHBOARD_CONFIG",
    });
    assert.deepEqual(findConfigSource("given.toml", { env, cwd, searchPaths: search }), {
      kind: "file",
      path: join(cwd, "given.toml"),
      why: "-c",
    });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a missing -c file is a config error, not a fallback", async () => {
  const error = await loadConfig({ kind: "file", path: "/nonexistent/sb.toml", why: "-c" }, {
    services,
  }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof ConfigError);
  assert.equal(
    formatProblem(error.problems[0]!),
    "/nonexistent/sb.toml: cannot read config (given by -c): no such file",
  );
});

Deno.test("the embedded default comes from the service table and each service's default port", () => {
  const hello = defineService({
    name: "hello",
    transports: ["tcp", "udp"],
    defaultPort: 7100,
    embeddedDefault: ({ env }) =>
      env("HELLO") === "yes"
        ? { listeners: [{ name: "hi", transport: "udp" }] }
        : { listeners: [], note: "hello skipped (HELLO is not yes)" },
    parseOptions: () => ({}),
    open: () => ({ datagram: () => {} }),
  });
  const off = defaultConfig([hello], { env: () => undefined, cwd: "/" });
  assert.deepEqual(off.notes, ["Embedded default: hello skipped (HELLO is not yes)"]);
  assert.ok(!off.text.includes("[[listener]]"));
  const on = defaultConfig([hello], { env: (name) => name === "HELLO" ? "yes" : undefined });
  const config = parseConfig(on.text, EMBEDDED, { services: [hello], baseDir: "/" });
  assert.deepEqual(
    config.listeners.map((l) => `${l.name} ${l.service}/${l.transport} ${l.listen}`),
    ["hi hello/udp 127.0.0.1:7100"],
  );
});

Deno.test('[daemon] workers is a count from 1 to 256 or "auto" (one per core)', () => {
  assert.equal(parse("[daemon]\nworkers = 4\n").daemon.workers, 4);
  assert.equal(parse('[daemon]\nworkers = "auto"\n').daemon.workers, "auto");
  assert.equal(workerCount("auto"), navigator.hardwareConcurrency);
  assert.equal(workerCount(undefined), 1);
  assert.deepEqual(problems("[daemon]\nworkers = 257\n"), [
    "/etc/sb.toml:2: daemon.workers: 257 is over the maximum 256",
  ]);
});
