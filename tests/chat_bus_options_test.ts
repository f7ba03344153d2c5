import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { nkeys } from "@nats-io/transport-node";
import { parseBusUrl } from "../handlers/chat/bus_options.ts";
import { chatService } from "../handlers/chat/mod.ts";
import { parseConfig } from "../lib/config.ts";
import { SERVICES } from "../handlers/mod.ts";
import { chatListener } from "./_chat_peers.ts";
import { configProblems, startServer, waitFor } from "./_helpers.ts";
import { startNatsServer } from "./_nats_server.ts";

Deno.test("chat bus options: bus URLs and the credentials in them", async (t) => {
  const cases: [string, string, string, unknown][] = [
    ["host and port", "nats://10.0.0.5:4333", "nats://10.0.0.5:4333", { kind: "none" }],
    ["default port", "nats://bus.example", "nats://bus.example:4222", { kind: "none" }],
    ["IPv6", "nats://[::1]:4222", "nats://[::1]:4222", { kind: "none" }],
    ["user and password", "nats://ana:p%40ss@h:1", "nats://h:1", {
      kind: "password",
      user: "ana",
      pass: "p@ss",
    }],
    ["token", "nats://t0ken@h:1", "nats://h:1", { kind: "token", token: "t0ken" }],
  ];
  for (const [name, text, target, auth] of cases) {
    await t.step(name, () => {
      const bus = parseBusUrl(text);
      assertEquals([bus.server, bus.target, bus.auth], [target, target, auth]);
    });
  }
  for (const bad of ["localhost:4222", "tls://h:1", "nats://", "nats://h:1/x", "nats://h:0"]) {
    await t.step(`refused: ${bad}`, () => assertThrows(() => parseBusUrl(bad), SyntaxError));
  }
});

Deno.test("chat bus options: every problem is reported, and a secret never is", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const open = `${dir}/open.creds`;
    await Deno.writeTextFile(open, nkeys.createUser().getSeed().toString());
    await Deno.chmod(open, 0o644);
    const junk = `${dir}/junk.creds`;
    await Deno.writeTextFile(junk, "not credentials");
    await Deno.chmod(junk, 0o600);
    const listeners = [
      chatListener({ bus: "nats://127.0.0.1:4222" }, "a"),
      chatListener({ room: "r", bus: "http://x:1" }, "b"),
      chatListener({ room: "r", bus_creds: junk }, "c"),
      chatListener({ room: "r", bus: "nats://u:hunter2@h:1", bus_creds: junk }, "d"),
      chatListener({ room: "r", bus: "nats://h:1", bus_creds: open }, "e"),
      chatListener({ room: "r", bus: "nats://h:1", bus_creds: junk }, "f"),
    ].join("");
    const problems = configProblems(listeners);
    assertEquals(
      problems.sort(),
      [
        'listener[0].bus: needs "room": the name the daemons on this bus share the room under',
        'listener[1].bus: unsupported scheme "http": use "nats://"',
        'listener[2].bus_creds: has no effect without "bus"',
        'listener[3].bus_creds: give credentials either in "bus" or in "bus_creds", not both',
        `listener[4].bus_creds: "${open}" is readable by others (mode 0644): chmod 600 it`,
        `listener[5].bus_creds: "${junk}" is neither a NATS credentials file (user JWT and seed) nor an nkey user seed (SU…)`,
      ].sort(),
    );
    assertEquals(problems.some((p) => p.includes("hunter2")), false);
    const config = parseConfig(
      chatListener({ room: "r", bus: "nats://u:hunter2@h:1" }),
      "test.toml",
      { services: SERVICES },
    );
    const described = chatService.describe!(config.listeners[0]!.options);
    assertEquals(described.includes("bus=nats://h:1"), true);
    assertEquals(described.includes("hunter2"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat bus options: an nkey seed in bus_creds logs in, and a wrong one is refused", async () => {
  const user = nkeys.createUser();
  const other = nkeys.createUser();
  const publicKey = user.getPublicKey();
  await using nats = await startNatsServer({
    config: `authorization { users = [ { nkey: "${publicKey}" } ] }\n`,
  });
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.nk`;
    const bad = `${dir}/bad.nk`;
    await Deno.writeTextFile(good, new TextDecoder().decode(user.getSeed()) + "\n", {
      mode: 0o600,
    });
    await Deno.writeTextFile(bad, new TextDecoder().decode(other.getSeed()), { mode: 0o600 });
    await using ok = await startServer(chatListener({ room: "r", bus: nats.url, bus_creds: good }));
    await waitFor(() => ok.supervisor.links.links.every((l) => l.up), 10_000);
    await using refused = await startServer(
      chatListener({ room: "r", bus: nats.url, bus_creds: bad }),
    );
    await waitFor(() => refused.lines.some((l) => /cannot reach the bus/.test(l)), 10_000);
    assertEquals(refused.supervisor.links.links[0]!.up, false);
    const seeds = [user.getSeed(), other.getSeed()].map((s) => new TextDecoder().decode(s));
    for (const line of [...ok.lines, ...refused.lines]) {
      assertEquals(seeds.some((seed) => line.includes(seed)), false);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat bus options: a NATS credentials file (user JWT and seed) logs in to an operator-mode server", async () => {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = await encodeOperator("test-operator", operator);
  const unlimited = {
    conn: -1,
    subs: -1,
    data: -1,
    payload: -1,
    leaf: -1,
    imports: -1,
    exports: -1,
  };
  const accountJwt = await encodeAccount("test-account", account, { limits: unlimited }, {
    signer: operator,
  });
  const userJwt = await encodeUser("test-user", user, account);
  const creds = new TextDecoder().decode(fmtCreds(userJwt, user));
  await using nats = await startNatsServer({
    config: `operator: ${operatorJwt}\nresolver: MEMORY\n` +
      `resolver_preload: { ${account.getPublicKey()}: ${accountJwt} }\n`,
  });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/chat.creds`;
    await Deno.writeTextFile(path, creds, { mode: 0o600 });
    await using linked = await startServer(
      chatListener({ room: "r", bus: nats.url, bus_creds: path }),
    );
    await waitFor(() => linked.supervisor.links.links.every((l) => l.up), 10_000);
    // Without credentials this server lets nobody in.
    await using anonymous = await startServer(chatListener({ room: "r", bus: nats.url }));
    await waitFor(() => anonymous.lines.some((l) => /cannot reach the bus/.test(l)), 10_000);
    const seed = new TextDecoder().decode(user.getSeed());
    for (const line of [...linked.lines, ...anonymous.lines]) {
      assertEquals(line.includes(seed) || line.includes(userJwt), false);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
