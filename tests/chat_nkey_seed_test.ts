import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { nkeys } from "@nats-io/transport-node";
import { isNkeySeed } from "../handlers/chat/nkey_seed.ts";

function nkeysAccepts(seed: string): boolean {
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
    return true;
  } catch {
    return false;
  }
}

Deno.test("nkey seed: every kind of seed nkeys makes is accepted", () => {
  const makers = [
    nkeys.createUser,
    nkeys.createAccount,
    nkeys.createOperator,
    nkeys.createServer,
    nkeys.createCluster,
    nkeys.createCurve,
  ];
  for (const make of makers) {
    for (let i = 0; i < 20; i++) {
      const seed = new TextDecoder().decode(make().getSeed());
      assertEquals(isNkeySeed(seed), true, seed);
    }
  }
});

Deno.test("nkey seed: a changed, cut or lengthened seed gets the verdict nkeys gives", () => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let checked = 0;
  for (let i = 0; i < 30; i++) {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
    const variants = [
      seed.slice(0, -1),
      seed.slice(0, 3),
      seed + "A",
      seed.slice(0, 2) + "Z" + seed.slice(3),
      seed.toLowerCase(),
      "",
    ];
    for (let at = 0; at < seed.length; at += 7) {
      const other = alphabet[(alphabet.indexOf(seed[at]!) + 1 + i) % 32]!;
      variants.push(seed.slice(0, at) + other + seed.slice(at + 1));
    }
    for (const variant of variants) {
      assertEquals(isNkeySeed(variant), nkeysAccepts(variant), variant);
      checked++;
    }
  }
  assertEquals(checked > 300, true);
});
