/**
 * deploy/install.sh into a temporary prefix: the layout, the paths written
 * into the units, dry runs, idempotence, a kept config and uninstalling.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_helpers.ts";

const SCRIPT = join(ROOT, "deploy", "install.sh");

async function install(...args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command("sh", {
    args: [SCRIPT, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: output.code, out: text.decode(output.stdout) + text.decode(output.stderr) };
}

function filesUnder(dir: string, base = dir): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...filesUnder(path, base));
    else found.push(path.slice(base.length + 1));
  }
  return found.sort();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("install.sh lays out the executable, config, units, man page and completion under --prefix", async () => {
  const base = await Deno.makeTempDir({ prefix: "sb-install-" });
  const prefix = join(base, "root");
  const systemWide = exists("/usr/local/bin/switchboard");
  try {
    // A dry run says what it would do and writes nothing.
    const dry = await install("--prefix", prefix, "--dry-run");
    assert.equal(dry.code, 0, dry.out);
    assert.match(dry.out, new RegExp(`would install ${prefix}/bin/switchboard`));
    assert.equal(exists(prefix), false, "a dry run created the prefix");

    const first = await install("--prefix", prefix);
    assert.equal(first.code, 0, first.out);
    const expected = [
      "bin/switchboard",
      "etc/switchboard/switchboard.toml",
      "lib/systemd/system/switchboard.service",
      ...exists(join(ROOT, "deploy", "switchboard.socket"))
        ? ["lib/systemd/system/switchboard.socket"]
        : [],
      "share/man/man1/switchboard.1",
      "share/bash-completion/completions/switchboard",
    ].sort();
    assert.deepEqual(filesUnder(prefix), expected);
    assert.equal(exists("/usr/local/bin/switchboard"), systemWide, "installed outside the prefix");

    const binary = join(prefix, "bin", "switchboard");
    assert.equal((Deno.statSync(binary).mode ?? 0) & 0o777, 0o755);
    const unit = Deno.readTextFileSync(join(prefix, "lib/systemd/system/switchboard.service"));
    const config = join(prefix, "etc/switchboard/switchboard.toml");
    assert.match(unit, new RegExp(`^ExecStart=${binary} serve -c ${config}$`, "m"));
    assert.ok(!unit.includes("/usr/local/bin/switchboard"), "the unit names the default path");

    // The installed executable runs on its own and accepts the installed config.
    const check = await new Deno.Command(binary, {
      args: ["check", "-c", config],
      cwd: base,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));

    // Again: nothing changes, and a config the user edited is kept.
    Deno.writeTextFileSync(config, "# mine\n", { append: true });
    const mtime = Deno.statSync(binary).mtime?.getTime();
    const second = await install("--prefix", prefix);
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /unchanged .*bin\/switchboard/);
    assert.match(second.out, /kept .*switchboard\.toml/);
    assert.equal(Deno.statSync(binary).mtime?.getTime(), mtime);
    assert.ok(Deno.readTextFileSync(config).endsWith("# mine\n"));
    assert.deepEqual(filesUnder(prefix), expected);

    const removed = await install("--prefix", prefix, "--uninstall");
    assert.equal(removed.code, 0, removed.out);
    assert.deepEqual(filesUnder(prefix), ["etc/switchboard/switchboard.toml"]);
    assert.match(removed.out, /kept .*switchboard\.toml/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("install.sh refuses an unknown argument with usage and exit 64", async () => {
  const result = await install("--bogus");
  assert.equal(result.code, 64);
  assert.match(result.out, /unknown argument "--bogus"/);
  assert.match(result.out, /usage: deploy\/install\.sh/);
});
