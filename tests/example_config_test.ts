import assert from "node:assert/strict";
import { ROOT, runCli } from "./_helpers.ts";
import { OptionReader } from "../lib/option_reader.ts";
import { SERVICES } from "../handlers/mod.ts";

const EXAMPLE = `${ROOT}/config.example.toml`;

Deno.test("config.example.toml is valid", async () => {
  const result = await runCli(["check", "-c", EXAMPLE]);
  assert.equal(result.code, 0, result.stderr);
});

Deno.test("config.example.toml documents every key the daemon reads", async () => {
  const text = await Deno.readTextFile(EXAMPLE);
  const documented = (key: string): boolean => new RegExp(`^[# ]*${key} = `, "m").test(text);
  const common = ["log_level", "log_format", "shutdown_timeout", "metrics"];
  const missing = common.filter((key) => !documented(key));
  for (const service of SERVICES) {
    for (const transport of service.transports) {
      const reader = new OptionReader({}, {
        file: "x",
        prefix: "listener[0]",
        lines: new Map(),
        problems: [],
        baseDir: "/",
      });
      service.parseOptions(reader, transport, { hostname: "127.0.0.1", port: 1, scope: "one" });
      for (const key of reader.knownKeys) {
        if (!documented(key)) missing.push(`${service.name}/${transport}: ${key}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
